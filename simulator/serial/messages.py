"""The serial protocol's messages, as the device reads and writes them: ``docs/serial-protocol.md`` v1.1.

Written from that page alone (§4, §7, §8, and §10 for what version 1.1 adds), not from motionctl's host
codec, so that the simulator and the host are two independent readings of the same document.  A payload
here is the message without framing: type byte, sequence number, body (§4.1); :mod:`simulator.serial.wire`
adds the CRC and COBS (§2, §3).

Every integer field is little-endian (§1).  Decoding refuses a payload with :class:`PayloadError`, whose
``kind`` is the drop counter of §2 it belongs to: ``unknown_type``, ``bad_length`` or ``bad_value``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar, Union

#: §4: the version this module speaks (major, minor).
PROTOCOL_VERSION = (1, 1)
#: §4.1: n ≤ 32 axes; axis_count 0 or above 32 is a bad value.
MAX_AXES = 32
#: §4.9: the EVENT axis byte for the whole device.
DEVICE_WIDE = 0xFF


# ---------------------------------------------------------------------------------------------- codes
class MessageType(IntEnum):
    """§4.1, the type table.  0x00 is never a type."""
    HELLO = 0x01
    HELLO_ACK = 0x02
    SETPOINT = 0x10
    FEEDBACK = 0x11
    STREAM = 0x12         # version 1.1, §10.2
    STREAM_ACK = 0x13     # version 1.1, §10.3
    HEARTBEAT = 0x20
    COMMAND = 0x30
    COMMAND_ACK = 0x31
    EVENT = 0x40
    NAK = 0x7F


class Result(IntEnum):
    """§4.11, result codes of HELLO_ACK and COMMAND_ACK."""
    OK = 0
    VERSION_MISMATCH = 1
    AXIS_COUNT_MISMATCH = 2
    RATE_UNSUPPORTED = 3
    BAD_PARAMETER = 4
    REJECTED_STATE = 5
    REJECTED_FAULT = 6


class NodeState(IntEnum):
    """§4.12.  If several apply, a device reports the highest code."""
    BOOT = 0
    IDLE = 1
    ENABLED = 2
    STOPPING = 3
    FAULT = 4


class CommandCode(IntEnum):
    """§4.7 and §6.5."""
    ENABLE = 1
    DISABLE = 2
    QUICK_STOP = 3
    FAULT_RESET = 4


class NakReason(IntEnum):
    """§4.10."""
    UNKNOWN_TYPE = 1
    BAD_LENGTH = 2
    BAD_VALUE = 3
    NOT_CONFIGURED = 4
    AXIS_COUNT = 5


class Capability(IntFlag):
    """§4.3, HELLO_ACK capability bits.  Other bits are reserved: sent as 0, ignored on receipt."""
    ABSOLUTE_ENCODERS = 1 << 0
    HOLDING_BRAKES = 1 << 1
    ESTOP_MONITORED = 1 << 2
    LIMIT_SWITCHES = 1 << 3
    SIMULATED = 1 << 4
    SETPOINT_QUEUE = 1 << 5       # version 1.1, §10.1


class Status(IntFlag):
    """§7, the per-axis status bits of FEEDBACK.  Bits 12–15 are reserved."""
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
    QUEUE_STOP = 1 << 11          # version 1.1, §10.5


class FaultCode(IntEnum):
    """§8.  Unlisted codes below 0x8000 are reserved; 0x8000–0xFFFF are vendor-specific."""
    NONE = 0x0000
    WATCHDOG = 0x0001
    FOLLOWING_ERROR = 0x0002
    SETPOINT_STEP = 0x0003
    POSITION_LIMIT = 0x0004
    ESTOP = 0x0005
    QUEUE_EMPTY = 0x0006          # version 1.1, §10.5
    OVERCURRENT = 0x0010
    OVERVOLTAGE = 0x0011
    UNDERVOLTAGE = 0x0012
    OVERTEMPERATURE = 0x0013
    ENCODER = 0x0020
    MOTOR = 0x0021
    BRAKE = 0x0030
    DRIVE_COMMUNICATION = 0x0040
    INTERNAL = 0x00FF


#: §8, the "in plain words" column.
FAULT_TEXT: dict[int, str] = {
    FaultCode.NONE: "no fault",
    FaultCode.WATCHDOG: "setpoints stopped arriving; the device stopped the axis on its own",
    FaultCode.FOLLOWING_ERROR: "the axis fell too far behind its setpoint",
    FaultCode.SETPOINT_STEP: "a setpoint jumped further than the axis may move in one cycle",
    FaultCode.POSITION_LIMIT: "a limit switch or the device's soft limit was reached",
    FaultCode.ESTOP: "the emergency-stop chain is open",
    FaultCode.QUEUE_EMPTY: ("setpoints stopped arriving and the queue ran dry; the device stopped the axis "
                            "along the queued path"),
    FaultCode.OVERCURRENT: "motor current too high",
    FaultCode.OVERVOLTAGE: "supply voltage too high (often braking energy)",
    FaultCode.UNDERVOLTAGE: "supply voltage too low",
    FaultCode.OVERTEMPERATURE: "drive or motor too hot",
    FaultCode.ENCODER: "encoder signal lost or invalid",
    FaultCode.MOTOR: "motor phase open or shorted",
    FaultCode.BRAKE: "holding brake did not release or engage",
    FaultCode.DRIVE_COMMUNICATION: "the device lost contact with a drive",
    FaultCode.INTERNAL: "internal firmware error",
}


def fault_text(code: int) -> str:
    """§8 in plain words; vendor-specific (≥ 0x8000) and reserved codes are named with their number."""
    if code in FAULT_TEXT:
        return FAULT_TEXT[code]
    kind = "vendor-specific" if code >= 0x8000 else "unknown"
    return f"{kind} fault 0x{code:04X}"


class StreamMode(IntEnum):
    """§10.2, STREAM.mode.  Other values are not a bad value on the wire (§4.1 does not list them): the
    device decodes them and answers STREAM_ACK BAD_PARAMETER (§10.3)."""
    LATCHED = 0
    QUEUED = 1


class PayloadError(ValueError):
    """A payload the receiver drops (§2, §4.1); ``kind`` names its drop counter."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


