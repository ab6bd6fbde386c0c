"""Retiming along the same path: uniform stretch, or time-optimal (TOPP-RA) made jerk-limited.

A retimed move is the same path ``q(s)`` (``s`` = instant of the move as keyed) walked with a new time
law ``s(t)``; nothing but timing changes, so clearance and camera-path error are unchanged.

``fastest``: the move is split at its full stops (instants where every axis rests: holds keep their
length, and corners stay stops).  On each moving segment toppra computes the time-optimal path speed
``sdot(s)`` under velocity and acceleration limits.  TOPP-RA's profile is bang-bang in acceleration, so
its jerk is unbounded; the path speed is therefore smoothed in time by two moving averages (an FIR
filter, as jerk-limited CNC interpolators do) and the result scaled by the largest factor for which the
sampled trajectory passes every velocity, acceleration and jerk check.  Filtering the path speed, not
the joints, keeps the motion exactly on the path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import make_interp_spline
from scipy.ndimage import uniform_filter1d

from motionctl.errors import PlanningError
from motionctl.planner.limits import AxisLimits, derivatives, peaks, time_scale_needed
from motionctl.planner.path import ReferencePath
from motionctl.planner.tracking import JointPath
from motionctl.planner.trajectory import Trajectory

#: (run ticks, keyed instants) -> joint and lens values at those ticks, (K, axes + lens)
Resample = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]
_GRID_PER_SECOND = 200          # TOPP-RA grid density along the move (per second of keyed time)
_VIRTUAL_V = 20.0               # at most 20x the keyed speed ...
_VIRTUAL_A = 400.0              # ... and this path acceleration, where no real axis moves
#: FIR smoothing widths tried, in units of max(amax / jmax): wider lowers the jerk the path's curvature adds
#: (less uniform slow-down afterwards) but costs its own width in time; the fastest legal result wins.
_FIR_WIDTHS = (1.0, 1.25, 1.5, 1.75, 2.0)


def _ticks(duration: float, rate: int) -> NDArray[np.float64]:
    return np.arange(int(np.ceil(duration * rate - 1e-9)) + 1, dtype=float) / rate


def _fits(values: NDArray[np.float64], rate: int, limits: list[AxisLimits]) -> float:
    """Uniform time factor the sampled values would need (<= 1: every rate limit holds)."""
    return time_scale_needed(peaks(*derivatives(values, rate)), limits)


def stretch_time_map(trajectory: Trajectory, limits: list[AxisLimits], duration: float, rate: int,
                     resample: Resample) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Slow the whole move uniformly (holds included) until every rate limit holds on every tick."""
    values = np.concatenate([trajectory.q, trajectory.lens], axis=1)
    factor = max(1.0, _fits(values, rate, limits))
    for _ in range(8):
        t = _ticks(duration * factor, rate)
        candidate = resample(t, t / factor)
        needed = _fits(candidate, rate, limits)
        if needed <= 1.0:
            return t, t / factor
        factor *= needed * (1 + 1e-6)
    raise PlanningError("could not find a uniform time scale that respects the limits")


class _SegmentPath:
    """Joints and lens of one moving segment as a toppra geometric path in the keyed time ``s``."""

    def __init__(self, joint_path: JointPath, reference: ReferencePath, s0: float, s1: float) -> None:
        self.joint_path, self.reference, self.s0, self.s1 = joint_path, reference, s0, s1

    def __call__(self, s, order: int = 0):
        arr = np.atleast_1d(np.asarray(s, dtype=float))
        q = self.joint_path(arr, order)
        lens = (np.concatenate([c(arr, order) for c in self.reference.lens], axis=-1) if self.reference.lens
                else np.zeros((len(arr), 0)))
        # A virtual last axis is the keyed time itself: its bounded rate keeps TOPP-RA well conditioned
        # where every real axis comes to rest (their path derivatives vanish there).
        virtual = arr[:, None] if order == 0 else np.full((len(arr), 1), 1.0 if order == 1 else 0.0)
        if order >= 3:
            virtual[:] = 0.0
        out = np.concatenate([q, lens, virtual], axis=1)
        return out if np.ndim(s) else out[0]

    @property
    def dof(self) -> int:
        return int(self(np.array([self.s0])).shape[1])

    @property
    def path_interval(self) -> NDArray[np.float64]:
        return np.array([self.s0, self.s1])

    # toppra calls these
    def eval(self, s):
        return self(s, 0)

    def evald(self, s):
        return self(s, 1)

    def evaldd(self, s):
        return self(s, 2)

    @property
    def waypoints(self):
        return None


def full_stops(reference: ReferencePath) -> NDArray[np.float64]:
    """Instants where every axis of the move is at rest (from the channels' own rest points)."""
    rest: set[float] = set()
    for stretch in reference.stretches:
        rest |= set(stretch.rest_times.tolist())
    for lens in reference.lens:
        rest &= set(lens.rest_times.tolist()) | {reference.duration, 0.0}
    rest |= {0.0, reference.duration}
    return np.array(sorted(rest))


