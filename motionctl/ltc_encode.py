"""SMPTE 12M linear timecode (LTC): the 80-bit word and its biphase-mark audio.

Why this module exists: an LTC generator is how a motion-control rig tells cameras, recorders and
the LED volume which frame it is on, and a reader of the same signal is how the rig chases house
timecode.  This half builds words and audio; :mod:`motionctl.ltc_decode` reads them back.  Both are
reached through :mod:`motionctl.ltc`.

The word (SMPTE ST 12-1 section 9; checked against Wikipedia's LTC table and libltc's ``LTCFrame``).
Bit ``i`` is sent ``i``-th; as an integer, bit ``i`` has weight ``2**i``::

    0-3 frame units   8-9 frame tens   10 drop-frame flag   11 colour-frame flag
    16-19 sec units   24-26 sec tens   32-35 min units      40-42 min tens
    48-51 hour units  56-57 hour tens  27, 43, 58, 59 flag bits (below)
    4-7, 12-15, 20-23, 28-31, 36-39, 44-47, 52-55, 60-63: binary groups 1-8 ("user bits")
    64-79 sync word 0011 1111 1111 1101, bit 64 first (0x3FFD read in sending order)

BCD digits are sent least significant bit first.  The *polarity-correction* bit is bit 27 at 24 and
30-frame rates and bit 59 at 25-frame rates (ST 12-1 Table 3 swaps 27/43/59 at 25 fps; libltc's
``ltc_frame_set_parity`` does the same).  It makes the count of 0 bits in the whole word even, which
with the 80 bit-boundary transitions makes every word start on the same polarity (a rising edge at
bit 0), so words from different sources splice cleanly.  Binary group flags are left 0 ("no user-bit
format specified").

Rates above 30 fps: ST 12-1 counts at most 30 frames a second (its count moduli are 24, 25 and 30), and
LTC cannot run faster.  At 48, 50, 59.94 and 60 fps this module therefore sends one word per *frame
pair*, at the half rate (24, 25, 29.97[df], 30): the word carries the half-rate label of the pair, whose
frames field is the full-rate frames field // 2 (what timecode generators do on a "double rate"
setting).  LTC cannot tell the two frames of a pair apart, so :func:`encode` needs an even
``start_frame`` and ``count`` there, and the decoder reports the first frame of each pair.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from motionctl.errors import TimecodeError
from motionctl.timecode import FRAME_RATES, FrameRate, RateLike, timecode_fields

__all__ = [
    "BITS_PER_WORD", "SYNC_WORD", "encode", "encode_words", "frames_per_word", "ltc_bits", "ltc_rate",
    "ltc_word", "parse_word", "polarity_bit", "word_bits", "word_from_bits", "word_parity_ok",
]

BITS_PER_WORD = 80
SYNC_WORD = 0x3FFD                      # bits 64..79 in sending order, bit 64 = most significant here
# The same 16 bits inside a word integer (bit i at weight 2**i) are the bit-reverse: 0xBFFC << 64.
_SYNC_FIELD = int(f"{SYNC_WORD:016b}"[::-1], 2) << 64
_DATA_MASK = (1 << 64) - 1
DF_BIT, CF_BIT = 10, 11
# (units start bit, tens start bit, tens width, maximum value) for frames, seconds, minutes, hours.
_FIELDS = ((0, 8, 2, 29), (16, 24, 3, 59), (32, 40, 3, 59), (48, 56, 2, 23))
_USER_SHIFTS = tuple(4 + 8 * k for k in range(8))
_HALF_RATE = {"48": "24", "50": "25", "59.94df": "29.97df", "59.94": "29.97", "60": "30"}
DEFAULT_RISE_TIME = 40e-6               # ST 12-1 LTC rise/fall time, 40 +- 10 us (10 % to 90 %)


def _count(value: object, what: str) -> int:
    """Why strict: a float or bool frame is almost always a unit mix-up, not a frame."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise TimecodeError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def ltc_rate(rate: RateLike) -> FrameRate:
    """The rate whose frames the LTC words count: ``rate`` up to 30 fps, the half rate above."""
    fr = FrameRate.parse(rate)
    return FRAME_RATES[_HALF_RATE[fr.label]] if fr.label in _HALF_RATE else fr


def frames_per_word(rate: RateLike) -> int:
    """Picture frames per LTC word: 1 up to 30 fps, 2 (a frame pair) above."""
    fr = FrameRate.parse(rate)
    return 2 if fr.label in _HALF_RATE else 1


def polarity_bit(rate: RateLike) -> int:
    """Bit index of the polarity-correction bit: 59 on 25-frame counting, 27 otherwise."""
    return 59 if ltc_rate(rate).nominal == 25 else 27