# ---------------------------------------------------------------------------------------------- messages
def _check(value: int, low: int, high: int, name: str) -> None:
    """Refuse to encode a value its field cannot hold."""
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} = {value!r} outside {low}…{high}")


U8, U16, U32, I32 = (0, 0xFF), (0, 0xFFFF), (0, 0xFFFF_FFFF), (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class Hello:
    """§4.2 HELLO (0x01), host → device, 10 bytes."""
    TYPE: ClassVar[MessageType] = MessageType.HELLO
    seq: int
    servo_rate_hz: int
    axis_count: int
    watchdog_ms: int
    version_major: int = PROTOCOL_VERSION[0]
    version_minor: int = PROTOCOL_VERSION[1]


@dataclass(frozen=True)
class HelloAck:
    """§4.3 HELLO_ACK (0x02), device → host, 29 bytes; same seq as the HELLO."""
    TYPE: ClassVar[MessageType] = MessageType.HELLO_ACK
    seq: int
    result: Result
    version_major: int
    version_minor: int
    axis_count: int
    capabilities: int
    max_servo_rate_hz: int
    device_name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "result", Result(self.result))


@dataclass(frozen=True)
class Setpoint:
    """§4.4 SETPOINT (0x10), host → device, 8 + 4·n bytes.  ``targets`` in encoder counts."""
    TYPE: ClassVar[MessageType] = MessageType.SETPOINT
    seq: int
    host_tick: int
    targets: tuple[int, ...]


@dataclass(frozen=True)
class AxisFeedback:
    """§4.5, one axis record of FEEDBACK (16 bytes).  ``status`` keeps unknown bits (§6.1 point 5)."""
    position: int
    velocity: int
    following_error: int
    status: int
    fault: int