def _is_hold(joint_path: JointPath, reference: ReferencePath, s0: float, s1: float) -> bool:
    probe = np.linspace(s0, s1, 17)
    q = joint_path(probe)
    lens = reference.lens_values(probe)
    return bool(np.all(np.abs(q - q[0]) <= 1e-12) and np.all(np.abs(lens - lens[0]) <= 1e-12))


def jerk_speed_cap(path: _SegmentPath, limits: list[AxisLimits], probe: NDArray[np.float64]) -> NDArray[np.float64]:
    """Path-speed cap from jerk: along a path, jerk contains ``x_sss * sdot^3``, so
    ``sdot <= (jmax / |x_sss|)^(1/3)`` on every axis.  TOPP-RA ignores jerk; without this cap it races
    through the ends of a segment, where the keyed timing is slow, and no smoothing could undo that."""
    third = np.abs(path(probe, 3))[:, :-1]
    jmax = np.array([l.jmax for l in limits])
    return np.minimum(np.min(np.cbrt(jmax / np.maximum(third, 1e-12)), axis=1), _VIRTUAL_V)


def toppra_speed(path: _SegmentPath, limits: list[AxisLimits], grid: NDArray[np.float64],
                 cap: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
                 ) -> tuple[NDArray[np.float64], float]:
    """TOPP-RA's optimal path speed sdot at ``grid`` (rest to rest) and its duration.

    ``cap`` = (s samples, sdot bound) limits the path speed as well (on the virtual axis); without it
    this is the plain time-optimal timing under the velocity and acceleration limits.
    """
    import toppra.algorithm as algo
    import toppra.constraint as constraint

    logging.getLogger("toppra").setLevel(logging.ERROR)
    real = np.array([[-l.vmax, l.vmax] for l in limits])
    if cap is None:
        velocity = constraint.JointVelocityConstraint(np.vstack([real, [[-_VIRTUAL_V, _VIRTUAL_V]]]))
    else:
        where, bound = cap

        def velocity_limits(s: float) -> NDArray[np.float64]:
            b = float(np.interp(s, where, bound))
            return np.vstack([real, [[-b, b]]])

        velocity = constraint.JointVelocityConstraintVarying(velocity_limits)
    alim = np.array([[-l.amax, l.amax] for l in limits] + [[-_VIRTUAL_A, _VIRTUAL_A]])
    instance = algo.TOPPRA([velocity, constraint.JointAccelerationConstraint(alim)], path, gridpoints=grid,
                           parametrizer="ParametrizeConstAccel")
    sdd, sd, _ = instance.compute_parameterization(0.0, 0.0)
    if sd is None:
        raise PlanningError("TOPP-RA found no feasible timing for a segment of the path")
    sd = np.maximum(np.asarray(sd, dtype=float), 0.0)
    ds = np.diff(grid)
    duration = float(np.sum(2 * ds / np.maximum(sd[:-1] + sd[1:], 1e-12)))
    return sd, duration


def fastest_time_map(joint_path: JointPath, reference: ReferencePath, limits: list[AxisLimits], rate: int,
                     resample: Resample) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Near time-optimal, jerk-limited time law: run ticks, their keyed instants, and the duration of
    toppra's (jerk-unlimited) optimum along the same path, holds included, for comparison."""
    stops = full_stops(reference)
    pieces_t: list[NDArray[np.float64]] = []   # per segment: local times and keyed instants
    pieces_s: list[NDArray[np.float64]] = []
    offset = 0.0
    toppra_total = 0.0
    for s0, s1 in zip(stops[:-1], stops[1:]):
        if s1 - s0 <= 0:
            continue
        if _is_hold(joint_path, reference, s0, s1):
            pieces_t.append(np.array([offset, offset + (s1 - s0)]))
            pieces_s.append(np.array([s0, s1]))
            offset += s1 - s0
            toppra_total += s1 - s0
            continue
        t_local, s_local, optimum = _segment_time_law(joint_path, reference, limits, rate, s0, s1, resample)
        uniform = _uniform_segment(s0, s1, limits, rate, resample)
        if uniform is not None and uniform[0][-1] < t_local[-1]:
            t_local, s_local = uniform   # the keyed timing, sped up or slowed uniformly, is faster here
        pieces_t.append(offset + t_local)
        pieces_s.append(s_local)
        offset += float(t_local[-1])
        toppra_total += optimum
    t_all = _ticks(offset, rate)
    s_all = np.empty_like(t_all)
    for t_piece, s_piece in zip(pieces_t, pieces_s):
        mask = (t_all >= t_piece[0]) & (t_all <= t_piece[-1])
        if len(t_piece) == 2:   # a hold: keyed time runs at real speed, nothing moves
            s_all[mask] = s_piece[0] + (t_all[mask] - t_piece[0])
        else:
            s_all[mask] = np.interp(t_all[mask], t_piece, s_piece)
    s_all[t_all > offset] = reference.duration
    return t_all, s_all, toppra_total


