"""Retiming along the same path: uniform stretch, or time-optimal and jerk-limited.

A retimed move is the same path ``q(s)`` (``s`` = instant of the move as keyed) walked with a new time
law ``s(t)``; nothing but timing changes, so clearance and camera-path error are unchanged.

``fastest``: the move is split at its full stops (instants where every axis rests: holds keep their
length, and corners stay stops).  On each moving segment toppra computes the time-optimal path speed under
velocity and acceleration limits (the reference, and the start of the next step);
:mod:`motionctl.planner.jerk_topp` then finds the fastest path speed that also respects every jerk limit.
The law is sampled at the servo rate and every tick checked; instants that fail become extra constraints
of the program, and a last uniform slow-down covers whatever is left.  Should any of that fail, the
segment keeps its keyed timing scaled uniformly to the limits, which is always legal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import PlanningError
from motionctl.planner.jerk_topp import JerkLimitedTopp, SpeedSpline
from motionctl.planner.limits import AxisLimits, derivatives, peaks, scale_needed_per_tick, time_scale_needed
from motionctl.planner.path import ReferencePath
from motionctl.planner.tracking import JointPath
from motionctl.planner.trajectory import Trajectory

log = logging.getLogger(__name__)

#: (run ticks, keyed instants) -> joint and lens values at those ticks, (K, axes + lens)
Resample = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]
_GRID_PER_SECOND = 200          # TOPP-RA grid density along the move (per second of keyed time)
_SPANS_PER_SECOND = 150         # jerk-limited speed spline: spans per second of TOPP-RA's duration
_REFINEMENTS = 3                # rounds of "check every tick, add the instants that failed"
#: The program plans to this fraction of the velocity, acceleration and jerk limits: the servo-rate
#: differences of a profile planned exactly at a limit overshoot it a little, and removing that with a
#: uniform slow-down, or with more constraints, costs more than the margin does.
_PROGRAM_MARGIN = 0.995
#: Ticks that would need more than this uniform time factor are added to the program; smaller excesses
#: are left to the final uniform slow-down (it costs at most this factor).
_REFINE_ABOVE = 1.001
_VIRTUAL_V = 20.0               # at most 20x the keyed speed ...
_VIRTUAL_A = 400.0              # ... and this path acceleration, where no real axis moves


def _ticks(duration: float, rate: int) -> NDArray[np.float64]:
    return np.arange(int(np.ceil(duration * rate - 1e-9)) + 1, dtype=float) / rate


def _fits(values: NDArray[np.float64], rate: int, limits: list[AxisLimits]) -> float:
    """Uniform time factor the sampled values would need (<= 1: every rate limit holds)."""
    return time_scale_needed(peaks(*derivatives(values, rate)), limits)


def _slow_until_legal(sample: Callable[[float], tuple[NDArray[np.float64], NDArray[np.float64]]],
                      factor: float, limits: list[AxisLimits], rate: int, resample: Resample,
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """``sample(k)``: ticks and keyed instants of a time law with its time scaled by ``k``.  Finds the
    smallest ``k >= factor`` (to a millionth) for which every rate limit holds on every tick.  Scaling time
    by k divides velocity by k, acceleration by k^2 and jerk by k^3, so the factor the peaks ask for is
    nearly exact; a few rounds settle the servo-rate sampling.  None if eight rounds do not."""
    for _ in range(8):
        ticks, s_ticks = sample(factor)
        needed = _fits(resample(ticks, s_ticks), rate, limits)
        if needed <= 1.0:
            return ticks, s_ticks
        factor *= needed * (1 + 1e-6)
    return None


def stretch_time_map(trajectory: Trajectory, limits: list[AxisLimits], duration: float, rate: int,
                     resample: Resample) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Slow the whole move uniformly (holds included) until every rate limit holds on every tick."""
    values = np.concatenate([trajectory.q, trajectory.lens], axis=1)

    def sample(factor: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        t = _ticks(duration * factor, rate)
        return t, t / factor

    found = _slow_until_legal(sample, max(1.0, _fits(values, rate, limits)), limits, rate, resample)
    if found is None:
        raise PlanningError("could not find a uniform time scale that respects the limits")
    return found


class _SegmentPath:
    """Joints and lens of one moving segment as a toppra geometric path in the keyed time ``s``."""

    def __init__(self, joint_path: JointPath, reference: ReferencePath, s0: float, s1: float) -> None:
        self.joint_path, self.reference, self.s0, self.s1 = joint_path, reference, s0, s1

    def __call__(self, s, order: int = 0):
        arr = np.atleast_1d(np.asarray(s, dtype=float))
        # The segment's end is where the next piece of the path (often a hold) begins, and piecewise curves
        # evaluate a breakpoint on their right: its derivatives would be the hold's zeros, and the jerk
        # this segment ends with would go unchecked.  A point one ulp inside takes this segment's side.
        inside = np.minimum(arr, np.nextafter(self.s1, -np.inf))
        q = self.joint_path(inside, order)
        lens = (np.concatenate([c(inside, order) for c in self.reference.lens], axis=-1) if self.reference.lens
                else np.zeros((len(arr), 0)))
        # A virtual last axis is the keyed time itself: its bounded rate keeps TOPP-RA well conditioned
        # where every real axis comes to rest (their path derivatives vanish there).
        virtual = arr[:, None] if order == 0 else np.full((len(arr), 1), 1.0 if order == 1 else 0.0)
        if order >= 3:
            virtual[:] = 0.0
        out = np.concatenate([q, lens, virtual], axis=1)
        return out if np.ndim(s) else out[0]

    def derivatives(self, s: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        """First, second and third path derivatives of the real axes (joints and lens) at ``s``."""
        return tuple(self(np.asarray(s, dtype=float), order)[:, :-1] for order in (1, 2, 3))

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


def toppra_speed(path: _SegmentPath, limits: list[AxisLimits], grid: NDArray[np.float64],
                 ends: tuple[float, float] = (0.0, 0.0)) -> tuple[NDArray[np.float64], float] | None:
    """TOPP-RA's time-optimal path speed sdot at ``grid`` under the velocity and acceleration limits, from and
    to the path speeds ``ends``, and its duration; None if those end speeds are not reachable."""
    import toppra.algorithm as algo
    import toppra.constraint as constraint

    logging.getLogger("toppra").setLevel(logging.ERROR)
    vlim = np.array([[-l.vmax, l.vmax] for l in limits] + [[-_VIRTUAL_V, _VIRTUAL_V]])
    alim = np.array([[-l.amax, l.amax] for l in limits] + [[-_VIRTUAL_A, _VIRTUAL_A]])
    instance = algo.TOPPRA([constraint.JointVelocityConstraint(vlim), constraint.JointAccelerationConstraint(alim)],
                           path, gridpoints=grid, parametrizer="ParametrizeConstAccel")
    _, sd, _ = instance.compute_parameterization(*ends)
    if sd is None or np.isnan(sd).any():
        return None
    sd = np.maximum(np.asarray(sd, dtype=float), 0.0)
    duration = float(np.sum(2 * np.diff(grid) / np.maximum(sd[:-1] + sd[1:], 1e-12)))
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
            # Rounded up to whole ticks, so that every moving segment is sampled on exactly the ticks
            # its own checks saw (nothing moves during the extra fraction of a tick).
            length = float(np.ceil((s1 - s0) * rate - 1e-9)) / rate
            pieces_t.append(np.array([offset, offset + length]))
            pieces_s.append(np.array([s0, s1]))
            offset += length
            toppra_total += length
            continue
        path = _SegmentPath(joint_path, reference, s0, s1)
        grid = np.linspace(s0, s1, max(50, int((s1 - s0) * _GRID_PER_SECOND)) + 1)
        reference_speed = toppra_speed(path, limits, grid)
        if reference_speed is None:
            raise PlanningError("TOPP-RA found no feasible timing for a segment of the path")
        uniform = _uniform_segment(s0, s1, limits, rate, resample)
        try:
            t_local, s_local, optimum = _segment_time_law(path, grid, reference_speed, limits, rate, resample)
        except PlanningError:
            if uniform is None:
                raise
            log.warning("jerk-limited timing failed between keyed instants %.3f and %.3f s; that segment keeps "
                        "its keyed timing, scaled", s0, s1, exc_info=True)
            t_local, s_local, optimum = uniform[0], uniform[1], reference_speed[1]
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
            s_all[mask] = np.minimum(s_piece[0] + (t_all[mask] - t_piece[0]), s_piece[1])
        else:
            s_all[mask] = np.interp(t_all[mask], t_piece, s_piece)
    s_all[t_all > offset] = reference.duration
    return t_all, s_all, toppra_total


def _uniform_segment(s0: float, s1: float, limits: list[AxisLimits], rate: int, resample: Resample,
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The segment's keyed timing scaled uniformly to its limits (a floor for ``fastest``)."""
    nominal = s0 + _ticks(s1 - s0, rate)

    def sample(factor: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        ticks = _ticks((s1 - s0) * factor, rate)
        return ticks, np.minimum(s0 + ticks / factor, s1)

    return _slow_until_legal(sample, _fits(resample(nominal - s0, np.minimum(nominal, s1)), rate, limits),
                             limits, rate, resample)


def _segment_time_law(path: _SegmentPath, grid: NDArray[np.float64],
                      reference_speed: tuple[NDArray[np.float64], float], limits: list[AxisLimits], rate: int,
                      resample: Resample) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Jerk-limited, near time-optimal time law for one rest-to-rest segment.

    1. ``reference_speed``: TOPP-RA's path speed at ``grid`` and its duration, under the velocity and
       acceleration limits only: the reference, and the upper estimate the program starts from.
    2. :class:`JerkLimitedTopp` on a speed spline of ``_SPANS_PER_SECOND`` spans per second.
    3. The law is sampled at the servo rate and every tick checked; the instants of ticks that fail are
       added to the program's constraints and it is solved again (``_REFINEMENTS`` rounds).
    4. Whatever is left (rare, and small) is removed by the smallest uniform slow-down that passes.

    Returns run ticks, keyed instants, and TOPP-RA's duration for comparison: the smaller of rest-to-rest
    and the same end path speeds as this law (at a full stop every axis rests, so the path speed there
    is free; the fair reference starts and ends as fast).
    """
    s0, s1 = path.s0, path.s1
    sd, optimum = reference_speed
    program = JerkLimitedTopp(path.derivatives, _PROGRAM_MARGIN * np.array([l.vmax for l in limits]),
                              _PROGRAM_MARGIN * np.array([l.amax for l in limits]),
                              _PROGRAM_MARGIN * np.array([l.jmax for l in limits]),
                              s0, s1, max(40, int(optimum * _SPANS_PER_SECOND)), _VIRTUAL_V, _VIRTUAL_A)
    profile = program.solve(start=lambda s: np.interp(s, grid, sd ** 2))
    for _ in range(_REFINEMENTS):
        _, s_ticks, need = _check_profile(profile, s0, s1, limits, rate, resample)
        over = need > _REFINE_ABOVE
        if not over.any():
            break
        # A tick's backward differences look back up to three ticks: constrain the instants in between.
        program.add_points(np.concatenate([s_ticks[np.maximum(np.flatnonzero(over) - k, 0)] for k in (0, 1, 2)]))
        profile = program.resolve(profile)
    law, length = profile.time_law()
    legal = _legal_law(law, length, s0, s1, limits, rate, resample)
    if legal is None:
        raise PlanningError("could not make the time-optimal timing respect the jerk limits")
    ends = np.sqrt(profile(np.array([s0, s1])))
    same_ends = toppra_speed(path, limits, grid, (float(ends[0]), float(ends[1])))
    if same_ends is not None:
        optimum = min(optimum, same_ends[1])
    return legal[0], legal[1], optimum


def _check_profile(profile: SpeedSpline, s0: float, s1: float, limits: list[AxisLimits], rate: int,
                   resample: Resample) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The profile's time law at the servo rate, and the uniform time factor each tick would need to meet
    its velocity, acceleration and jerk limits (<= 1: it does)."""
    ticks, s_ticks = _sample_law(*profile.time_law(), 1.0, s0, s1, rate)
    return ticks, s_ticks, scale_needed_per_tick(*derivatives(resample(ticks, s_ticks), rate), limits)


def _sample_law(law, length: float, scale: float, s0: float, s1: float, rate: int,
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Servo ticks of ``law`` (keyed instant of law time) walked at ``scale`` times its speed, and their
    keyed instants (monotone, within the segment; ticks past the end stay at its end)."""
    ticks = _ticks(length / scale, rate)
    s_ticks = law(np.minimum(ticks * scale, length))
    return ticks, np.clip(np.maximum.accumulate(s_ticks), s0, s1)


def _legal_law(law, length: float, s0: float, s1: float, limits: list[AxisLimits], rate: int,
               resample: Resample) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """``law`` (keyed instant of law time) at the servo rate, slowed by the smallest uniform factor that
    passes every check (usually none, or a fraction of a percent)."""
    return _slow_until_legal(lambda factor: _sample_law(law, length, 1.0 / factor, s0, s1, rate), 1.0,
                             limits, rate, resample)