def ltc_word(frame: int, rate: RateLike, *, user_bits: int = 0, color_frame: bool = False) -> int:
    """The 80-bit LTC word (bit ``i`` at weight ``2**i``) for the label of 0-based ``frame`` at ``rate``.

    Sets the drop-frame flag on DF rates, the colour-frame flag when asked, ``user_bits`` into the
    eight binary groups (group 1 = lowest nibble, as libltc) and the polarity bit.  Above 30 fps the
    word is that of the frame pair containing ``frame`` (see the module docstring).
    """
    fr = FrameRate.parse(rate)
    frame = _count(frame, "frame")
    if isinstance(user_bits, bool) or not isinstance(user_bits, numbers.Integral) \
            or not 0 <= int(user_bits) < 1 << 32:
        raise TimecodeError(f"user_bits must be an integer in 0..0xFFFFFFFF, got {user_bits!r}")
    base = ltc_rate(fr)
    values = timecode_fields(frame // frames_per_word(fr), base)
    word = _SYNC_FIELD
    for (units_at, tens_at, _width, _max), value in zip(_FIELDS, values[::-1]):
        word |= (value % 10) << units_at | (value // 10) << tens_at
    for k, shift in enumerate(_USER_SHIFTS):
        word |= ((int(user_bits) >> (4 * k)) & 0xF) << shift
    word |= int(base.drop_frame) << DF_BIT | int(bool(color_frame)) << CF_BIT
    if word.bit_count() % 2:             # odd number of ones <=> odd number of zeros (80 is even)
        word |= 1 << polarity_bit(base)
    return word


def word_bits(word: int) -> np.ndarray:
    """The 80 bits of ``word`` in sending order (bit 0 first) as a uint8 array."""
    return np.unpackbits(np.frombuffer(int(word).to_bytes(10, "little"), np.uint8), bitorder="little")


def word_from_bits(bits: Sequence[int] | np.ndarray) -> int:
    """Inverse of :func:`word_bits`: 80 bits in sending order to the word integer."""
    arr = np.asarray(bits)
    if arr.shape != (BITS_PER_WORD,) or not np.all((arr == 0) | (arr == 1)):
        raise TimecodeError(f"an LTC word is 80 bits of 0/1, got shape {arr.shape}")
    return int.from_bytes(np.packbits(arr.astype(np.uint8), bitorder="little").tobytes(), "little")


def ltc_bits(frame: int, rate: RateLike, *, user_bits: int = 0, color_frame: bool = False) -> np.ndarray:
    """:func:`ltc_word` as 80 bits in sending order."""
    return word_bits(ltc_word(frame, rate, user_bits=user_bits, color_frame=color_frame))


def word_parity_ok(word: int) -> bool:
    """True when the word has an even number of zeros, as the polarity bit guarantees."""
    return int(word).bit_count() % 2 == 0


def parse_word(bits: int | Sequence[int] | np.ndarray) -> tuple[int, int, int, int, bool, int]:
    """``(hours, minutes, seconds, frames, drop_frame_flag, user_bits)`` of an LTC word.

    ``bits`` is the word integer or its 80 bits in sending order.  Raises :class:`TimecodeError` when
    the sync word is missing or a BCD digit or field is out of range: a reader must not turn line noise
    into a plausible label.  Whether the label exists at a particular rate is the caller's check.
    """
    word = bits if isinstance(bits, numbers.Integral) and not isinstance(bits, bool) else word_from_bits(bits)
    word = int(word)
    if not 0 <= word < 1 << 80 or word & ~_DATA_MASK != _SYNC_FIELD:
        raise TimecodeError("not an LTC word: bits 64-79 are not the sync word 0011 1111 1111 1101")
    values = []
    for units_at, tens_at, width, maximum in _FIELDS:
        units = (word >> units_at) & 0xF
        tens = (word >> tens_at) & ((1 << width) - 1)
        if units > 9 or 10 * tens + units > maximum:
            raise TimecodeError(f"bad BCD in LTC word: digits {tens}{units} at bit {units_at}")
        values.append(10 * tens + units)
    user = 0
    for k, shift in enumerate(_USER_SHIFTS):
        user |= ((word >> shift) & 0xF) << (4 * k)
    frames, seconds, minutes, hours = values
    return hours, minutes, seconds, frames, bool(word >> DF_BIT & 1), user


def _round_half_up(num: np.ndarray | int, den: int) -> np.ndarray | int:
    """floor(num/den + 1/2) in exact integer arithmetic (num may be an int64 array)."""
    return (2 * num + den) // (2 * den)


def encode_words(words: Sequence[int], rate: RateLike, sample_rate: int = 48000,
                 amplitude: float = 0.5, *, first_word: int = 0,
                 rise_time: float = DEFAULT_RISE_TIME) -> np.ndarray:
    """Biphase-mark audio (float32) of arbitrary 80-bit ``words`` at ``rate``'s LTC bit rate.

    Timing is exact rational: with ``B0 = 80 * first_word`` and ``r = sample_rate / (80 * word rate)``
    samples per bit, bit boundary ``k`` of the output lies at sample ``round(((B0 + k) * r) -
    round(B0 * r)`` (round half up), so there is no drift however long the stream, and consecutive calls
    with ``first_word`` advanced by the words already sent concatenate into one seamless stream.
    Every boundary is a transition and a 1 has one more at ``round((B0 + k + 1/2) * r)``; the level
    before and after a whole number of words is low, so each word starts with a rising edge.
    Transitions are shaped as raised-cosine ramps of ``rise_time`` seconds (10-90 %), centred on the
    boundary so the zero crossing stays where the bit starts; 0 gives a hard square wave.
    """
    sr = _count(sample_rate, "sample_rate")
    if not 8000 <= sr <= 768000:
        raise TimecodeError(f"sample_rate must be 8000..768000 Hz, got {sample_rate!r}")
    if isinstance(amplitude, bool) or not isinstance(amplitude, numbers.Real) or not 0 < amplitude <= 1:
        raise TimecodeError(f"amplitude must be in (0, 1], got {amplitude!r}")
    if isinstance(rise_time, bool) or not isinstance(rise_time, numbers.Real) or not 0 <= rise_time < 1e-3:
        raise TimecodeError(f"rise_time must be 0..1e-3 s, got {rise_time!r}")
    first = _count(first_word, "first_word")
    base = ltc_rate(rate)
    spb = Fraction(sr) / (BITS_PER_WORD * base.fps)             # samples per bit, exact
    p, q = spb.numerator, spb.denominator
    if not words:
        return np.zeros(0, np.float32)
    raw = b"".join(int(w).to_bytes(10, "little") for w in words)
    bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
    b0 = BITS_PER_WORD * first
    whole, rem = divmod(b0 * p, q)                               # (b0 + k) p = whole q + rem + k p
    shift = whole - int(_round_half_up(b0 * p, q))              # small: keeps int64 from overflowing
    k = np.arange(bits.size + 1, dtype=np.int64)
    bounds = _round_half_up(rem + k * p, q) + shift
    mids = (2 * rem + (2 * k[:-1] + 1) * p + q) // (2 * q) + shift
    n = int(bounds[-1])
    # Transition positions (first sample of the new level), in time order.
    is_one = bits.astype(bool)
    trans = np.empty(bits.size + int(is_one.sum()), np.int64)
    slot = np.arange(bits.size) + np.concatenate(([0], np.cumsum(is_one)[:-1]))
    trans[slot] = bounds[:-1]
    trans[slot[is_one] + 1] = mids[is_one]
    levels = np.where(np.arange(trans.size) % 2 == 0, amplitude, -amplitude).astype(np.float32)
    out = np.repeat(levels, np.diff(np.append(trans, n)))
    width = rise_time * sr / (2 * math.asin(0.8) / math.pi)      # ramp length for that 10-90 % time
    width = min(width, 0.5 * (float(spb) / 2 - 1))               # ramps never overlap
    if width > 1:
        # v = new_level * sin(pi * (n - c) / width) around the crossing c = position - 1/2; include the
        # rising edge of the word that would follow, so chunks concatenate seamlessly.
        edges = np.append(trans, n)
        new = np.append(levels, np.float32(amplitude))
        for off in range(-math.ceil(width / 2), math.ceil(width / 2) + 1):
            u = (off + 0.5) / width
            if abs(u) >= 0.5:
                continue
            idx = edges + off
            ok = (idx >= 0) & (idx < n)
            out[idx[ok]] = new[ok] * np.float32(math.sin(math.pi * u))
    return out


def encode(start_frame: int, count: int, rate: RateLike, sample_rate: int = 48000,
           amplitude: float = 0.5, *, user_bits: int = 0, color_frame: bool = False,
           rise_time: float = DEFAULT_RISE_TIME) -> np.ndarray:
    """Audio (float32, mono) of ``count`` consecutive LTC frames starting at 0-based ``start_frame``.

    Sample 0 is the start of ``start_frame``'s word; timing is anchored at frame 0 (see
    :func:`encode_words`), so ``encode(0, n) + encode(n, m)`` equals ``encode(0, n + m)`` and boundary
    ``k`` of ``encode(0, ...)`` is at ``round(k * sample_rate / (80 * fps))``.  Above 30 fps one word
    covers a frame pair, so ``start_frame`` and ``count`` must be even there.
    """
    fr = FrameRate.parse(rate)
    start, n = _count(start_frame, "start_frame"), _count(count, "count")
    per = frames_per_word(fr)
    if start % per or n % per:
        raise TimecodeError(f"LTC at {fr} sends one word per frame pair ({ltc_rate(fr)} timecode); "
                            f"start_frame and count must be even, got {start} and {n}")
    words = [ltc_word(start + per * i, fr, user_bits=user_bits, color_frame=color_frame)
             for i in range(n // per)]
    return encode_words(words, fr, sample_rate, amplitude, first_word=start // per, rise_time=rise_time)
