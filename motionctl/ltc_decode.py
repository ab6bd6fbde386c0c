"""Streaming LTC reader: audio samples in, timecode frames (with the sample each word starts on) out.

Why streaming: the runtime chases house timecode from a live audio input, so the reader takes
whatever block size the sound card delivers and keeps its state between blocks; :func:`decode` is
the one-shot form for files.  The design follows libltc's decoder (learnt from, not copied):

1. **Edges.**  A sliding min/max envelope (a few bit periods wide, centred, so the reader lags the
   input by ~1.5 bit periods) gives the signal's centre and swing, which removes any DC offset and
   gain.  A Schmitt trigger at centre +- 25 % of the swing turns samples into levels, so noise near a
   level cannot chatter; each level change is then timed at the last crossing of the centre before it,
   interpolated to a fraction of a sample.
2. **Bits.**  Biphase mark has a transition at every bit boundary and one more mid-bit for a 1, so
   the gap between edges is either a bit period ``T`` (a 0) or ``T/2`` (half of a 1).  ``T`` is tracked
   with a running average of the gaps (libltc does the same), which follows +-10 % speed and drift; a
   gap far outside ``T`` breaks the run of bits and, if it could be a bit of LTC between 16 and 40
   words a second, becomes the new ``T`` (so a jump in speed or a burst of noise is left within one
   bit).  A 1 is emitted on its first half so the last bit of a word (always 1) does not wait for the
   next word.
3. **Words.**  The last 80 bits live in an integer shift register.  Forwards the word ends with the
   sync word 0011 1111 1111 1101; played backwards the sync arrives first, as 1011 1111 1111 1100,
   followed by the 64 data bits in reverse (12 consecutive ones occur nowhere else in a valid word, so
   neither pattern can appear by accident).  The register then *is* the word in one direction and its
   bit-reverse in the other.

Every word is parsed (bad BCD is skipped and counted) and its label checked against the rate (labels
the rate cannot have, e.g. a drop-frame ``;00``, are skipped and counted).  Counters in
:attr:`LtcDecoder.errors`: ``gap`` (edge spacing far outside the bit period: dropout or speed jump),
``biphase`` (a lone half-bit), ``sync`` (no sync word 80 bits after the last one), ``bcd``, ``label``,
``rate_mismatch`` (drop-frame flag not that of the rate) and ``parity`` (polarity bit wrong; the
frame is still reported, since some generators do not set it).
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from motionctl.errors import TimecodeError
from motionctl.ltc_encode import (BITS_PER_WORD, SYNC_WORD, frames_per_word, ltc_rate, parse_word,
                                  word_parity_ok)
from motionctl.timecode import (FRAME_RATES, FrameRate, RateLike, frame_to_label, label_to_frame,
                                timecode_fields)

__all__ = ["LtcDecoder", "LtcFrame", "decode"]

_MASK80 = (1 << BITS_PER_WORD) - 1
_REVERSE_SYNC = int(f"{SYNC_WORD:016b}"[::-1], 2)       # 0xBFFC: the sync as heard backwards
_MIN_FPS, _MAX_FPS = 16.0, 40.0         # word rates the bit-period tracker may follow (24 fps -33 %, 30 +33 %)
_ALPHA = 0.2                            # weight of the newest gap in the running bit period
_HYSTERESIS = 0.25                      # Schmitt thresholds, as a fraction of the half swing
_MIN_SWING = 1e-3                       # half swing below this (-60 dBFS) is silence, not signal
_BLOCK = 1 << 18                        # samples processed at a time
_MIN_BATCH = 256                        # tiny feeds are batched up to this (5 ms at 48 kHz) before work


@dataclass(frozen=True)
class LtcFrame:
    """One decoded LTC word.

    ``label``/``frame``/``fields`` are at the decoder's rate (given or inferred); above 30 fps they
    name the first frame of the pair the word covers.  ``start_sample`` is the absolute offset, in
    the samples fed so far, of the first sample of the word: of bit 0 forwards, of bit 79 (heard first)
    when ``reverse``.  It is exact to a sample on clean input.
    """

    label: str
    frame: int
    start_sample: int
    reverse: bool
    drop_frame: bool
    fields: tuple[int, int, int, int]
    user_bits: int = 0
    color_frame: bool = False
    parity_ok: bool = True


class LtcDecoder:
    """Incremental LTC reader: :meth:`feed` blocks of samples, :meth:`flush` at the end of a stream.

    ``rate`` given: labels are validated against it (50/59.94/60 fps expect frame-pair LTC at the half
    rate).  ``rate=None``: the 24/25/30-frame count is inferred from the largest frames field, seconds
    roll-overs, the drop-frame flag and the bit period; 23.976 vs 24 and 29.97 vs 30 (same labels) only
    from the long-run frame rate against the sample clock (:attr:`rate`).  Frame counts do not depend on
    that choice, but a stream fed at the wrong speed cannot reveal it, nor can 50/60 fps LTC be told
    from 25/30 fps LTC.
    """

    def __init__(self, sample_rate: int, rate: RateLike | None = None) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Integral) \
                or not 8000 <= int(sample_rate) <= 768000:
            raise TimecodeError(f"sample_rate must be an integer 8000..768000 Hz, got {sample_rate!r}")
        self.sample_rate = int(sample_rate)
        self._given = None if rate is None else FrameRate.parse(rate)
        self.errors: Counter[str] = Counter()
        self.frames_decoded = 0
        sr = self.sample_rate
        self._t_min, self._t_max = sr / (80 * _MAX_FPS), sr / (80 * _MIN_FPS)
        word_fps = float(ltc_rate(self._given).fps) if self._given else math.sqrt(21.6 * 33.0)
        self._t_init = sr / (80 * word_fps)
        self._hw = math.ceil(1.5 * self._t_max)         # half window of the envelope: 3 slowest bits
        self._buf = np.zeros(0)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0
        self._buf_start = 0             # absolute index of _buf[0]
        self._next = 0                  # absolute index of the first sample not yet turned into levels
        self._level: int | None = None
        self._reset_bits()
        # rate inference (rate=None)
        self._max_ff = -1
        self._settled: int | None = None
        self._prev_word: tuple[int, bool, tuple[int, int, int, int]] | None = None
        self._run_anchor: tuple[int, float] | None = None
        self._run_last: tuple[int, float] | None = None
        self._measured_fps: float | None = None
        self._df_seen = False

    def _reset_bits(self) -> None:
        self._last_edge: float | None = None
        self._period = self._t_init
        self._second_half = False
        self._reg = 0
        self._times = [0.0] * BITS_PER_WORD
        self._pos = 0
        self._run = 0
        self._expect_sync: int | None = None

    # ------------------------------------------------------------------ samples -> edges
    def feed(self, samples: np.ndarray) -> list[LtcFrame]:
        """Decode the next block of mono samples (any real dtype, any length); return new frames."""
        x = np.asarray(samples)
        if x.ndim != 1 or not (np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x)):
            raise TimecodeError(f"LTC samples must be a 1-D real array, got shape {x.shape} {x.dtype}")
        self._pending.append(x)
        self._pending_size += x.size
        if self._pending_size < _MIN_BATCH:              # tiny blocks: wait for a few more first
            return []
        return self._take(final=False)

    def _take(self, final: bool) -> list[LtcFrame]:
        x = np.concatenate(self._pending) if self._pending else np.zeros(0)
        self._pending, self._pending_size = [], 0
        frames: list[LtcFrame] = []
        for at in range(0, x.size, _BLOCK):              # bounded temporaries for long recordings
            chunk = np.nan_to_num(x[at:at + _BLOCK].astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            self._buf = np.concatenate((self._buf, chunk))
            frames += self._process(final=False)
        return frames + (self._process(final=True) if final else [])

    def flush(self) -> list[LtcFrame]:
        """End of stream: decode the samples held back for look-ahead and close the last bit."""
        frames = self._take(final=True)
        end = self._buf_start + self._buf.size - 0.5
        if self._last_edge is not None and 0.3 * self._period < end - self._last_edge < 1.6 * self._period:
            frames += self._edges([end])
        self._level = None
        self._reset_bits()
        return frames

    @property
    def samples_fed(self) -> int:
        """Samples fed so far: the absolute offset the next sample will have."""
        return self._buf_start + self._buf.size + self._pending_size

    def _process(self, final: bool) -> list[LtcFrame]:
        buf, hw = self._buf, self._hw
        stop = buf.size if final else buf.size - hw          # keep look-ahead for the centred window
        lo = self._next - self._buf_start
        if stop <= lo:
            return []
        size = 2 * hw + 1
        mx = maximum_filter1d(buf, size, mode="nearest")
        mn = minimum_filter1d(buf, size, mode="nearest")
        center = (mx + mn) / 2
        swing = (mx - mn) / 2
        thr = np.where(swing > _MIN_SWING, _HYSTERESIS * swing, np.inf)
        seg = slice(lo, stop)
        ev = np.full(stop - lo, -1, np.int8)
        ev[buf[seg] > center[seg] + thr[seg]] = 1
        ev[buf[seg] < center[seg] - thr[seg]] = 0
        det = np.flatnonzero(ev >= 0)
        times: list[float] = []
        if det.size:
            state = ev[det]
            prev = self._level if self._level is not None else 1 - int(state[0])
            change = np.flatnonzero(state != np.concatenate(([prev], state[:-1])))
            idx = det[change] + lo                            # buffer index of each new level's first sample
            rising = state[change] == 1
            above = buf > center
            cross = np.flatnonzero(above[1:] != above[:-1]) + 1   # first index on the new side
            pos = np.searchsorted(cross, idx, side="right") - 1
            t = idx - 0.5
            ok = (pos >= 0) & (cross.size > 0)
            j = cross[np.maximum(pos, 0)] if cross.size else np.ones_like(idx)
            ok &= (j >= 1) & (above[j] == rising) & (j > idx - hw)
            j = np.where(ok, j, 1)
            a = buf[j - 1] - center[j - 1]
            b = buf[j] - center[j]
            frac = np.where(ok & (a != b), a / np.where(a != b, a - b, 1.0), 0.5)
            t = np.where(ok, j - 1 + np.clip(frac, 0.0, 1.0), t) + self._buf_start
            times = t.tolist()
            self._level = int(state[-1])
        self._next = self._buf_start + stop
        keep = max(0, stop - 2 * hw - 2)                      # history for the next block's windows
        self._buf = buf[keep:]
        self._buf_start += keep
        return self._edges(times)

    # ------------------------------------------------------------------ edges -> bits -> words
    def _edges(self, times: list[float]) -> list[LtcFrame]:
        """Biphase-mark decoding of edge times (a hot loop: kept flat, state in locals)."""
        out: list[LtcFrame] = []
        last, period, second = self._last_edge, self._period, self._second_half
        reg, ring, pos, run = self._reg, self._times, self._pos, self._run
        t_min, t_max = self._t_min, self._t_max
        for t in times:
            if last is None:
                last = t
                continue
            d = t - last
            start, last = last, t
            if d > 1.6 * period or d < 0.3 * period:          # dropout, glitch or sudden speed change
                self.errors["gap"] += 1
                run, second = 0, False
                if t_min <= d <= t_max:                      # re-acquire on the assumption of a 0
                    period, bit = d, 0
                else:
                    if t_min <= 2 * d <= t_max:
                        period = 2 * d
                    continue
            elif d < 0.75 * period:                          # half a bit
                period += _ALPHA * (2 * d - period)
                if second:
                    second = False
                    continue
                second, bit = True, 1
            else:                                            # a whole bit: 0
                period += _ALPHA * (d - period)
                if second:                                   # lone half: we were out of step
                    self.errors["biphase"] += 1
                    run, second = 0, False
                bit = 0
            reg = ((reg << 1) | bit) & _MASK80
            ring[pos % BITS_PER_WORD] = start
            pos += 1
            run += 1
            if run < BITS_PER_WORD:
                continue
            if reg & 0xFFFF == SYNC_WORD:
                word, reverse = int(f"{reg:080b}"[::-1], 2), False
            elif reg >> 64 == _REVERSE_SYNC:
                word, reverse = reg, True
            else:
                if self._expect_sync is not None and pos > self._expect_sync:
                    self.errors["sync"] += 1
                    self._expect_sync = None
                continue
            self._expect_sync = pos + BITS_PER_WORD
            self._period = period
            frame = self._word(word, ring[pos % BITS_PER_WORD], reverse, pos)
            if frame is not None:
                out.append(frame)
        self._last_edge, self._period, self._second_half = last, period, second
        self._reg, self._pos, self._run = reg, pos, run
        return out

    def _word(self, word: int, start: float, reverse: bool, pos: int) -> LtcFrame | None:
        try:
            hours, minutes, seconds, ff, df, user = parse_word(word)
        except TimecodeError:
            self.errors["bcd"] += 1
            return None
        parity = word_parity_ok(word)
        if not parity:
            self.errors["parity"] += 1
        start_sample = math.floor(start) + 1
        if self._given is None:
            self._observe(pos, reverse, (hours, minutes, seconds, ff), df)
        rate = self._given or self._guess(df)
        base = ltc_rate(rate)
        if df != base.drop_frame:
            self.errors["rate_mismatch"] += 1
            return None
        sep = ";" if df else ":"
        try:
            pair = label_to_frame(f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{ff:02d}", base)
        except TimecodeError:
            self.errors["label"] += 1
            return None
        frame = pair * frames_per_word(rate)
        if self._given is None:
            self._measure(frame, start)
        self.frames_decoded += 1
        return LtcFrame(frame_to_label(frame, rate), frame, start_sample, reverse, df,
                        timecode_fields(frame, rate), user, bool(word >> 11 & 1), parity)

    # ------------------------------------------------------------------ rate inference
    def _observe(self, pos: int, reverse: bool, fields: tuple[int, int, int, int], df: bool) -> None:
        """Learn the frame count per second from frames fields, roll-overs and the DF flag."""
        self._max_ff = max(self._max_ff, fields[3])
        self._df_seen |= df
        prev = self._prev_word
        if prev is not None and prev[0] == pos - BITS_PER_WORD and prev[1] == reverse \
                and prev[2][2] != fields[2]:
            older, newer = (fields, prev[2]) if reverse else (prev[2], fields)
            if newer[3] == 0 and older[3] + 1 in (24, 25, 30):
                self._settled = older[3] + 1
        self._prev_word = (pos, reverse, fields)

    def _nominal(self, df: bool) -> int:
        if df or self._df_seen or self._max_ff >= 25:
            return 30
        if self._settled is not None and self._settled > self._max_ff:
            return self._settled
        fps = self.sample_rate / (80 * self._period)
        return min((n for n in (24, 25, 30) if n > self._max_ff), key=lambda n: abs(n - fps))

    def _guess(self, df: bool) -> FrameRate:
        nominal = self._nominal(df)
        if nominal == 30 and (df or self._df_seen):
            return FRAME_RATES["29.97df"]
        if nominal == 25:
            return FRAME_RATES["25"]
        slow = Fraction(nominal * 1000, 1001)
        if self._measured_fps is not None and abs(self._measured_fps - slow) < abs(self._measured_fps - nominal):
            return FrameRate(nominal * 1000, 1001, False)
        return FrameRate(nominal, 1, False)

    def _measure(self, frame: int, start: float) -> None:
        """Long-run frames per second of sample clock over the current run of consecutive words."""
        last = self._run_last
        if last is None or abs(frame - last[0]) != 1:
            self._run_anchor = (frame, start)
        self._run_last = (frame, start)
        anchor = self._run_anchor
        assert anchor is not None
        if abs(frame - anchor[0]) >= 50:
            self._measured_fps = abs(frame - anchor[0]) * self.sample_rate / abs(start - anchor[1])

    @property
    def rate(self) -> FrameRate | None:
        """The rate given, or the best inference so far (None before the first frame)."""
        if self._given is not None:
            return self._given
        return None if self._max_ff < 0 else self._guess(self._df_seen)


def decode(samples: np.ndarray, sample_rate: int, rate: RateLike | None = None) -> list[LtcFrame]:
    """Decode a whole recording.  With ``rate=None`` every frame is relabelled at the rate inferred
    from the whole stream, so frames read before the inference settled are numbered consistently."""
    decoder = LtcDecoder(sample_rate, rate)
    frames = decoder.feed(samples) + decoder.flush()
    final = decoder.rate
    if rate is not None or final is None:
        return frames
    out = []
    for fr in frames:
        base = ltc_rate(final)
        if fr.drop_frame != base.drop_frame:
            continue
        hours, minutes, seconds, ff = fr.fields
        sep = ";" if fr.drop_frame else ":"
        try:
            frame = label_to_frame(f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{ff:02d}", base)
        except TimecodeError:
            continue
        out.append(replace(fr, label=frame_to_label(frame, final), frame=frame, fields=timecode_fields(frame, final)))
    return out