def _fir_time_law(grid: NDArray[np.float64], sd: NDArray[np.float64], tau: float, rate: int,
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Smooth a TOPP-RA speed profile in time with two moving averages of width ``tau``.

    TOPP-RA's path speed is piecewise linear in time (constant path acceleration between grid points),
    so its path acceleration jumps.  A moving average turns each jump into a ramp of length ``tau``:
    path jerk is then bounded by (jump / tau), and the walk is still monotone along the same path,
    starting and ending at rest (the rest is zero padding); it takes ``2 tau`` longer.
    """
    s0, s1 = float(grid[0]), float(grid[-1])
    t_grid = np.concatenate([[0.0], np.cumsum(2 * np.diff(grid) / np.maximum(sd[:-1] + sd[1:], 1e-12))])
    fine_dt = 1.0 / (4 * rate)
    speed = np.interp(np.arange(0.0, t_grid[-1] + fine_dt, fine_dt), t_grid, sd)
    width = max(1, int(round(tau / fine_dt)))
    padded = np.concatenate([np.zeros(2 * width), speed, np.zeros(2 * width)])
    for _ in range(2):   # two passes: path jerk bounded and continuous
        padded = uniform_filter1d(padded, size=width, mode="constant")
    travelled = np.concatenate([[0.0], np.cumsum(0.5 * (padded[1:] + padded[:-1]) * fine_dt)])
    travelled *= (s1 - s0) / travelled[-1]
    moving = np.flatnonzero(padded > 0.0)
    lo, hi = max(moving[0] - 1, 0), min(moving[-1] + 1, len(padded) - 1)
    return np.arange(hi - lo + 1) * fine_dt, s0 + travelled[lo: hi + 1]


def _uniform_segment(s0: float, s1: float, limits: list[AxisLimits], rate: int, resample: Resample,
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The segment's keyed timing scaled uniformly to its limits (a floor for ``fastest``)."""
    nominal = s0 + _ticks(s1 - s0, rate)
    factor = _fits(resample(nominal - s0, np.minimum(nominal, s1)), rate, limits)
    for _ in range(8):
        ticks = _ticks((s1 - s0) * factor, rate)
        s_ticks = np.minimum(s0 + ticks / factor, s1)
        needed = _fits(resample(ticks, s_ticks), rate, limits)
        if needed <= 1.0:
            return ticks, s_ticks
        factor *= needed * (1 + 1e-6)
    return None


def _segment_time_law(joint_path: JointPath, reference: ReferencePath, limits: list[AxisLimits], rate: int,
                      s0: float, s1: float, resample: Resample,
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Jerk-limited, near time-optimal time law for one rest-to-rest segment.

    1. TOPP-RA under the velocity and acceleration limits plus a path-speed cap (:func:`jerk_speed_cap`).
    2. FIR smoothing in time (:func:`_fir_time_law`) of width ``tau = max(amax / jmax)`` times each of
       ``_FIR_WIDTHS``.
    3. Curvature terms the steps above do not see can still push a tick over a limit: each law is then
       slowed by the largest uniform factor that passes every check (bisection); the fastest one wins.
    Returns run ticks, keyed instants, and plain TOPP-RA's duration (velocity and acceleration only).
    """
    path = _SegmentPath(joint_path, reference, s0, s1)
    count = max(50, int((s1 - s0) * _GRID_PER_SECOND))
    grid = np.linspace(s0, s1, count + 1)
    _, optimum = toppra_speed(path, limits, grid)
    probe = np.linspace(s0, s1, 4 * count + 1)
    cap = jerk_speed_cap(path, limits, probe)
    tau = max(l.amax / l.jmax for l in limits)
    sd, _ = toppra_speed(path, limits, grid, (probe, cap))
    fastest: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    for width in _FIR_WIDTHS:           # the smoothing width that leaves the least uniform slow-down wins
        law_t, law_s = _fir_time_law(grid, sd, tau * width, rate)
        found = _legal_law(make_interp_spline(law_t, law_s, k=3), float(law_t[-1]), s0, s1, limits, rate, resample)
        if found is not None and (fastest is None or found[0][-1] < fastest[0][-1]):
            fastest = found
    if fastest is None:
        raise PlanningError("could not make the time-optimal timing respect the jerk limits")
    return fastest[0], fastest[1], optimum


def _legal_law(law, length: float, s0: float, s1: float, limits: list[AxisLimits], rate: int,
               resample: Resample) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """``law`` (keyed instant of law time), sampled at the servo rate, slowed by the smallest uniform
    factor that passes every check (bisection); None if even a 16000th of its speed fails."""

    def at(scale: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        ticks = _ticks(length / scale, rate)
        s_ticks = law(np.minimum(ticks * scale, length))
        return ticks, np.clip(np.maximum.accumulate(s_ticks), s0, s1)

    ticks, s_ticks = at(1.0)
    if _fits(resample(ticks, s_ticks), rate, limits) <= 1.0:
        return ticks, s_ticks
    low, high = 0.0, 1.0              # holds at low, fails at high
    best = None
    for _ in range(14):
        scale = 0.5 * (low + high)
        ticks, s_ticks = at(scale)
        if _fits(resample(ticks, s_ticks), rate, limits) <= 1.0:
            best, low = (ticks, s_ticks), scale
        else:
            high = scale
    return best
