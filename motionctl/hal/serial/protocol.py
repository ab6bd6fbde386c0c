"""The motionctl serial protocol: framing, CRC and messages (pure: no I/O, no threads).

Why pure: the serial driver, the simulator (the device side) and the tests all need the exact same bytes,
and byte-exact golden tests are only possible when encoding does not touch a port or a clock.  The wire
format itself is specified in ``docs/serial-protocol.md``; this module is its reference implementation.

Wire frame: ``COBS(payload + CRC16-BE(payload)) + 0x00``.  Payload: ``type u8, seq u16`` then a fixed
little-endian layout per message type.  The receiving side (a byte stream cut into frames, sequence
numbers checked) is :mod:`motionctl.hal.serial.stream`.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, fields
from enum import Enum, IntEnum, IntFlag, StrEnum
from typing import ClassVar, Union

from motionctl.errors import ProtocolError

PROTOCOL_VERSION: tuple[int, int] = (1, 1)   # (major, minor); majors must match, see docs
MAX_AXES = 32                                 # one bit per axis in a u32 axis mask
DEVICE_WIDE = 0xFF                            # EVENT.axis for a fault of the whole device (E-stop, supply)
DELIMITER = b"\x00"
HEADER = struct.Struct("<BH")                 # message type, sequence number
CRC_SIZE = 2


class FrameError(ProtocolError):
    """One received frame that is not a valid message; ``reason`` says why (a :class:`DropReason`)."""
    def __init__(self, message: str, reason: DropReason) -> None:
        self.reason = reason
        super().__init__(message)


class DropReason(StrEnum):
    """Why a received frame was dropped.  The values are the
    :class:`~motionctl.hal.serial.stream.FrameStats` field names."""
    BAD_COBS = "bad_cobs"
    SHORT = "short"
    CORRUPT_CRC = "corrupt_crc"
    UNKNOWN_TYPE = "unknown_type"
    BAD_LENGTH = "bad_length"
    BAD_VALUE = "bad_value"
    OVERSIZE = "oversize"


# ---------------------------------------------------------------------------------------------- CRC, COBS
def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor); check value 0x29B1.

    ``binascii.crc_hqx`` is exactly this CRC when seeded with 0xFFFF (it is the XMODEM CRC with a
    caller-chosen initial value), and it runs in C, which matters at 1 kHz.
    """
    return binascii.crc_hqx(data, 0xFFFF)


# COBS is hand-written: ~25 lines, and the spec in docs/serial-protocol.md must match this code line for
# line.  The PyPI ``cobs`` package (1.2.2, maintained) was checked and produces identical bytes, but it
# ships no wheel for our Python (a C build at install time) for something this small.
def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the output has no 0x00, so 0x00 can delimit frames.

    Each run of non-zero bytes becomes ``len(run)+1, run``; a code of 0xFF means 254 bytes and *no*
    implied zero.  A final run that ends exactly on such a full block gets no extra ``01`` (as in
    Cheshire & Baker and the Wikipedia examples).  Overhead: at most one byte per 254, at least one.
    """
    out = bytearray()
    runs = data.split(b"\x00")
    for index, run in enumerate(runs):
        last = index == len(runs) - 1
        full_blocks = 0
        while len(run) >= 254:
            out.append(0xFF)
            out += run[:254]
            run = run[254:]
            full_blocks += 1
        if run or not last or not full_blocks:
            out.append(len(run) + 1)
            out += run
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Invert :func:`cobs_encode` (``data`` without the delimiter); :class:`FrameError` if malformed."""
    if not data:
        raise FrameError("empty COBS block", DropReason.BAD_COBS)
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:                      # a zero inside, or a block cut off by the delimiter
            raise FrameError(f"COBS code {code} at {i} runs past the frame end ({n})", DropReason.BAD_COBS)
        block = data[i + 1:end]
        if 0 in block:
            raise FrameError("zero byte inside a COBS block", DropReason.BAD_COBS)
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def cobs_max_size(n: int) -> int:
    """Worst-case COBS size of ``n`` bytes (without the delimiter)."""
    return n + n // 254 + 1


