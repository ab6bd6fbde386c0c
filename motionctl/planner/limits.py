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


def limit_violations(values: NDArray[np.float64], v: NDArray[np.float64], a: NDArray[np.float64],
                     j: NDArray[np.float64], limits: list[AxisLimits], frame_of_tick, timecode_of_frame,
                     ) -> list[Violation]:
    """Every run of ticks where a column leaves its range or exceeds a rate limit."""
    found: list[Violation] = []
    for i, lim in enumerate(limits):
        lo, hi = lim.lower + lim.margin, lim.upper - lim.margin
        checks = [
            (ViolationKind.POSITION, values[:, i], (values[:, i] < lo) | (values[:, i] > hi), None),
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
                    text = (f"{lim.name} reaches {peak * lim.to_display:.4g} {lim.display_unit}, beyond its "
                            f"{'lower' if peak < lo else 'upper'} limit with soft margin "
                            f"({limit_value * lim.to_display:.4g} {lim.display_unit})")
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
