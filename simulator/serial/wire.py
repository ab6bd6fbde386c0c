"""The device side of the serial wire: framing, COBS, CRC, the streaming decoder, sequence numbers.

Written from ``docs/serial-protocol.md`` (version 1.1) alone, as firmware would be: it shares no code
with motionctl's host codec, so the two are independent readings of the document and the golden tests
(``tests/simulator/serial/test_wire.py``) can show where they differ.  The message layouts and codes
live in :mod:`simulator.serial.messages` and are re-exported here, so the simulator needs one import.

A frame on the wire (§2) is ``COBS(payload ‖ CRC16(payload) big-endian) ‖ 00``.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from enum import Enum

from simulator.serial.messages import (  # noqa: F401  (re-exported for the device)
    DEVICE_WIDE, FAULT_TEXT, MAX_AXES, PROTOCOL_VERSION, AxisFeedback, Capability, Command, CommandAck,
    CommandCode, Event, FaultCode, Feedback, Heartbeat, Hello, HelloAck, Message, MessageType, Nak,
    NakReason, NodeState, PayloadError, Result, Setpoint, Status, Stream, StreamAck, StreamMode,
    decode_payload, encode_payload, fault_text, payload_size,
)

#: §3: the CRC is 2 bytes, appended big-endian.
CRC_SIZE = 2
#: §3: a decoded frame holds at least the 3-byte header and the CRC; anything shorter is "short".
MIN_FRAME = 3 + CRC_SIZE
#: §2 "Oversize": the longest valid frame before the delimiter (a FEEDBACK for 32 axes).
MAX_FRAME = 526
DELIMITER = b"\x00"


# ---------------------------------------------------------------------------------------------- §3 CRC
def crc16(data: bytes) -> int:
    """§3 CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, no final XOR (check 0x29B1)."""
    return binascii.crc_hqx(data, 0xFFFF)


# ---------------------------------------------------------------------------------------------- §2.1 COBS
def cobs_encode(data: bytes) -> bytes:
    """§2.1 encoding: one code byte per run of non-zero bytes; 0xFF blocks of 254 with no zero after them;
    no trailing ``01`` when the last run ends exactly on a full block."""
    out = bytearray()
    runs = bytes(data).split(b"\x00")          # N zeros give N + 1 runs (§2.1 step 1)
    last = len(runs) - 1
    for k, run in enumerate(runs):
        while len(run) >= 254:                 # step 3
            out.append(0xFF)
            out += run[:254]
            run = run[254:]
            if k == last and not run:          # step 4
                return bytes(out)
        out.append(len(run) + 1)               # step 2
        out += run
    return bytes(out)


class CobsError(ValueError):
    """A malformed COBS frame (§2.1): a zero code, or a code that points past the end."""


def cobs_decode(data: bytes) -> bytes:
    """§2.1 decoding.  Accepts a redundant trailing ``01`` after a final 0xFF block (it adds nothing)."""
    if not data:
        raise CobsError("empty frame")
    out = bytearray()
    i, end = 0, len(data)
    while i < end:
        code = data[i]
        if code == 0:
            raise CobsError(f"zero code at {i}")
        nxt = i + code
        if nxt > end:
            raise CobsError(f"code 0x{code:02X} at {i} points past the end ({end})")
        run = data[i + 1:nxt]
        if 0 in run:
            raise CobsError(f"zero byte inside the run at {i}")
        out += run
        i = nxt
        if code != 0xFF and i < end:
            out.append(0)
    return bytes(out)


# ---------------------------------------------------------------------------------------------- §2 frames
class Drop(str, Enum):
    """§2: the kinds a dropped frame is counted by.  The value is the :class:`DropCounts` field."""
    BAD_COBS = "bad_cobs"
    SHORT = "short"
    CRC = "crc"
    UNKNOWN_TYPE = "unknown_type"
    BAD_LENGTH = "bad_length"
    BAD_VALUE = "bad_value"
    OVERSIZE = "oversize"


class FrameError(ValueError):
    """A frame that fails a step of §2; ``kind`` says which."""

    def __init__(self, kind: Drop, detail: str) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind


def encode(message: Message) -> bytes:
    """A message as a complete frame on the wire (§2), delimiter included."""
    payload = encode_payload(message)
    return cobs_encode(payload + crc16(payload).to_bytes(CRC_SIZE, "big")) + DELIMITER


def decode_frame(frame: bytes) -> Message:
    """One frame without its delimiter → the message, or :class:`FrameError`.

    Steps in the order of §2/§3/§4.1: COBS, at least 5 bytes, CRC (the residue over payload and CRC is
    0), then the type, the length and the values (:func:`decode_payload`).
    """
    try:
        raw = cobs_decode(frame)
    except CobsError as exc:
        raise FrameError(Drop.BAD_COBS, str(exc)) from None
    if len(raw) < MIN_FRAME:
        raise FrameError(Drop.SHORT, f"{len(raw)} bytes after COBS")
    if crc16(raw) != 0:
        raise FrameError(Drop.CRC, f"CRC 0x{crc16(raw[:-CRC_SIZE]):04X} ≠ 0x{raw[-2]:02X}{raw[-1]:02X}")
    try:
        return decode_payload(raw[:-CRC_SIZE])
    except PayloadError as exc:
        raise FrameError(Drop(exc.kind), str(exc)) from None


@dataclass
class DropCounts:
    """How many frames were received (``ok``) and dropped, by kind (§2).  Idle fill is not counted."""
    ok: int = 0
    bad_cobs: int = 0
    short: int = 0
    crc: int = 0
    unknown_type: int = 0
    bad_length: int = 0
    bad_value: int = 0
    oversize: int = 0

    @property
    def dropped(self) -> int:
        return sum(getattr(self, kind.value) for kind in Drop)


class FrameDecoder:
    """§2's receiver: collects bytes up to each 0x00 and decodes them as one frame, whatever the reads.

    Empty frames are idle fill.  A bad frame is dropped silently and counted in :attr:`stats`.  Input
    longer than :data:`MAX_FRAME` is discarded as it arrives (counted once as oversize) until the next
    0x00, so garbage never grows the buffer.
    """

    def __init__(self) -> None:
        self.stats = DropCounts()
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by ``data``, in order."""
        out: list[Message] = []
        start = 0
        while True:
            zero = data.find(0, start)
            chunk = data[start:] if zero < 0 else data[start:zero]
            if not self._discarding:
                if len(self._buf) + len(chunk) > MAX_FRAME:
                    self._buf.clear()
                    self._discarding = True
                    self.stats.oversize += 1
                else:
                    self._buf += chunk
            if zero < 0:
                return out
            start = zero + 1
            if self._discarding:               # the delimiter ends the oversize frame: back in step
                self._discarding = False
            elif self._buf:
                frame = bytes(self._buf)
                self._buf.clear()
                try:
                    out.append(decode_frame(frame))
                except FrameError as exc:
                    setattr(self.stats, exc.kind.value, getattr(self.stats, exc.kind.value) + 1)
                else:
                    self.stats.ok += 1