# ---------------------------------------------------------------------------------------------- enums
# Enums, never magic ints (a string- or int-typed state is a bug waiting).  The values are the wire values.
class MessageType(IntEnum):
    """First payload byte.  0x00 is never a type, so a run of zeros cannot parse as a message."""
    HELLO = 0x01
    HELLO_ACK = 0x02
    SETPOINT = 0x10
    FEEDBACK = 0x11
    STREAM = 0x12          # 1.1: queued streaming on/off (docs §10.2)
    STREAM_ACK = 0x13      # 1.1: its answer (docs §10.3)
    HEARTBEAT = 0x20
    COMMAND = 0x30
    COMMAND_ACK = 0x31
    EVENT = 0x40
    NAK = 0x7F


class NodeState(IntEnum):
    """The sender's state in HEARTBEAT and FEEDBACK: one enum for both ends (docs give each end's meaning)."""
    BOOT = 0        # no session: device before HELLO, host before HELLO_ACK
    IDLE = 1        # session up; no axis enabled / host not streaming
    ENABLED = 2     # at least one axis enabled and following / host streaming setpoints
    STOPPING = 3    # quick-stop ramp running / host running a controlled stop
    FAULT = 4       # at least one axis in fault / host-side fault


class CommandCode(IntEnum):
    ENABLE = 1
    DISABLE = 2
    QUICK_STOP = 3
    FAULT_RESET = 4


class Result(IntEnum):
    """Outcome in HELLO_ACK and COMMAND_ACK."""
    OK = 0
    VERSION_MISMATCH = 1
    AXIS_COUNT_MISMATCH = 2
    RATE_UNSUPPORTED = 3
    BAD_PARAMETER = 4
    REJECTED_STATE = 5
    REJECTED_FAULT = 6


class NakReason(IntEnum):
    """Why the device refused a frame that arrived intact (frames failing the CRC are never answered)."""
    UNKNOWN_TYPE = 1
    BAD_LENGTH = 2
    BAD_VALUE = 3
    NOT_CONFIGURED = 4      # SETPOINT or COMMAND before a successful HELLO
    AXIS_COUNT = 5          # SETPOINT axis count differs from the HELLO's


class Status(IntFlag):
    """Per-axis status bits in FEEDBACK (u16).  Unknown bits are kept, not rejected: minor versions add."""
    READY = 1 << 0
    ENABLED = 1 << 1
    FAULT = 1 << 2
    QUICK_STOP = 1 << 3
    WARNING = 1 << 4
    FOLLOWING_WARNING = 1 << 5
    LIMIT_POSITIVE = 1 << 6
    LIMIT_NEGATIVE = 1 << 7
    HOMED = 1 << 8
    BRAKE_RELEASED = 1 << 9
    TARGET_IGNORED = 1 << 10
    QUEUE_STOP = 1 << 11          # 1.1: the queue ran dry; the device is stopping along the queued path


class Capability(IntFlag):
    """Device capabilities in HELLO_ACK (u32); unknown bits are kept."""
    ABSOLUTE_ENCODERS = 1 << 0
    BRAKES = 1 << 1
    ESTOP_INPUT = 1 << 2
    LIMIT_SWITCHES = 1 << 3
    SIMULATED = 1 << 4
    SETPOINT_QUEUE = 1 << 5       # 1.1: queued, time-stamped setpoints (docs §10)


class FaultCode(IntEnum):
    """Fault codes (u16) in FEEDBACK and EVENT, with plain words.  Other codes stay valid (fault_text)."""
    text: str

    def __new__(cls, value: int, text: str) -> FaultCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.text = text
        return member

    NONE = 0x0000, "no fault"
    WATCHDOG = 0x0001, "setpoints stopped arriving; the device stopped the axis on its own"
    FOLLOWING_ERROR = 0x0002, "the axis fell too far behind its setpoint"
    SETPOINT_STEP = 0x0003, "a setpoint jumped further than the axis may move in one cycle"
    POSITION_LIMIT = 0x0004, "a limit switch or the device's soft limit was reached"
    ESTOP = 0x0005, "the emergency-stop chain is open"
    QUEUE_EMPTY = 0x0006, ("setpoints stopped arriving and the queue ran dry; the device stopped the axis along "
                           "the queued path")
    OVERCURRENT = 0x0010, "motor current too high"
    OVERVOLTAGE = 0x0011, "supply voltage too high (often braking energy)"
    UNDERVOLTAGE = 0x0012, "supply voltage too low"
    OVERTEMPERATURE = 0x0013, "drive or motor too hot"
    ENCODER = 0x0020, "encoder signal lost or invalid"
    MOTOR = 0x0021, "motor phase open or shorted"
    BRAKE = 0x0030, "holding brake did not release or engage"
    DRIVE_COMMUNICATION = 0x0040, "the device lost contact with a drive"
    INTERNAL = 0x00FF, "internal firmware error"


