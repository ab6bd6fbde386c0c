"""SMPTE 12M timecode: frame rates, labels, drop-frame and exact frame <-> time conversion.

Why this module exists: a motion-control move is keyed to picture frames, while cameras, recorders
and the LTC generator speak in timecode *labels* (``01:00:00;00``).  Getting drop-frame wrong shifts a
move by whole frames after the first minute, so every conversion here is integer or exact rational
arithmetic (:class:`fractions.Fraction`), never floating point.

Conventions (see ``PROTOCOLS.md`` section 4):

* A *frame* is a 0-based count of frames since the label ``00:00:00:00``.
* Drop-frame (29.97df, 59.94df) drops **labels**, never frames: ``;00 ;01`` (``;00``-``;03`` at
  59.94) are skipped at the start of every minute except minutes divisible by 10.
* Labels live on a 24 h clock; frame counts of a day or more wrap modulo 24 h when turned into a label
  (this is what a timecode generator does at midnight).  Elapsed *time* (:func:`frame_to_seconds`) never
  wraps.
* DF labels are written with ``;`` before the frames field.  When parsing, ``;``, ``.`` and ``:`` are all
  accepted on a DF rate (many tools write ``:``); ``;`` and ``.`` on an NDF rate are an error, because
  they claim a drop-frame count the rate does not have.

Every invalid input raises :class:`~motionctl.errors.TimecodeError` (a ``ValueError``) with one line.
"""

from __future__ import annotations

import math
import numbers
import re
from decimal import Decimal
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, Union

from motionctl.errors import TimecodeError

__all__ = [
    "FRAME_RATES", "FrameRate", "RateLike", "Timecode", "frame_to_label", "frame_to_seconds",
    "label_to_frame", "parse_timecode", "seconds_to_frame", "timecode_fields",
]

# (num, den, drop_frame) -> canonical label; the only rates SMPTE 12M (and this project) supports.
_SUPPORTED: dict[tuple[int, int, bool], str] = {
    (24000, 1001, False): "23.976",
    (24, 1, False): "24",
    (25, 1, False): "25",
    (30000, 1001, True): "29.97df",
    (30000, 1001, False): "29.97",
    (30, 1, False): "30",
    (48, 1, False): "48",
    (50, 1, False): "50",
    (60000, 1001, True): "59.94df",
    (60000, 1001, False): "59.94",
    (60, 1, False): "60",
}
_VALID_TEXT = ", ".join(_SUPPORTED.values())

# A decimal ("29.97", "23.98") or rational ("24000/1001") rate, optionally followed by df/ndf.
# Bounded digit counts keep hostile input (e.g. "1e999999") from costing anything.
_RATE_RE = re.compile(r"^([0-9]{1,6}(?:\.[0-9]{1,6})?|[0-9]{1,9}/[0-9]{1,9})[\s_-]*(df|ndf)?$", re.ASCII)
# HH:MM:SS<sep>FF with two ASCII digits per field; <sep> is ':' (NDF) or ';' / '.' (DF).
_LABEL_RE = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})([:;.])([0-9]{2})$", re.ASCII)
# How far a decimal spelling may be from an exact N*1000/1001 rate: "23.98" is 0.004 off 23.976...,
# "29.98" (0.0097 off) is not accepted.
_DECIMAL_TOLERANCE = Fraction(1, 200)

Rounding = Literal["floor", "nearest"]