# ---------------------------------------------------------------------------------------------- §5 sequences
class Verdict(Enum):
    """§5: what a sequence number says, from ``d = (seq − newest) mod 65536``."""
    NEW = "new"                   # d = 1 (or the first number of a session)
    GAP = "gap"                   # d = 2 … 32767: d − 1 frames lost
    DUPLICATE = "duplicate"       # d = 0
    OUT_OF_ORDER = "out_of_order"  # d = 32768 … 65535: older than the newest


@dataclass(frozen=True)
class SeqDecision:
    verdict: Verdict
    lost: int = 0                 # frames lost before this one (GAP)

    @property
    def accept(self) -> bool:
        """§5 "use it": new numbers and gaps; duplicates and old numbers are dropped."""
        return self.verdict in (Verdict.NEW, Verdict.GAP)


@dataclass
class SequenceTracker:
    """One receiving stream's newest accepted number (§5), with counts of each verdict and of losses."""
    newest: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    lost: int = 0

    def reset(self) -> None:
        """A new session (§5: both ends reset on every successful HELLO/HELLO_ACK)."""
        self.newest = None

    def observe(self, seq: int) -> SeqDecision:
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"sequence number {seq} is not a u16")
        if self.newest is None:
            decision = SeqDecision(Verdict.NEW)
        else:
            d = (seq - self.newest) % 0x10000
            if d == 0:
                decision = SeqDecision(Verdict.DUPLICATE)
            elif d == 1:
                decision = SeqDecision(Verdict.NEW)
            elif d < 0x8000:
                decision = SeqDecision(Verdict.GAP, d - 1)
            else:
                decision = SeqDecision(Verdict.OUT_OF_ORDER)
        if decision.accept:
            self.newest = seq
            self.lost += decision.lost
        key = decision.verdict.value
        self.counts[key] = self.counts.get(key, 0) + 1
        return decision
