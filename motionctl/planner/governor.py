"""The speed governor: runs a checked trajectory on a clock that may slow down, within every limit.

A speed override, a timecode chase and a controlled stop are the same thing: the trajectory's own
samples replayed on a clock whose rate ``f`` (1 = as planned) changes.  Plan time ``tau`` advances by
``f dt`` per tick and the axes follow ``Y(tau)``, so

    y' = Y' f      y'' = Y'' f^2 + Y' f'      y''' = Y''' f^3 + 3 Y'' f f' + Y' f''

Staying on the trajectory keeps the rig on the checked path (no clearance can be lost), and ``f <= 1``
only shrinks the trajectory's own terms, so slowing down is always *towards* a legal motion.  What can
break a limit is the change of rate itself (the ``f'`` and ``f''`` terms) where the trajectory is
already near a limit, as a time-optimal plan is nearly everywhere.

So every tick is decided like this:

1. a *reference* rate: ruckig's jerk-limited velocity control (one degree of freedom) from the clock's
   present rate towards the target rate, with braking limits from the trajectory's own speeds ahead;
2. the *window*: for every axis, the values this tick may take so that its velocity, acceleration and
   jerk by backward differences (exactly what the drive sees and what the check computes) stay within
   the limits, given the three ticks already sent.  Each axis's window is an interval of ``tau``
   (by Newton steps on the trajectory's smooth model); the tick takes the reference rate clipped into
   their intersection.  Where the trajectory is saturated the window holds the rate back, and as the
   rate falls the trajectory's own terms shrink and the window opens: the brake takes whatever room
   the limits leave, tick by tick.

Each tick costs a few spline evaluations and one small ruckig call: cheap enough for the servo thread
at 1 kHz, so a stop needs no planning ahead and no worker thread, and its length is bounded by
:data:`MAX_STOP_S`.  If the window is ever empty (no value of this tick holds every limit) the
governor says so (:class:`NoLegalTick`) and the runtime quick-stops the drives.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import make_interp_spline

from motionctl.errors import PlanningError
from motionctl.planner.limits import AxisLimits

#: A stop lasts at most this long (seconds of run time); a stop that has not come to rest by then is
#: refused rather than searched for longer.
MAX_STOP_S = 20.0
#: Clock limits come from the trajectory's speeds over this much plan time ahead (a stop from full
#: speed covers less).
LOOKAHEAD_S = 2.0
#: The reference brakes at this fraction of the clock limits the trajectory's speeds allow; the window
#: takes care of the rest.
BRAKE_FRACTION = 0.7
#: Clock limits (1/s^2, 1/s^3) where the trajectory barely moves (only the cap then matters): from full
#: speed such a clock stops in about a quarter of a second.
CLOCK_A_CAP = 8.0
CLOCK_J_CAP = 64.0
#: A stop that finds no legal tick is rewound and braked more gently at most this many times per attempt,
#: then started again later (after running on as planned) at most ``DELAYS`` times.  Few rewinds: each
#: halves the braking, and a stop rewound six times braked so gently that it lasted 5.5 s (stunt_cross at
#: 1 kHz); running on and braking later at full strength ends sooner (3.4 s at worst over the shipped
#: moves, docs/benchmarks.md).
REWINDS = 2
DELAYS = 7
#: Window bounds are held this far inside the limits, so rounding in the last bit cannot cross them.
_INSIDE = 1.0 - 1e-9
_NEWTON = 4
#: The smooth model covers this many ticks at a time (rebuilt as the clock moves on).
_MODEL_TICKS = 1200


class NoLegalTick(PlanningError):
    """No value of the next tick keeps every axis within its limits: the caller must quick-stop."""


@dataclass(frozen=True, eq=False)
class Timeline:
    """Values (K, axes) at the servo rate: a plan's joints and lens, or a transition's samples."""

    rate_hz: int
    values: NDArray[np.float64]
    limits: tuple[AxisLimits, ...]

    @property
    def duration(self) -> float:
        return (len(self.values) - 1) / self.rate_hz

    def speeds(self, first: int, count: int) -> NDArray[np.float64]:
        """Largest |rate| of each axis over ``count`` ticks from ``first`` (at the planned speed)."""
        lo = max(0, first - 1)
        window = self.values[lo: first + count + 1]
        if len(window) < 2:
            return np.zeros(self.values.shape[1])
        return np.abs(np.diff(window, axis=0)).max(axis=0) * self.rate_hz


class _Model:
    """``Y(tau)`` and ``Y'(tau)`` between the ticks: a quintic spline through the timeline's ticks.

    On the ticks it is the timeline exactly; between them it is smooth, so replaying the trajectory at
    any rate does not add jerk noise (linear interpolation would put a kink at every tick).  Built over a
    window of ticks around where the clock is, so its cost does not grow with the move.  Evaluated as
    piecewise polynomials by hand: a scalar call of scipy's spline costs more than everything else a
    tick does (this is on the servo thread).
    """

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self._lo = self._hi = 0
        self._breaks: list[float] = []
        self._coef = np.zeros((0, 0, 0))
        self._linear = False

    def _cover(self, tau: float) -> None:
        rate, count = self.timeline.rate_hz, len(self.timeline.values)
        tick = tau * rate
        if self._breaks and self._lo + 4 <= tick <= self._hi - 5:
            return
        lo = max(0, int(math.floor(tick)) - 8)
        hi = min(count, lo + _MODEL_TICKS)
        lo = max(0, min(lo, hi - _MODEL_TICKS))
        t = np.arange(lo, hi) / rate
        values = self.timeline.values[lo:hi]
        k = 5 if hi - lo >= 6 else 1      # too short for a quintic (a timeline of a few ticks): lines
        if hi - lo < 2:
            self._breaks, self._coef = [float(t[0])], np.asarray(values[:1], dtype=float)[None]
        else:
            spline = make_interp_spline(t, values, k=k)
            breaks = np.unique(spline.t[k: len(spline.t) - k])
            # Piecewise-polynomial coefficients on each span, highest power first (Taylor at its start).
            self._coef = np.stack([spline(breaks[:-1], nu=k - m) / math.factorial(k - m) for m in range(k + 1)])
            self._breaks = breaks.tolist()
        self._lo, self._hi = lo, hi
        order = self._coef.shape[0]
        self._powers = np.arange(order - 1, -1, -1, dtype=float)
        self._dpowers = np.maximum(self._powers - 1, 0)

    def _piece(self, tau: float) -> tuple[NDArray[np.float64], float]:
        tau = min(max(tau, 0.0), self.timeline.duration)
        self._cover(tau)
        i = min(max(bisect.bisect_right(self._breaks, tau) - 1, 0), self._coef.shape[1] - 1)
        return self._coef[:, i, :], tau - self._breaks[i]

    def value(self, tau: float) -> NDArray[np.float64]:
        coef, x = self._piece(tau)
        return (x ** self._powers) @ coef

    def slope(self, tau: float) -> NDArray[np.float64]:
        coef, x = self._piece(tau)
        return (self._powers * x ** self._dpowers) @ coef


class SpeedGovernor:
    """Runs a :class:`Timeline` tick by tick at a rate that follows a target, within every limit.

    ``history``: plan times of the (up to) three ticks before the first step, oldest first; without it
    the axes were at rest at ``tau`` and the clock starts at ``speed`` (a run starts at its first sample,
    where the trajectory rests, so its clock may start at any speed without moving an axis).
    """

    def __init__(self, timeline: Timeline, tau: float = 0.0, history: NDArray[np.float64] | None = None,
                 *, speed: float = 0.0, brake_fraction: float = BRAKE_FRACTION) -> None:
        self.timeline = timeline
        self.brake_fraction = brake_fraction
        self.rate_hz = timeline.rate_hz
        self.dt = 1.0 / self.rate_hz
        self._model = _Model(timeline)
        taus = [float(tau)] * 3 if history is None or len(history) == 0 else [float(x) for x in history][-3:]
        while len(taus) < 3:
            taus.insert(0, taus[0])
        self._taus = taus                                 # tau of the last three ticks, oldest first
        self._values = [self._exact(x) for x in taus]     # what was sent on them
        d1, d2 = taus[2] - taus[1], taus[1] - taus[0]
        fd = (d1 - d2) * self.rate_hz ** 2
        #: The reference clock's continuous state: plan time, rate, rate of change.
        self._ref = (taus[2], d1 * self.rate_hz + 0.5 * fd * self.dt, fd)
        if history is None or len(history) == 0:
            self._ref = (taus[2], float(speed), 0.0)
        lim = timeline.limits
        self._v = np.array([l.vmax for l in lim]) * _INSIDE
        self._a = np.array([l.amax for l in lim]) * _INSIDE
        self._j = np.array([l.jmax for l in lim]) * _INSIDE
        self._steps = (self._v * self.dt, self._a * self.dt ** 2, self._j * self.dt ** 3)
        self._clock_limits: tuple[float, float, float] | None = None
        self.ticks = 0

    # -- state ------------------------------------------------------------------------------------------
    @property
    def tau(self) -> float:
        return self._taus[-1]

    @property
    def speed(self) -> float:
        """The clock's rate over the last tick (1 = as planned)."""
        return (self._taus[-1] - self._taus[-2]) * self.rate_hz

    @property
    def values(self) -> NDArray[np.float64]:
        return self._values[-1]

    @property
    def at_rest(self) -> bool:
        """The last three ticks sent the same values: velocity, acceleration and jerk are zero."""
        return self._taus[0] == self._taus[1] == self._taus[2]

    @property
    def at_end(self) -> bool:
        return self.tau >= self.timeline.duration - 1e-12

    def clone(self) -> SpeedGovernor:
        """An independent governor in this one's state (its own model: models are not shared across
        threads)."""
        twin = SpeedGovernor(self.timeline, self.tau, brake_fraction=self.brake_fraction)
        twin.restore(self.snapshot())
        return twin

    @property
    def history(self) -> NDArray[np.float64]:
        """Plan times of the last three ticks, oldest first."""
        return np.array(self._taus)

    def snapshot(self) -> tuple:
        """Everything a later :meth:`restore` needs to carry on from this tick (small, immutable)."""
        return (tuple(self._taus), tuple(self._values), self._ref, self._clock_limits, self.ticks,
                self.brake_fraction)

    def restore(self, snap: tuple) -> None:
        taus, values, self._ref, self._clock_limits, self.ticks, self.brake_fraction = snap
        self._taus, self._values = list(taus), list(values)

    def _exact(self, tau: float) -> NDArray[np.float64]:
        """On a tick: the timeline's own sample; between ticks: the smooth model."""
        k = tau * self.rate_hz
        if abs(k - round(k)) < 1e-9 and 0 <= round(k) < len(self.timeline.values):
            return np.array(self.timeline.values[int(round(k))], dtype=float)
        return self._model.value(tau)

    # -- one tick ---------------------------------------------------------------------------------------
    def step(self, target: float) -> NDArray[np.float64]:
        """The next tick's values, with the clock's rate moving towards ``target`` (0 = stop)."""
        tau1 = self._taus[2]
        end = self.timeline.duration
        p, v, a = self._ref
        if abs(v - 1.0) < 1e-9 and a == 0.0 and target == 1.0 and self._on_tick(tau1):
            # As planned: the plan's own next sample, exactly (it was checked).
            tau = min((round(tau1 * self.rate_hz) + 1) / self.rate_hz, end)
            self._ref = (tau, 1.0, 0.0)
            return self._commit(tau)
        if target <= 0.0 and self.at_rest:
            self._ref = (tau1, 0.0, 0.0)
            return self._commit(tau1)
        (wanted, v_next, a_next), settles = self._reference(p, v, a, target)
        if settles and target <= 0.0:
            # The reference clock comes to rest within this tick: hold, if holding is legal here.
            lo, hi = self._bounds()
            if ((self._values[2] >= lo) & (self._values[2] <= hi)).all():
                self._ref = (tau1, 0.0, 0.0)
                return self._commit(tau1)
        tau = self._legal(min(max(wanted, tau1), end), tau1, end)
        if tau == wanted:
            self._ref = (wanted, v_next, a_next)
        else:
            # The limits held the clock back: carry on from where it really is (second-order
            # backward differences of the clock's last three ticks).
            tau2 = self._taus[1]
            self._ref = (tau, (3 * tau - 4 * tau1 + tau2) * self.rate_hz / 2,
                         (tau - 2 * tau1 + tau2) * self.rate_hz ** 2)
        return self._commit(tau)

    def _on_tick(self, tau: float) -> bool:
        k = tau * self.rate_hz
        return abs(k - round(k)) < 1e-9

    def _commit(self, tau: float) -> NDArray[np.float64]:
        values = self._exact(tau)
        self._taus = [self._taus[1], self._taus[2], tau]
        self._values = [self._values[1], self._values[2], values]
        self.ticks += 1
        return values

    def _limits_for(self, target: float) -> tuple[float, float]:
        """Clock limits for heading to ``target``: from the trajectory's largest speeds over the stretch
        the clock can cover meanwhile.  Fixed while the target stays (a profile planned with limits that
        change under it can find itself unable to finish)."""
        if self._clock_limits is None or self._clock_limits[0] != target:
            tick = int(self.tau * self.rate_hz)
            speeds = self.timeline.speeds(tick, int(self.rate_hz * LOOKAHEAD_S))
            with np.errstate(divide="ignore", invalid="ignore"):
                a = np.where(speeds > 1e-12, self._a / speeds, np.inf).min()
                j = np.where(speeds > 1e-12, self._j / speeds, np.inf).min()
            self._clock_limits = (target, float(min(a, CLOCK_A_CAP)), float(min(j, CLOCK_J_CAP)))
        return self._clock_limits[1], self._clock_limits[2]

    def _reference(self, p: float, v: float, a: float, target: float,
                   ) -> tuple[tuple[float, float, float], bool]:
        """Ruckig's jerk-limited clock heading for ``target``, one tick on from its state (p, v, a);
        and whether it reaches the target within the tick."""
        # ruckig's objects are made per call, not kept: nanobind reports objects still alive at exit as
        # leaks, and a governor can live as long as the process.
        from ruckig import ControlInterface, InputParameter, Result, Ruckig, Trajectory

        a_max, j_max = self._limits_for(target)
        inp, out = InputParameter(1), Trajectory(1)
        inp.control_interface = ControlInterface.Velocity
        inp.max_velocity = [2.0]
        inp.current_position, inp.current_velocity, inp.current_acceleration = [p], [v], [a]
        inp.target_velocity, inp.target_acceleration = [float(target)], [0.0]
        inp.max_acceleration, inp.max_jerk = [a_max * self.brake_fraction], [j_max * self.brake_fraction]
        if Ruckig(1).calculate(inp, out) not in (Result.Working, Result.Finished):
            return (p + max(v, 0.0) * self.dt, v, 0.0), False
        if out.duration <= self.dt:
            pos = float(out.at_time(out.duration)[0][0]) + target * (self.dt - out.duration)
            return (pos, float(target), 0.0), True
        pos, vel, acc = out.at_time(self.dt)
        return (float(pos[0]), float(vel[0]), float(acc[0])), False

    def _bounds(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per axis, the values this tick may take: every backward difference within its limit."""
        y1, y2, y3 = self._values[2], self._values[1], self._values[0]
        hold = 2 * y1 - y2                       # zero acceleration
        steady = hold + (y1 - y2) - (y2 - y3)    # zero jerk
        vdt, adt, jdt = self._steps
        lo = np.maximum(np.maximum(y1 - vdt, hold - adt), steady - jdt)
        hi = np.minimum(np.minimum(y1 + vdt, hold + adt), steady + jdt)
        return lo, hi

    def _legal(self, wanted: float, floor: float, end: float) -> float:
        """``wanted`` clipped into the plan times whose values satisfy every axis's bounds."""
        lo, hi = self._bounds()
        if np.any(lo > hi):
            raise NoLegalTick(self._explain(lo, hi))
        tau = wanted
        for _ in range(_NEWTON):
            y = self._exact(tau)
            if ((y >= lo) & (y <= hi)).all():
                return tau
            slope = self._model.slope(tau)
            moving = np.abs(slope) > 1e-12
            if np.any(~moving & ((y < lo) | (y > hi))):
                break
            with np.errstate(divide="ignore", invalid="ignore"):
                a = np.where(moving, (lo - y) / slope, -np.inf)
                b = np.where(moving, (hi - y) / slope, np.inf)
            left = tau + np.max(np.minimum(a, b))
            right = tau + np.min(np.maximum(a, b))
            if left > right:
                break
            low, high = max(left, floor), min(right, end)
            if low > high:        # legal only by running the clock backwards, or past the end
                break
            tau = float(min(max(tau, low), high))
        y = self._exact(tau)
        if ((y >= lo) & (y <= hi)).all():
            return tau
        raise NoLegalTick(self._explain(lo, hi, y))

    def _explain(self, lo: NDArray[np.float64], hi: NDArray[np.float64],
                 y: NDArray[np.float64] | None = None) -> str:
        if y is None:
            axis = int(np.argmax(lo - hi))
        else:
            axis = int(np.argmax(np.maximum(lo - y, y - hi)))
        name = self.timeline.limits[axis].name
        return (f"no setpoint for the next tick keeps {name} within its velocity, acceleration and jerk "
                f"limits while slowing along the path")


@dataclass(frozen=True, eq=False)
class StopRun:
    """The ticks of a stop, and what finding it cost (bounded: see :func:`run_until_rest`)."""

    tau: NDArray[np.float64]          # plan time of each tick
    values: NDArray[np.float64]       # (ticks, axes)
    steps: int                        # governor steps taken, rewound and abandoned ones included
    rewinds: int
    coast: int = 0                    # ticks run on at the clock's rate before braking began


def run_until_rest(governor: SpeedGovernor, max_s: float = MAX_STOP_S) -> StopRun:
    """Step a governor with target 0 until the axes rest.

    Braking as hard as the limits allow now can leave no legal way on later (an axis that the plan brings
    to rest at its jerk limit cannot also take the stop's deceleration).  When a tick has no legal value,
    the stop is rewound a little and braked more gently from there: each rewind goes twice as far back
    and halves the braking, at most :data:`REWINDS` times per attempt, until as far past the tick that
    had no legal value as it went back before it; then it brakes as hard as at first again.

    Where the plan itself brakes two axes at their acceleration limits at once, no slower clock keeps
    both within them (each axis needs the clock's deceleration in its own ratio), however gently it
    brakes: the only legal way on is the plan's own braking.  So when the rewinds run out, the stop
    starts again from where it was asked, runs on at the clock's rate (the plan's checked samples, when
    the clock runs as planned) for a while, and brakes from there: each such attempt runs on twice as
    long, at most :data:`DELAYS` times.

    Bounded: at most ``(DELAYS + 1) * (REWINDS + 1) * max_s`` seconds of ticks are stepped; it raises
    :class:`NoLegalTick` when every attempt fails, or when the stop has not come to rest within ``max_s``.
    """
    start = governor.snapshot()
    speed = governor.speed
    depth = max(4, governor.rate_hz // 20)
    steps = 0
    failure: NoLegalTick | None = None
    for attempt in range(DELAYS + 1):
        governor.restore(start)
        try:
            run = _brake(governor, max_s, depth, 0 if attempt == 0 else depth * 2 ** (attempt - 1), speed)
        except _Failed as failed:
            steps += failed.steps
            failure = failed.cause
            if failed.final:
                break
            continue
        return StopRun(run.tau, run.values, steps + run.steps, run.rewinds, run.coast)
    assert failure is not None
    raise failure


class _Failed(Exception):
    """One attempt at a stop failed (``final``: no later attempt can do better)."""

    def __init__(self, cause: NoLegalTick, steps: int, final: bool = False) -> None:
        super().__init__(str(cause))
        self.cause, self.steps, self.final = cause, steps, final


def _brake(governor: SpeedGovernor, max_s: float, depth: int, coast: int, speed: float) -> StopRun:
    """One attempt: run on ``coast`` ticks at ``speed``, then brake to rest, rewinding when stuck."""
    rate = governor.rate_hz
    taus: list[float] = []
    rows: list[NDArray[np.float64]] = []
    steps = 0
    for _ in range(coast):
        if governor.at_end:
            break
        steps += 1
        try:
            rows.append(governor.step(speed))
        except NoLegalTick as exc:       # the clock cannot even hold its rate: braking later cannot help
            raise _Failed(exc, steps, final=True) from None
        taus.append(governor.tau)
    if len(rows) > max_s * rate:
        raise _Failed(NoLegalTick(f"the stop did not come to rest within {max_s:g} s"), steps, final=True)
    first = len(rows)                    # rewinds go no further back than where braking began
    snaps = [governor.snapshot()]
    rewinds = 0
    full = governor.brake_fraction
    recover = 0                          # braking is full again from this many ticks of braking on
    while not governor.at_rest:
        if len(rows) > max_s * rate or steps > (REWINDS + 1) * max_s * rate:
            raise _Failed(NoLegalTick(f"the stop did not come to rest within {max_s:g} s"), steps, final=True)
        if len(rows) - first == recover and governor.brake_fraction < full:
            # Past the stretch that braking hard could not get through: brake as hard again (a stop that
            # stayed gentle to its end lasted four times as long).
            governor.brake_fraction = full
        steps += 1
        try:
            row = governor.step(0.0)
        except NoLegalTick as exc:
            if rewinds == REWINDS:
                raise _Failed(exc, steps) from None
            stuck = len(rows) - first
            back = max(0, stuck - depth * 2 ** rewinds)
            fraction = governor.brake_fraction / 2
            rewinds += 1
            del rows[first + back:], taus[first + back:], snaps[back + 1:]
            governor.restore(snaps[back])
            governor.brake_fraction = fraction
            recover = stuck + (stuck - back)
            continue
        rows.append(row)
        taus.append(governor.tau)
        snaps.append(governor.snapshot())
    values = np.array(rows).reshape(len(rows), governor.timeline.values.shape[1])
    return StopRun(np.array(taus), values, steps, rewinds, first)