@dataclass(frozen=True)
class Feedback:
    """§4.5 FEEDBACK (0x11), device → host, 9 + 16·n bytes; seq echoes the latched SETPOINT's."""
    TYPE: ClassVar[MessageType] = MessageType.FEEDBACK
    seq: int
    device_time_us: int
    state: NodeState
    axes: tuple[AxisFeedback, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", NodeState(self.state))


@dataclass(frozen=True)
class Stream:
    """§10.2 STREAM (0x12), host → device, 6 bytes: queued streaming on (mode 1) or off (mode 0).
    ``mode`` stays a plain int so that an undefined mode reaches the device (BAD_PARAMETER, §10.3)."""
    TYPE: ClassVar[MessageType] = MessageType.STREAM
    seq: int
    lookahead_ticks: int
    mode: int


@dataclass(frozen=True)
class StreamAck:
    """§10.3 STREAM_ACK (0x13), device → host, 6 bytes; same seq as the STREAM."""
    TYPE: ClassVar[MessageType] = MessageType.STREAM_ACK
    seq: int
    result: Result
    capacity_ticks: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "result", Result(self.result))


@dataclass(frozen=True)
class Heartbeat:
    """§4.6 HEARTBEAT (0x20), both directions, 8 bytes."""
    TYPE: ClassVar[MessageType] = MessageType.HEARTBEAT
    seq: int
    state: NodeState
    time_us: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", NodeState(self.state))


@dataclass(frozen=True)
class Command:
    """§4.7 COMMAND (0x30), host → device, 8 bytes."""
    TYPE: ClassVar[MessageType] = MessageType.COMMAND
    seq: int
    command: CommandCode
    axis_mask: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", CommandCode(self.command))


@dataclass(frozen=True)
class CommandAck:
    """§4.8 COMMAND_ACK (0x31), device → host, 9 bytes; same seq as the COMMAND."""
    TYPE: ClassVar[MessageType] = MessageType.COMMAND_ACK
    seq: int
    command: CommandCode
    result: Result
    axis_mask: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", CommandCode(self.command))
        object.__setattr__(self, "result", Result(self.result))


@dataclass(frozen=True)
class Event:
    """§4.9 EVENT (0x40), device → host, 12 bytes.  ``axis`` 0…31 or :data:`DEVICE_WIDE`."""
    TYPE: ClassVar[MessageType] = MessageType.EVENT
    seq: int
    device_time_us: int
    axis: int
    fault: int
    text_code: int


@dataclass(frozen=True)
class Nak:
    """§4.10 NAK (0x7F), device → host, 5 bytes; same seq as the refused frame."""
    TYPE: ClassVar[MessageType] = MessageType.NAK
    seq: int
    rejected_type: int
    reason: NakReason

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", NakReason(self.reason))


Message = Union[Hello, HelloAck, Setpoint, Feedback, Stream, StreamAck, Heartbeat, Command, CommandAck, Event,
                Nak]

# §4.2–§4.10 and §10.2–§10.3 layouts after the 3-byte header (<BH: type, seq).  SETPOINT and FEEDBACK:
# the fixed part, then one record per axis.
_HEADER = struct.Struct("<BH")
_BODY = {
    MessageType.HELLO: struct.Struct("<BBHBH"),
    MessageType.HELLO_ACK: struct.Struct("<BBBBIH16s"),
    MessageType.SETPOINT: struct.Struct("<IB"),
    MessageType.FEEDBACK: struct.Struct("<IBB"),
    MessageType.STREAM: struct.Struct("<HB"),
    MessageType.STREAM_ACK: struct.Struct("<BH"),
    MessageType.HEARTBEAT: struct.Struct("<BI"),
    MessageType.COMMAND: struct.Struct("<BI"),
    MessageType.COMMAND_ACK: struct.Struct("<BBI"),
    MessageType.EVENT: struct.Struct("<IBHH"),
    MessageType.NAK: struct.Struct("<BB"),
}
_TARGET = struct.Struct("<i")
_AXIS = struct.Struct("<iiiHH")
_PER_AXIS = {MessageType.SETPOINT: _TARGET.size, MessageType.FEEDBACK: _AXIS.size}


def payload_size(kind: MessageType, axes: int = 0) -> int:
    """§4.1, the payload bytes column: header, body, and 4 or 16 bytes per axis."""
    return _HEADER.size + _BODY[kind].size + _PER_AXIS.get(kind, 0) * axes