def fault_text(code: int) -> str:
    """Plain words for a fault code, including codes this version does not know."""
    try:
        return FaultCode(code).text
    except ValueError:
        return f"{'vendor-specific' if code >= 0x8000 else 'unknown'} fault 0x{code:04X}"


# ---------------------------------------------------------------------------------------------- messages
class _Wire:
    """Shared checks of the message dataclasses: enum fields become enums (ValueError if not a member)."""
    TYPE: ClassVar[MessageType]
    _ENUMS: ClassVar[dict[str, type[Enum]]] = {}

    def __post_init__(self) -> None:
        for name, enum in self._ENUMS.items():
            object.__setattr__(self, name, enum(getattr(self, name)))


@dataclass(frozen=True, kw_only=True)
class Hello(_Wire):
    """Host -> device: opens a session; the device answers HELLO_ACK with the same seq."""
    TYPE = MessageType.HELLO
    seq: int
    version_major: int = PROTOCOL_VERSION[0]
    version_minor: int = PROTOCOL_VERSION[1]
    servo_rate_hz: int
    axis_count: int
    watchdog_ms: int


@dataclass(frozen=True, kw_only=True)
class HelloAck(_Wire):
    """Device -> host: accepts (result OK) or refuses a HELLO, and says what the device is."""
    TYPE = MessageType.HELLO_ACK
    _ENUMS = {"result": Result, "capabilities": Capability}
    seq: int
    result: Result
    version_major: int
    version_minor: int
    axis_count: int
    capabilities: Capability
    max_servo_rate_hz: int
    device_name: str            # ASCII, at most 16 bytes; NUL-padded on the wire

    def __post_init__(self) -> None:
        _Wire.__post_init__(self)
        raw = self.device_name.encode("ascii")
        if len(raw) > 16 or b"\x00" in raw:
            raise ValueError(f"device name {self.device_name!r}: at most 16 ASCII bytes, no NUL")


@dataclass(frozen=True, kw_only=True)
class Setpoint(_Wire):
    """Host -> device, once per servo cycle: the target position of every axis in encoder counts."""
    TYPE = MessageType.SETPOINT
    seq: int
    host_tick: int
    targets: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        _check_axis_count(len(self.targets))


@dataclass(frozen=True)
class AxisFeedback:
    """One axis in FEEDBACK.  ``status`` is raw (read it through ``flags``), ``fault`` a raw fault code."""
    position: int
    velocity: int
    following_error: int
    status: int
    fault: int

    @property
    def flags(self) -> Status:
        return Status(self.status)


@dataclass(frozen=True, kw_only=True)
class Feedback(_Wire):
    """Device -> host, one per SETPOINT; ``seq`` echoes the SETPOINT it answers."""
    TYPE = MessageType.FEEDBACK
    _ENUMS = {"state": NodeState}
    seq: int
    device_time_us: int
    state: NodeState
    axes: tuple[AxisFeedback, ...]

    def __post_init__(self) -> None:
        _Wire.__post_init__(self)
        object.__setattr__(self, "axes", tuple(self.axes))
        _check_axis_count(len(self.axes))


@dataclass(frozen=True, kw_only=True)
class Heartbeat(_Wire):
    """Both ways, periodically: proof of life, and the sender's state and clock."""
    TYPE = MessageType.HEARTBEAT
    _ENUMS = {"state": NodeState}
    seq: int
    state: NodeState
    time_us: int


@dataclass(frozen=True, kw_only=True)
class Command(_Wire):
    """Host -> device: enable / disable / quick stop / fault reset of the axes in ``axis_mask``."""
    TYPE = MessageType.COMMAND
    _ENUMS = {"command": CommandCode}
    seq: int
    command: CommandCode
    axis_mask: int


