"""The receiving side of the serial protocol: a byte stream into messages, and sequence numbers checked.

Pure, like :mod:`motionctl.hal.serial.protocol` (used by the serial driver and the simulator alike).  A
receiver never raises on bad bytes: :class:`FrameDecoder` drops them and counts why, because a servo loop
must ride through line noise, not crash on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from motionctl.hal.serial.protocol import DELIMITER, MAX_FRAME, DropReason, FrameError, Message, decode_frame


# ---------------------------------------------------------------------------------------------- streaming
@dataclass
class FrameStats:
    """What :class:`FrameDecoder` received: valid messages (``ok``) and every kind of drop."""
    ok: int = 0
    bad_cobs: int = 0
    short: int = 0
    corrupt_crc: int = 0
    unknown_type: int = 0
    bad_length: int = 0
    bad_value: int = 0
    oversize: int = 0

    @property
    def dropped(self) -> int:
        return sum(getattr(self, r.value) for r in DropReason)


class FrameDecoder:
    """Byte stream in, messages out.  Never raises for bad input: drops the frame and counts why.

    Frames are cut at every 0x00, so after noise the decoder is back in step at the next delimiter; noise
    with no 0x00 in it costs the one frame it runs into.  Empty frames (0x00 0x00) are idle fill, not
    errors.  A frame longer than MAX_FRAME is dropped as it grows, so garbage cannot grow the buffer.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.stats = FrameStats()
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        parts = bytes(data).split(DELIMITER)
        for i, part in enumerate(parts):
            if not self._discarding:
                self._buf += part
                if len(self._buf) > self.max_frame:
                    self._buf.clear()
                    self._discarding = True
                    self.stats.oversize += 1
            if i < len(parts) - 1:
                self._end_frame(out)
        return out

    def _end_frame(self, out: list[Message]) -> None:
        frame = bytes(self._buf)
        self._buf.clear()
        if self._discarding:
            self._discarding = False
            return
        if not frame:
            return
        try:
            out.append(decode_frame(frame))
        except FrameError as e:
            setattr(self.stats, e.reason.value, getattr(self.stats, e.reason.value) + 1)
        else:
            self.stats.ok += 1


# ---------------------------------------------------------------------------------------------- sequences
class SeqVerdict(Enum):
    NEW = "new"                  # the next one expected
    GAP = "gap"                  # newer than expected: ``missing`` frames were lost
    DUPLICATE = "duplicate"      # the same as the newest accepted
    OUT_OF_ORDER = "out_of_order"  # older than the newest accepted


@dataclass(frozen=True, slots=True)
class SeqDecision:
    verdict: SeqVerdict
    missing: int = 0

    @property
    def accept(self) -> bool:
        """Whether the caller should use the frame (duplicates and old frames are dropped)."""
        return self.verdict in (SeqVerdict.NEW, SeqVerdict.GAP)


@dataclass
class SeqStats:
    new: int = 0
    gaps: int = 0
    missing: int = 0
    duplicates: int = 0
    out_of_order: int = 0


class SequenceTracker:
    """Receiver-side check of one stream's u16 sequence numbers (one tracker per stream, see docs).

    Serial-number arithmetic (RFC 1982 style): ``d = (seq - newest) mod 2**16``; d == 1 is new, 2..32767
    is a gap of d-1 lost frames, 0 a duplicate, 32768..65535 older than the newest (dropped).  The first
    number seen after construction or :meth:`reset` is new, whatever it is.
    """

    def __init__(self) -> None:
        self.newest: int | None = None
        self.stats = SeqStats()

    def reset(self) -> None:
        """Forget the newest number (a new session), keep the counters."""
        self.newest = None

    def observe(self, seq: int) -> SeqDecision:
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"sequence number {seq} is not a u16")
        d = 1 if self.newest is None else (seq - self.newest) & 0xFFFF
        if d == 0:
            self.stats.duplicates += 1
            return SeqDecision(SeqVerdict.DUPLICATE)
        if d >= 0x8000:
            self.stats.out_of_order += 1
            return SeqDecision(SeqVerdict.OUT_OF_ORDER)
        self.newest = seq
        if d == 1:
            self.stats.new += 1
            return SeqDecision(SeqVerdict.NEW)
        self.stats.gaps += 1
        self.stats.missing += d - 1
        return SeqDecision(SeqVerdict.GAP, d - 1)