def _name_bytes(name: str) -> bytes:
    raw = name.encode("ascii")                      # UnicodeEncodeError is a ValueError
    if len(raw) > 16 or b"\x00" in raw:
        raise ValueError(f"device_name {name!r}: at most 16 ASCII characters, no NUL (§4.3)")
    return raw


def _count(n: int) -> None:
    if not isinstance(n, int) or not 1 <= n <= MAX_AXES:
        raise ValueError(f"{n} axes: 1…{MAX_AXES} (§4.1)")


def encode_payload(m: Message) -> bytes:
    """A message as its payload bytes (§4), checking that every field fits its width."""
    _check(m.seq, *U16, "seq")
    head = _HEADER.pack(m.TYPE, m.seq)
    body = _BODY[m.TYPE]
    if isinstance(m, Hello):
        for name, rng in (("version_major", U8), ("version_minor", U8), ("servo_rate_hz", U16),
                          ("watchdog_ms", U16)):
            _check(getattr(m, name), *rng, name)
        _count(m.axis_count)
        return head + body.pack(m.version_major, m.version_minor, m.servo_rate_hz, m.axis_count,
                                m.watchdog_ms)
    if isinstance(m, HelloAck):
        for name, rng in (("version_major", U8), ("version_minor", U8), ("capabilities", U32),
                          ("max_servo_rate_hz", U16)):
            _check(getattr(m, name), *rng, name)
        _count(m.axis_count)
        return head + body.pack(m.result, m.version_major, m.version_minor, m.axis_count, m.capabilities,
                                m.max_servo_rate_hz, _name_bytes(m.device_name))
    if isinstance(m, Setpoint):
        _check(m.host_tick, *U32, "host_tick")
        _count(len(m.targets))
        for t in m.targets:
            _check(t, *I32, "target")
        return head + body.pack(m.host_tick, len(m.targets)) + b"".join(_TARGET.pack(t) for t in m.targets)
    if isinstance(m, Feedback):
        _check(m.device_time_us, *U32, "device_time_us")
        _count(len(m.axes))
        records = []
        for a in m.axes:
            for name, rng in (("position", I32), ("velocity", I32), ("following_error", I32),
                              ("status", U16), ("fault", U16)):
                _check(getattr(a, name), *rng, name)
            records.append(_AXIS.pack(a.position, a.velocity, a.following_error, a.status, a.fault))
        return head + body.pack(m.device_time_us, m.state, len(m.axes)) + b"".join(records)
    if isinstance(m, Stream):
        _check(m.lookahead_ticks, *U16, "lookahead_ticks")
        _check(m.mode, *U8, "mode")
        return head + body.pack(m.lookahead_ticks, m.mode)
    if isinstance(m, StreamAck):
        _check(m.capacity_ticks, *U16, "capacity_ticks")
        return head + body.pack(m.result, m.capacity_ticks)
    if isinstance(m, Heartbeat):
        _check(m.time_us, *U32, "time_us")
        return head + body.pack(m.state, m.time_us)
    if isinstance(m, Command):
        _check(m.axis_mask, *U32, "axis_mask")
        return head + body.pack(m.command, m.axis_mask)
    if isinstance(m, CommandAck):
        _check(m.axis_mask, *U32, "axis_mask")
        return head + body.pack(m.command, m.result, m.axis_mask)
    if isinstance(m, Event):
        _check(m.device_time_us, *U32, "device_time_us")
        if not (0 <= m.axis < MAX_AXES or m.axis == DEVICE_WIDE):
            raise ValueError(f"EVENT axis {m.axis}: 0…31 or 0xFF (§4.9)")
        _check(m.fault, *U16, "fault")
        _check(m.text_code, *U16, "text_code")
        return head + body.pack(m.device_time_us, m.axis, m.fault, m.text_code)
    if isinstance(m, Nak):
        _check(m.rejected_type, *U8, "rejected_type")
        return head + body.pack(m.rejected_type, m.reason)
    raise TypeError(f"not a message: {m!r}")


def _enum(cls: type, value: int, field: str):
    try:
        return cls(value)
    except ValueError:
        raise PayloadError("bad_value", f"{field} {value} undefined") from None