@dataclass(frozen=True, kw_only=True)
class CommandAck(_Wire):
    """Device -> host: the outcome of a COMMAND; ``seq`` echoes it."""
    TYPE = MessageType.COMMAND_ACK
    _ENUMS = {"command": CommandCode, "result": Result}
    seq: int
    command: CommandCode
    result: Result
    axis_mask: int


@dataclass(frozen=True, kw_only=True)
class Event(_Wire):
    """Device -> host: a fault raised, or cleared (``fault`` 0), on ``axis`` or DEVICE_WIDE."""
    TYPE = MessageType.EVENT
    seq: int
    device_time_us: int
    axis: int
    fault: int
    text_code: int

    def __post_init__(self) -> None:
        if not (0 <= self.axis < MAX_AXES or self.axis == DEVICE_WIDE):
            raise ValueError(f"event axis {self.axis}: 0..{MAX_AXES - 1} or {DEVICE_WIDE}")


@dataclass(frozen=True, kw_only=True)
class Nak(_Wire):
    """Device -> host: an intact frame that was refused; ``seq`` echoes it."""
    TYPE = MessageType.NAK
    _ENUMS = {"reason": NakReason}
    seq: int
    rejected_type: int          # raw: it may be a type this device does not know
    reason: NakReason


@dataclass(frozen=True, kw_only=True)
class Stream(_Wire):
    """Host -> device (1.1): queued streaming on (mode 1, ``lookahead_ticks`` ahead) or off (mode 0)."""
    TYPE = MessageType.STREAM
    seq: int
    lookahead_ticks: int
    mode: int


@dataclass(frozen=True, kw_only=True)
class StreamAck(_Wire):
    """Device -> host (1.1): the answer to STREAM (same seq), with the device's queue capacity."""
    TYPE = MessageType.STREAM_ACK
    _ENUMS = {"result": Result}
    seq: int
    result: Result
    capacity_ticks: int


Message = Union[Hello, HelloAck, Setpoint, Feedback, Heartbeat, Command, CommandAck, Event, Nak, Stream, StreamAck]


def _check_axis_count(n: int) -> None:
    if not 1 <= n <= MAX_AXES:
        raise ValueError(f"{n} axes: 1..{MAX_AXES} per frame")


# Fixed part after the 3-byte header; SETPOINT and FEEDBACK add one record per axis.
_BODY: dict[MessageType, struct.Struct] = {
    MessageType.HELLO: struct.Struct("<BBHBH"),
    MessageType.HELLO_ACK: struct.Struct("<BBBBIH16s"),
    MessageType.SETPOINT: struct.Struct("<IB"),
    MessageType.FEEDBACK: struct.Struct("<IBB"),
    MessageType.HEARTBEAT: struct.Struct("<BI"),
    MessageType.COMMAND: struct.Struct("<BI"),
    MessageType.COMMAND_ACK: struct.Struct("<BBI"),
    MessageType.EVENT: struct.Struct("<IBHH"),
    MessageType.NAK: struct.Struct("<BB"),
    MessageType.STREAM: struct.Struct("<HB"),
    MessageType.STREAM_ACK: struct.Struct("<BH"),
}
_PER_AXIS: dict[MessageType, struct.Struct] = {
    MessageType.SETPOINT: struct.Struct("<i"),
    MessageType.FEEDBACK: struct.Struct("<iiiHH"),
}
_CLASS: dict[MessageType, type] = {c.TYPE: c for c in Message.__args__}  # type: ignore[attr-defined]

MAX_PAYLOAD = HEADER.size + _BODY[MessageType.FEEDBACK].size + MAX_AXES * _PER_AXIS[MessageType.FEEDBACK].size
MAX_FRAME = cobs_max_size(MAX_PAYLOAD + CRC_SIZE)      # longest valid frame on the wire, without the 0x00


def payload_size(message_type: MessageType, axis_count: int = 0) -> int:
    """Payload bytes (header + body, no CRC) of a message type with ``axis_count`` axis records."""
    per_axis = _PER_AXIS.get(message_type)
    return HEADER.size + _BODY[message_type].size + (per_axis.size * axis_count if per_axis else 0)