@dataclass(frozen=True, order=False)
class FrameRate:
    """One of the eleven SMPTE rates: exact ``num/den`` frames per second plus the drop-frame flag.

    Frozen and validated on construction so that a ``FrameRate`` that exists is always a legal one;
    build them with :meth:`parse` or take them from :data:`FRAME_RATES`.
    """

    num: int
    den: int
    drop_frame: bool

    def __post_init__(self) -> None:
        key = (self.num, self.den, self.drop_frame)
        ok_types = (type(self.num) is int and type(self.den) is int and type(self.drop_frame) is bool)
        if not ok_types or key not in _SUPPORTED:
            raise TimecodeError(f"unsupported frame rate {self.num!r}/{self.den!r}"
                                f"{' df' if self.drop_frame else ''}; valid rates: {_VALID_TEXT}")

    @property
    def fps(self) -> Fraction:
        """Exact frames per second of real time (e.g. 30000/1001)."""
        return Fraction(self.num, self.den)

    @property
    def nominal(self) -> int:
        """Frames per label-second (the frames field runs 0..nominal-1): 24, 25, 30, 48, 50 or 60."""
        return -(-self.num // self.den)

    @property
    def frame_duration(self) -> Fraction:
        """Exact real duration of one frame, in seconds."""
        return Fraction(self.den, self.num)

    @property
    def dropped_per_minute(self) -> int:
        """Labels skipped at the start of each non-tenth minute: 0 (NDF), 2 (29.97df) or 4 (59.94df)."""
        return self.nominal // 15 if self.drop_frame else 0

    @property
    def frames_per_hour(self) -> int:
        """Frames in one hour of *labels* (54 of 60 minutes drop labels on DF rates)."""
        return self.nominal * 3600 - 54 * self.dropped_per_minute

    @property
    def frames_per_day(self) -> int:
        """Frames in 24 h of labels; frame counts wrap modulo this when turned into a label."""
        return 24 * self.frames_per_hour

    @property
    def label(self) -> str:
        """Canonical text of the rate, e.g. ``"29.97df"``; :meth:`parse` accepts it back."""
        return _SUPPORTED[(self.num, self.den, self.drop_frame)]

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, value: "RateLike") -> FrameRate:
        """Turn user text or a number into a rate; a ``FrameRate`` passes through unchanged.

        Accepts canonical labels, common spellings ("23.98", "29.97 DF", "29.97ndf", 25.0) and exact
        rationals ("24000/1001", which means the NDF rate unless followed by "df").  Why tolerant: rates
        arrive from config files, CLI flags and camera metadata, all spelled differently.
        """
        if isinstance(value, FrameRate):
            return value
        drop: bool | None = None
        if isinstance(value, str):
            text = value.strip().lower()
            match = _RATE_RE.match(text)
            if match is None:
                raise _rate_error(value)
            number, suffix = match.groups()
            exact = _parse_rate_number(number, value)
            drop = None if suffix is None else suffix == "df"
        elif isinstance(value, bool) or not isinstance(value, (numbers.Rational, float)):
            raise _rate_error(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise _rate_error(value)
        else:
            exact = Fraction(value)
        for (num, den, df), _label in _SUPPORTED.items():
            if df != bool(drop):
                continue
            target = Fraction(num, den)
            if exact == target or (den != 1 and abs(exact - target) <= _DECIMAL_TOLERANCE):
                return cls(num, den, df)
        raise _rate_error(value)


RateLike = Union[str, int, float, Fraction, FrameRate]

FRAME_RATES: dict[str, FrameRate] = {label: FrameRate(*key) for key, label in _SUPPORTED.items()}


def _rate_error(value: object) -> TimecodeError:
    return TimecodeError(f"unknown frame rate {value!r}; valid rates: {_VALID_TEXT}")


def _parse_rate_number(number: str, original: str) -> Fraction:
    if "/" in number:
        num, den = (int(part) for part in number.split("/"))
        if den == 0:
            raise _rate_error(original)
        return Fraction(num, den)
    return Fraction(number)


def _rate(rate: RateLike) -> FrameRate:
    return FrameRate.parse(rate)


def _check_frame(frame: object) -> int:
    """Why strict: a float or bool frame is almost always a unit mix-up (seconds, a flag), not a frame."""
    if isinstance(frame, bool) or not isinstance(frame, numbers.Integral):
        raise TimecodeError(f"frame must be an integer frame count, got {frame!r}")
    value = int(frame)
    if value < 0:
        raise TimecodeError(f"frame must not be negative, got {value}")
    return value


def timecode_fields(frame: int, rate: RateLike) -> tuple[int, int, int, int]:
    """Return the label fields ``(hours, minutes, seconds, frames)`` of a 0-based frame count.

    Frame counts of a day or more wrap modulo 24 h of labels.  Kept separate from
    :func:`frame_to_label` because the LTC encoder needs the numbers, not the text.
    """
    fr = _rate(rate)
    n = _check_frame(frame) % fr.frames_per_day
    nominal, drop = fr.nominal, fr.dropped_per_minute
    if drop:
        # Re-insert the dropped labels: 9 drops per full 10-minute block, then one drop per minute
        # boundary crossed inside the current block (the block's first minute drops nothing).
        per_ten = nominal * 600 - 9 * drop
        per_minute = nominal * 60 - drop
        blocks, rest = divmod(n, per_ten)
        n += 9 * drop * blocks
        if rest >= drop:
            n += drop * ((rest - drop) // per_minute)
    total_seconds, frames = divmod(n, nominal)
    total_minutes, seconds = divmod(total_seconds, 60)
    hours, minutes = divmod(total_minutes, 60)
    return hours, minutes, seconds, frames


def frame_to_label(frame: int, rate: RateLike) -> str:
    """Format a 0-based frame count as ``HH:MM:SS:FF`` (``HH:MM:SS;FF`` for drop-frame).

    Frame counts of a day or more wrap modulo 24 h, like a timecode generator at midnight.
    """
    fr = _rate(rate)
    hours, minutes, seconds, frames = timecode_fields(frame, fr)
    sep = ";" if fr.drop_frame else ":"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{frames:02d}"


def label_to_frame(label: str, rate: RateLike) -> int:
    """Parse ``HH:MM:SS:FF`` into a 0-based frame count in ``[0, rate.frames_per_day)``.

    Rejects anything that is not a label that exists at ``rate``: out-of-range fields, labels that
    drop-frame skips, and a ``;``/``.`` frames separator on a non-drop rate.
    """
    fr = _rate(rate)
    if not isinstance(label, str):
        raise TimecodeError(f"timecode label must be text, got {label!r}")
    match = _LABEL_RE.match(label.strip())
    if match is None:
        raise TimecodeError(f"malformed timecode {label!r}: expected HH:MM:SS:FF "
                            f"(HH:MM:SS;FF for drop-frame)")
    hh, mm, ss, sep, ff = match.groups()
    hours, minutes, seconds, frames = int(hh), int(mm), int(ss), int(ff)
    if sep != ":" and not fr.drop_frame:
        raise TimecodeError(f"timecode {label!r} uses the drop-frame separator {sep!r} "
                            f"but {fr} is not drop-frame; use ':'")
    if hours >= 24:
        raise TimecodeError(f"timecode {label!r}: hours must be 00-23")
    if minutes >= 60:
        raise TimecodeError(f"timecode {label!r}: minutes must be 00-59")
    if seconds >= 60:
        raise TimecodeError(f"timecode {label!r}: seconds must be 00-59")
    if frames >= fr.nominal:
        raise TimecodeError(f"timecode {label!r}: frames must be 00-{fr.nominal - 1:02d} at {fr}")
    drop = fr.dropped_per_minute
    if drop and seconds == 0 and minutes % 10 != 0 and frames < drop:
        raise TimecodeError(f"timecode {label!r} does not exist at {fr}: drop-frame skips frames "
                            f"00-{drop - 1:02d} at the start of every minute not divisible by 10")
    total_minutes = hours * 60 + minutes
    count = (total_minutes * 60 + seconds) * fr.nominal + frames
    return count - drop * (total_minutes - total_minutes // 10)


def frame_to_seconds(frame: int, rate: RateLike) -> Fraction:
    """Exact real elapsed time of ``frame`` frames: ``frame * den / num`` seconds.

    On DF rates this is real time, not label time (``01:00:00;00`` is 3599.9964 s).  Never wraps.
    """
    fr = _rate(rate)
    return _check_frame(frame) * fr.frame_duration


def seconds_to_frame(seconds: Fraction | float | int | Decimal, rate: RateLike,
                     rounding: Rounding = "floor") -> int:
    """Frame count at real time ``seconds`` using exact rational arithmetic.

    ``rounding="floor"`` gives the frame being shown at that instant (exact inverse of
    :func:`frame_to_seconds`); ``"nearest"`` rounds half up.  Floats are converted exactly with
    ``Fraction(float)``, so a float that is a hair below a frame boundary floors to the frame before:
    prefer ``"nearest"`` for float input.
    """
    fr = _rate(rate)
    if isinstance(seconds, bool) or not isinstance(seconds, (numbers.Rational, float, Decimal)):
        raise TimecodeError(f"seconds must be a number, got {seconds!r}")
    finite = seconds.is_finite() if isinstance(seconds, Decimal) else math.isfinite(seconds)
    if not finite:
        raise TimecodeError(f"seconds must be finite, got {seconds!r}")
    exact = Fraction(seconds) * fr.fps
    if exact < 0:
        raise TimecodeError(f"seconds must not be negative, got {seconds!r}")
    if rounding == "floor":
        return math.floor(exact)
    if rounding == "nearest":
        return math.floor(exact + Fraction(1, 2))
    raise TimecodeError(f"rounding must be 'floor' or 'nearest', got {rounding!r}")


@dataclass(frozen=True, order=False)
class Timecode:
    """A frame position at a rate; the label is derived, so arithmetic is plain integer arithmetic.

    ``frame`` counts from ``00:00:00:00``.  It may reach a day or more through arithmetic (or direct
    construction); the label then wraps modulo 24 h while :attr:`seconds` keeps counting.
    Ordering compares frames and requires the same rate (``TimecodeError`` otherwise); equality between
    different rates is simply ``False``.  ``rate`` may be given as anything :meth:`FrameRate.parse` takes.
    """

    frame: int
    rate: FrameRate

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame", _check_frame(self.frame))
        object.__setattr__(self, "rate", _rate(self.rate))

    @classmethod
    def parse(cls, label: str, rate: RateLike) -> Timecode:
        """Timecode of a label at ``rate`` (see :func:`label_to_frame` for what is accepted)."""
        fr = _rate(rate)
        return cls(label_to_frame(label, fr), fr)

    @classmethod
    def from_seconds(cls, seconds: Fraction | float | int, rate: RateLike,
                     rounding: Rounding = "floor") -> Timecode:
        """Timecode at real elapsed time ``seconds`` (see :func:`seconds_to_frame`)."""
        fr = _rate(rate)
        return cls(seconds_to_frame(seconds, fr, rounding), fr)

    @property
    def label(self) -> str:
        """``HH:MM:SS:FF`` / ``HH:MM:SS;FF`` text, wrapping modulo 24 h."""
        return frame_to_label(self.frame, self.rate)

    @property
    def fields(self) -> tuple[int, int, int, int]:
        """``(hours, minutes, seconds, frames)`` of the label."""
        return timecode_fields(self.frame, self.rate)

    @property
    def seconds(self) -> Fraction:
        """Exact real elapsed time since ``00:00:00:00`` (not wrapped)."""
        return frame_to_seconds(self.frame, self.rate)

    def __str__(self) -> str:
        return self.label

    def _offset(self, delta: object, sign: int) -> Timecode:
        if isinstance(delta, bool) or not isinstance(delta, numbers.Integral):
            raise TimecodeError(f"can only add or subtract whole frames (int) to a timecode, got {delta!r}")
        frame = self.frame + sign * int(delta)
        if frame < 0:
            op = "+" if sign > 0 else "-"
            raise TimecodeError(f"{self} {op} {int(delta)} frames is before 00:00:00:00")
        return Timecode(frame, self.rate)

    def __add__(self, other: int) -> Timecode:
        return self._offset(other, 1)

    def __radd__(self, other: int) -> Timecode:
        return self._offset(other, 1)

    def __sub__(self, other: int | Timecode) -> Timecode | int:  # type: ignore[override]
        if isinstance(other, Timecode):
            return self.frame - self._same_rate(other).frame
        return self._offset(other, -1)

    def _same_rate(self, other: object) -> Timecode:
        if not isinstance(other, Timecode):
            raise TimecodeError(f"cannot compare a timecode with {other!r}")
        if other.rate != self.rate:
            raise TimecodeError(f"cannot mix timecodes at {self.rate} and {other.rate}")
        return other

    def __lt__(self, other: Timecode) -> bool:
        return self.frame < self._same_rate(other).frame

    def __le__(self, other: Timecode) -> bool:
        return self.frame <= self._same_rate(other).frame

    def __gt__(self, other: Timecode) -> bool:
        return self.frame > self._same_rate(other).frame

    def __ge__(self, other: Timecode) -> bool:
        return self.frame >= self._same_rate(other).frame


def parse_timecode(label: str, rate: RateLike) -> Timecode:
    """Convenience for :meth:`Timecode.parse`."""
    return Timecode.parse(label, rate)