def _axes(n: int) -> None:
    if not 1 <= n <= MAX_AXES:
        raise PayloadError("bad_value", f"axis_count {n}")


def decode_payload(payload: bytes) -> Message:
    """The message a payload holds (§4), or :class:`PayloadError` with the drop kind of §2 / §4.1.

    The checks run in the order §2 and §4.1 list them: unknown type, bad length, bad value.  For
    SETPOINT and FEEDBACK the length is first compared with the axis_count byte (bad length), and only
    then is that count checked to be 1…32 (bad value).
    """
    if len(payload) < _HEADER.size:
        raise PayloadError("short", f"{len(payload)} bytes")
    kind, seq = _HEADER.unpack_from(payload)
    try:
        kind = MessageType(kind)
    except ValueError:
        raise PayloadError("unknown_type", f"type 0x{kind:02X}") from None
    body = _BODY[kind]
    fixed = _HEADER.size + body.size
    if len(payload) < fixed or (kind not in _PER_AXIS and len(payload) != fixed):
        raise PayloadError("bad_length", f"{kind.name} of {len(payload)} bytes")
    fields = body.unpack_from(payload, _HEADER.size)
    if kind in _PER_AXIS:
        n = fields[-1]
        if len(payload) != fixed + _PER_AXIS[kind] * n:
            raise PayloadError("bad_length", f"{kind.name} of {len(payload)} bytes for {n} axes")
        _axes(n)
    if kind is MessageType.HELLO:
        major, minor, rate, n, watchdog = fields
        _axes(n)
        return Hello(seq=seq, version_major=major, version_minor=minor, servo_rate_hz=rate, axis_count=n,
                     watchdog_ms=watchdog)
    if kind is MessageType.HELLO_ACK:
        result, major, minor, n, caps, max_rate, name = fields
        _axes(n)
        text = name.split(b"\x00", 1)[0].decode("ascii", errors="replace").replace("\ufffd", "?")
        return HelloAck(seq=seq, result=_enum(Result, result, "result"), version_major=major,
                        version_minor=minor, axis_count=n, capabilities=caps, max_servo_rate_hz=max_rate,
                        device_name=text)
    if kind is MessageType.SETPOINT:
        tick, n = fields
        targets = tuple(t for (t,) in _TARGET.iter_unpack(payload[fixed:]))
        return Setpoint(seq=seq, host_tick=tick, targets=targets)
    if kind is MessageType.FEEDBACK:
        time_us, state, n = fields
        axes = tuple(AxisFeedback(*r) for r in _AXIS.iter_unpack(payload[fixed:]))
        return Feedback(seq=seq, device_time_us=time_us, state=_enum(NodeState, state, "state"), axes=axes)
    if kind is MessageType.STREAM:
        lookahead, mode = fields
        return Stream(seq=seq, lookahead_ticks=lookahead, mode=mode)
    if kind is MessageType.STREAM_ACK:
        result, capacity = fields
        return StreamAck(seq=seq, result=_enum(Result, result, "result"), capacity_ticks=capacity)
    if kind is MessageType.HEARTBEAT:
        state, time_us = fields
        return Heartbeat(seq=seq, state=_enum(NodeState, state, "state"), time_us=time_us)
    if kind is MessageType.COMMAND:
        command, mask = fields
        return Command(seq=seq, command=_enum(CommandCode, command, "command"), axis_mask=mask)
    if kind is MessageType.COMMAND_ACK:
        command, result, mask = fields
        return CommandAck(seq=seq, command=_enum(CommandCode, command, "command"),
                          result=_enum(Result, result, "result"), axis_mask=mask)
    if kind is MessageType.EVENT:
        time_us, axis, fault, text_code = fields
        if not (axis < MAX_AXES or axis == DEVICE_WIDE):
            raise PayloadError("bad_value", f"EVENT axis {axis}")
        return Event(seq=seq, device_time_us=time_us, axis=axis, fault=fault, text_code=text_code)
    rejected, reason = fields          # NAK
    return Nak(seq=seq, rejected_type=rejected, reason=_enum(NakReason, reason, "reason"))