def wire_size(message_type: MessageType, axis_count: int = 0) -> int:
    """Worst-case bytes on the wire for one frame, delimiter included (for link budgets)."""
    return cobs_max_size(payload_size(message_type, axis_count) + CRC_SIZE) + 1


def encode_payload(message: Message) -> bytes:
    """The payload bytes of ``message`` (header + little-endian body, no CRC, no COBS)."""
    t = message.TYPE
    try:
        head = HEADER.pack(t, message.seq)
        if isinstance(message, Setpoint):
            return head + _BODY[t].pack(message.host_tick, len(message.targets)) + struct.pack(
                f"<{len(message.targets)}i", *message.targets)
        if isinstance(message, Feedback):
            rec = _PER_AXIS[t]
            return head + _BODY[t].pack(message.device_time_us, message.state, len(message.axes)) + b"".join(
                rec.pack(a.position, a.velocity, a.following_error, a.status, a.fault) for a in message.axes)
        values = [getattr(message, f.name) for f in fields(message)[1:]]
        if isinstance(message, HelloAck):
            values[-1] = message.device_name.encode("ascii")
        return head + _BODY[t].pack(*values)
    except struct.error as e:
        raise ValueError(f"{t.name} seq {message.seq}: a field does not fit its wire type ({e})") from None


def decode_payload(payload: bytes) -> Message:
    """Parse one payload (CRC already checked and removed); :class:`FrameError` says why it is not valid."""
    if len(payload) < HEADER.size:
        raise FrameError(f"{len(payload)}-byte payload", DropReason.SHORT)
    type_byte, seq = HEADER.unpack_from(payload)
    try:
        t = MessageType(type_byte)
    except ValueError:
        raise FrameError(f"unknown message type 0x{type_byte:02X}", DropReason.UNKNOWN_TYPE) from None
    body, per_axis = _BODY[t], _PER_AXIS.get(t)
    extra = len(payload) - HEADER.size - body.size
    count = payload[HEADER.size + body.size - 1] if per_axis and extra >= 0 else 0
    if extra != (per_axis.size * count if per_axis else 0):
        raise FrameError(f"{t.name}: {len(payload)} bytes do not fit its layout", DropReason.BAD_LENGTH)
    values = body.unpack_from(payload, HEADER.size)
    records = per_axis.iter_unpack(payload[HEADER.size + body.size:]) if per_axis else iter(())
    try:
        if t is MessageType.SETPOINT:
            return Setpoint(seq=seq, host_tick=values[0], targets=tuple(r[0] for r in records))
        if t is MessageType.FEEDBACK:
            return Feedback(seq=seq, device_time_us=values[0], state=values[1],
                            axes=tuple(AxisFeedback(*r) for r in records))
        if t is MessageType.HELLO_ACK:
            name = values[-1].split(b"\x00", 1)[0].decode("ascii", errors="replace")
            values = values[:-1] + (name.replace("\ufffd", "?"),)
        cls = _CLASS[t]
        return cls(seq=seq, **{f.name: v for f, v in zip(fields(cls)[1:], values)})
    except ValueError as e:
        raise FrameError(f"{t.name}: {e}", DropReason.BAD_VALUE) from None


def encode(message: Message) -> bytes:
    """The complete wire frame: ``COBS(payload + CRC16 big-endian) + 0x00``."""
    payload = encode_payload(message)
    return cobs_encode(payload + crc16(payload).to_bytes(2, "big")) + DELIMITER


def decode_frame(frame: bytes) -> Message:
    """Decode one frame as cut at the delimiters (without the 0x00); :class:`FrameError` if invalid."""
    raw = cobs_decode(frame)
    if len(raw) < HEADER.size + CRC_SIZE:
        raise FrameError(f"{len(raw)} bytes after COBS, below the minimum frame", DropReason.SHORT)
    # A CRC-16/CCITT-FALSE over data + its big-endian CRC is 0 (no reflection, no final xor).
    if crc16(raw) != 0:
        raise FrameError("CRC mismatch", DropReason.CORRUPT_CRC)
    return decode_payload(raw[:-CRC_SIZE])
