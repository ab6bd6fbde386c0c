"""Limits on every servo tick: position (with soft margin), velocity, acceleration and jerk per axis.

Derivatives are backward finite differences of the samples at the servo rate, with the axis at rest
before the first sample: exactly what a drive receiving the setpoints sees, and what anyone can
recompute from the plan CSV.  A spike between two frames cannot hide: every tick is checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from motionctl.planner.report import Violation, ViolationKind

#: Limits are compared with this relative slack, so a profile planned exactly at a limit is not
#: flagged for floating-point rounding.
RELATIVE_SLACK = 1e-9

#: Positions are compared with their limits (hard, and soft: hard minus the margin) with this absolute
#: slack, in the column's SI unit (m, rad) or lens unit.  A key written exactly on a limit must pass:
#: -359.5 deg is -6.274458660919615 rad, while the soft limit -360 deg + 0.5 deg is -6.274458660919614
#: rad, one rounding step apart.  Such rounding (degree -> radian, margin arithmetic, spline evaluation)
#: is a few ulps of values below 10^2, i.e. below 1e-12; the finest encoder step of any drive is 1e-6 m
#: (track) or 1.2e-5 rad (2^19 counts per turn).  1e-9 sits well above the first and three orders of
#: magnitude below the second: nothing a drive could execute hides in it.
POSITION_TOLERANCE = 1e-9


def derivatives(samples: NDArray[np.float64], rate_hz: float) -> tuple[NDArray[np.float64], ...]:
    """Velocity, acceleration, jerk (each shaped like ``samples``) by backward differences."""
    padded = np.concatenate([np.repeat(samples[:1], 3, axis=0), samples], axis=0)
    v = np.diff(padded, axis=0) * rate_hz
    a = np.diff(v, axis=0) * rate_hz
    j = np.diff(a, axis=0) * rate_hz
    return v[2:], a[1:], j


@dataclass(frozen=True)
class AxisLimits:
    """Limits of one column of a trajectory, with how to show its values to people."""

    name: str
    unit: str                 # SI unit of the value (m, rad, or the lens unit)
    lower: float              # hard range
    upper: float
    margin: float             # soft margin kept inside the range on the path
    vmax: float
    amax: float
    jmax: float
    to_display: float = 1.0   # factor to the unit people read (180/pi for rad -> deg)
    display_unit: str = ""


def axis_limits(rig) -> list[AxisLimits]:
    """Every arm axis then every lens axis, in trajectory column order."""
    out = [AxisLimits(a.name, a.unit, a.min, a.max, a.soft_margin, a.vmax, a.amax, a.jmax,
                      1.0 if a.linear else 180.0 / math.pi, a.file_unit) for a in rig.axes]
    out += [AxisLimits(f"lens.{l.name}", l.unit, l.min, l.max, 0.0, l.vmax, l.amax, l.jmax, 1.0, l.unit)
            for l in rig.lens]
    return out


def runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Inclusive (first, last) index pairs of the True runs in ``mask``."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


@dataclass(frozen=True)
class Peaks:
    """Largest |velocity|, |acceleration|, |jerk| per axis over the trajectory."""

    v: NDArray[np.float64]
    a: NDArray[np.float64]
    j: NDArray[np.float64]


def peaks(v: NDArray[np.float64], a: NDArray[np.float64], j: NDArray[np.float64]) -> Peaks:
    return Peaks(np.abs(v).max(axis=0), np.abs(a).max(axis=0), np.abs(j).max(axis=0))


def scale_needed_per_tick(v: NDArray[np.float64], a: NDArray[np.float64], j: NDArray[np.float64],
                          limits: list[AxisLimits]) -> NDArray[np.float64]:
    """Per row of (ticks, axes) rates: the uniform time-scale factor that row alone would need.

    Scaling time by k divides velocity by k, acceleration by k^2 and jerk by k^3.
    """
    need = np.abs(v) / np.array([l.vmax for l in limits])
    need = np.maximum(need, np.sqrt(np.abs(a) / np.array([l.amax for l in limits])))
    need = np.maximum(need, np.cbrt(np.abs(j) / np.array([l.jmax for l in limits])))
    return need.max(axis=1)


def time_scale_needed(p: Peaks, limits: list[AxisLimits]) -> float:
    """Uniform time-scale factor that brings every peak to its limit (> 1: slower; < 1: could be faster)."""
    return max(1e-9, float(scale_needed_per_tick(p.v[None], p.a[None], p.j[None], limits)[0]))


@dataclass(frozen=True, eq=False)
class KeyValues:
    """A key's own values of every column (axes then lens, SI), so a position run can name the key.

    An operator fixes a key, not a run of ticks: when the path is beyond a position limit because a key
    itself is, the violation says which key (index, frame, timecode), with its value and the limit.
    """

    index: int                   # the key's index in the move file
    frame: int                   # its frame in the move file
    first_tick: int              # the ticks of the trajectory around the key and its hold (the run that
    last_tick: int               # holds any of them is the key's doing when the key is beyond the limit)
    values: NDArray[np.float64]


def soft_range(lim: AxisLimits) -> tuple[float, float]:
    """The range the path and the keys keep to: the hard range less the soft margin on each side."""
    return lim.lower + lim.margin, lim.upper - lim.margin


def outside(values: NDArray[np.float64] | float, lo: float, hi: float) -> NDArray[np.bool_]:
    """Where ``values`` are beyond ``lo``..``hi`` by more than :data:`POSITION_TOLERANCE`."""
    values = np.asarray(values, dtype=float)
    return (values < lo - POSITION_TOLERANCE) | (values > hi + POSITION_TOLERANCE)


def _apart(value: float, limit: float, scale: float) -> tuple[str, str]:
    """``value`` and ``limit`` shown with as few digits (4 at least) as it takes to tell them apart.

    A value 1e-6 deg beyond -359.5 deg must not read "reaches -359.5 deg, beyond ... (-359.5 deg)".
    """
    a = b = ""
    for digits in range(4, 16):
        a, b = f"{value * scale:.{digits}g}", f"{limit * scale:.{digits}g}"
        if a != b:
            break
    return a, b


def _key_text(lim: AxisLimits, culprits: list[KeyValues], i: int, lo: float, hi: float,
              timecode_of_frame) -> str:
    """The reason of a position run caused by keys: the worst key named, any others listed after it."""
    def excess(k: KeyValues) -> float:
        return float(max(lo - k.values[i], k.values[i] - hi))

    ordered = sorted(culprits, key=excess, reverse=True)
    worst = ordered[0]
    value = float(worst.values[i])
    soft = lo if value < lo else hi
    hard = lim.lower if value < lo else lim.upper
    shown, soft_shown = _apart(value, soft, lim.to_display)
    unit = lim.display_unit
    if lim.margin and not outside(value, lim.lower, lim.upper):
        where = (f"inside its {lim.margin * lim.to_display:g} {unit} soft margin (soft limit {soft_shown} "
                 f"{unit}, hard limit {hard * lim.to_display:g} {unit}): keys, like the path, stay inside "
                 "the soft limit")
    elif lim.margin:
        where = (f"beyond its hard limit {hard * lim.to_display:g} {unit} (soft limit {soft_shown} {unit})")
    else:
        where = f"beyond its limit {soft_shown} {unit}"
    text = (f"key {worst.index} at frame {worst.frame} ({timecode_of_frame(worst.frame)}) puts "
            f"{lim.name} at {shown} {unit}, {where}")
    if len(ordered) > 1:
        text += "; so do " + ", ".join(f"key {k.index} (frame {k.frame})" for k in ordered[1:])
    return text


def key_margin_violations(keys: list[KeyValues], limits: list[AxisLimits], timecode_of_frame,
                          ) -> list[Violation]:
    """A violation for every key inside a soft margin but within the hard range.

    For a report without a trajectory (a key out of reach): :func:`motionctl.planner.keys.solve_keys`
    reports keys beyond the hard range, and this adds those the per-tick check would have named, so the
    operator can fix every key in one pass.
    """
    found: list[Violation] = []
    for k in keys:
        for i, lim in enumerate(limits):
            lo, hi = soft_range(lim)
            value = float(k.values[i])
            if not lim.margin or not outside(value, lo, hi) or outside(value, lim.lower, lim.upper):
                continue
            tc = timecode_of_frame(k.frame)
            found.append(Violation(ViolationKind.POSITION, lim.name, k.frame, k.frame, tc, tc, value,
                                   lo if value < lo else hi, lim.unit,
                                   _key_text(lim, [k], i, lo, hi, timecode_of_frame)))
    return found


def limit_violations(values: NDArray[np.float64], v: NDArray[np.float64], a: NDArray[np.float64],
                     j: NDArray[np.float64], limits: list[AxisLimits], frame_of_tick, timecode_of_frame,
                     keys: list[KeyValues] | None = None) -> list[Violation]:
    """Every run of ticks where a column leaves its range or exceeds a rate limit.

    Positions are held to the soft range (keys included: a key inside the margin puts the path there)
    with :data:`POSITION_TOLERANCE`.  A position run that holds a ``keys`` entry beyond the soft range
    names that key.
    """
    found: list[Violation] = []
    keys = keys or []
    for i, lim in enumerate(limits):
        lo, hi = soft_range(lim)
        checks = [
            (ViolationKind.POSITION, values[:, i], outside(values[:, i], lo, hi), None),
            (ViolationKind.VELOCITY, v[:, i], np.abs(v[:, i]) > lim.vmax * (1 + RELATIVE_SLACK), lim.vmax),
            (ViolationKind.ACCELERATION, a[:, i], np.abs(a[:, i]) > lim.amax * (1 + RELATIVE_SLACK), lim.amax),
            (ViolationKind.JERK, j[:, i], np.abs(j[:, i]) > lim.jmax * (1 + RELATIVE_SLACK), lim.jmax),
        ]
        for kind, series, mask, limit in checks:
            for first, last in runs(mask):
                window = series[first: last + 1]
                if kind is ViolationKind.POSITION:
                    worst = int(np.argmax(np.maximum(lo - window, window - hi)))
                    peak = float(window[worst])
                    limit_value = lo if peak < lo else hi
                    culprits = [k for k in keys if k.first_tick <= last and k.last_tick >= first
                                and bool(outside(k.values[i], lo, hi))]
                    if culprits:
                        text = _key_text(lim, culprits, i, lo, hi, timecode_of_frame)
                    else:
                        shown, limit_shown = _apart(peak, limit_value, lim.to_display)
                        text = (f"{lim.name} reaches {shown} {lim.display_unit}, beyond its "
                                f"{'lower' if peak < lo else 'upper'} limit with soft margin "
                                f"({limit_shown} {lim.display_unit})")
                else:
                    worst = int(np.argmax(np.abs(window)))
                    peak = float(window[worst])
                    limit_value = float(limit)
                    unit = {ViolationKind.VELOCITY: "/s", ViolationKind.ACCELERATION: "/s^2",
                            ViolationKind.JERK: "/s^3"}[kind]
                    text = (f"{lim.name} {kind.value} {abs(peak) * lim.to_display:.4g} {lim.display_unit}{unit} "
                            f"exceeds its limit {limit_value * lim.to_display:.4g} {lim.display_unit}{unit} "
                            f"({abs(peak) / limit_value:.0%})")
                f0, f1 = frame_of_tick(first), frame_of_tick(last)
                unit_si = lim.unit + {ViolationKind.POSITION: "", ViolationKind.VELOCITY: "/s",
                                      ViolationKind.ACCELERATION: "/s^2", ViolationKind.JERK: "/s^3"}[kind]
                found.append(Violation(kind, lim.name, f0, f1, timecode_of_frame(f0), timecode_of_frame(f1),
                                       peak, limit_value, unit_si, text))
    return found
