"""Getting onto a plan and off it: go-to-start and the controlled stop, jerk-limited and checked.

*Go-to-start* is a state-to-state move from wherever the rig is (position, velocity, acceleration) to
the plan's first sample at rest, computed by ruckig at a reduced speed with every axis phase-
synchronised (a straight line in joint space, so the operator can predict it), then checked tick by tick
for limits and clearance.  If the direct move would collide, it goes via the rig's park pose and says so.

The *controlled stop* leaves the plan (or a go-to-start) from any tick by slowing its clock to rest
(:mod:`motionctl.planner.governor`): the rig stays on the checked path, every tick of the stop is
within every limit, and the search for it is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from motionctl.collision import ClearanceChecker
from motionctl.errors import PlanningError
from motionctl.kinematics import Kinematics
from motionctl.planner.governor import SpeedGovernor, Timeline, run_until_rest
from motionctl.planner.limits import axis_limits
from motionctl.planner.plan import Plan

GOTO_SPEED_FRACTION = 0.25


@dataclass(frozen=True, eq=False)
class Transition:
    """Servo-rate samples of a move onto or off the plan (joints then lens, SI units)."""

    kind: str                                  # "goto_start" or "stop"
    rate_hz: int
    t: NDArray[np.float64]
    values: NDArray[np.float64]                # (K, axes + lens)
    via_park: bool = False
    clear: bool = True                         # no clearance breach on any tick
    min_clearance_m: float | None = None
    notes: tuple[str, ...] = field(default=())
    tau: NDArray[np.float64] | None = None     # a stop's samples: times along what it stopped (plan or go-to-start)

    @property
    def duration_s(self) -> float:
        return float(self.t[-1]) if len(self.t) else 0.0


def _ruckig_segment(start: NDArray[np.float64], target: NDArray[np.float64], limits, fraction: float,
                    rate: int, start_v: NDArray[np.float64] | None = None,
                    start_a: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    from ruckig import InputParameter, Result, Ruckig, Synchronization, Trajectory

    n = len(start)
    inp = InputParameter(n)
    inp.current_position = start.tolist()
    inp.current_velocity = (start_v if start_v is not None else np.zeros(n)).tolist()
    inp.current_acceleration = (start_a if start_a is not None else np.zeros(n)).tolist()
    inp.target_position = target.tolist()
    inp.max_velocity = [l.vmax * fraction for l in limits]
    inp.max_acceleration = [l.amax * fraction for l in limits]
    inp.max_jerk = [l.jmax * fraction for l in limits]
    traj = Trajectory(n)
    for sync in (Synchronization.Phase, Synchronization.Time):
        inp.synchronization = sync
        result = Ruckig(n).calculate(inp, traj)
        if result in (Result.Working, Result.Finished):
            break
    else:
        raise PlanningError(f"ruckig could not plan the transition ({result})")
    ticks = np.arange(int(np.ceil(traj.duration * rate)) + 1) / rate
    samples = np.array([traj.at_time(min(t, traj.duration))[0] for t in ticks])
    samples[-1] = target
    return samples


def _clearance(plan: Plan, kin: Kinematics, q: NDArray[np.float64]):
    checker = ClearanceChecker(plan.rig, plan.stage, kin.capsules)
    return checker.check(*kin.capsules_world(kin.link_frames(q)))


def go_to_start(plan: Plan, current_q: NDArray[np.float64], current_lens: NDArray[np.float64] | None = None, *,
                speed_fraction: float = GOTO_SPEED_FRACTION) -> Transition:
    """Jerk-limited, collision-checked move from ``current_q`` (at rest) to the plan's first sample."""
    traj = plan.trajectory
    if traj is None:
        raise PlanningError("the move has no trajectory to go to")
    rig, rate = plan.rig, plan.rate_hz
    limits = axis_limits(rig)
    kin = Kinematics(rig)
    lens_now = traj.lens[0] if current_lens is None else np.asarray(current_lens, dtype=float)
    start = np.concatenate([np.asarray(current_q, dtype=float), lens_now])
    goal = np.concatenate([traj.q[0], traj.lens[0]])
    n = len(rig.axes)
    direct = _ruckig_segment(start, goal, limits, speed_fraction, rate)
    result = _clearance(plan, kin, direct[:, :n])
    if not result.runs:
        return Transition("goto_start", rate, np.arange(len(direct)) / rate, direct, False, True, result.min_m)
    park = np.concatenate([np.array(rig.park), goal[n:]])
    first = _ruckig_segment(start, park, limits, speed_fraction, rate)
    second = _ruckig_segment(park, goal, limits, speed_fraction, rate)
    via = np.concatenate([first, second[1:]])
    via_result = _clearance(plan, kin, via[:, :n])
    blocked = result.pairs[result.runs[0].pair]
    note = f"direct path would bring {blocked.link} too close to {blocked.other}; going via the park pose"
    if via_result.runs:
        worst = via_result.pairs[via_result.runs[0].pair]
        return Transition("goto_start", rate, np.arange(len(via)) / rate, via, True, False, via_result.min_m,
                          (note, f"via park also brings {worst.link} too close to {worst.other}: "
                                 "jog the rig clear by hand before going to start"))
    return Transition("goto_start", rate, np.arange(len(via)) / rate, via, True, True, via_result.min_m, (note,))


def plan_timeline(plan: Plan) -> Timeline:
    """The plan's joints then lens at every tick, with their limits: what the runtime streams."""
    traj = plan.trajectory
    if traj is None:
        raise PlanningError("the move has no trajectory")
    return Timeline(plan.rate_hz, np.concatenate([traj.q, traj.lens], axis=1), tuple(axis_limits(plan.rig)))


def transition_timeline(transition: Transition, plan: Plan) -> Timeline:
    """A go-to-start's samples as a timeline (a stop along it stays on its checked straight line)."""
    return Timeline(transition.rate_hz, transition.values, tuple(axis_limits(plan.rig)))


def stop_on_timeline(timeline: Timeline, history: NDArray[np.float64], plan: Plan | None = None,
                     ) -> Transition:
    """Brake to rest along ``timeline``, continuing from its plan times ``history`` (the last 1-3 ticks,
    run at whatever rate they were).  The first sample returned is the last history tick.

    Bounded in time and memory (:func:`~motionctl.planner.governor.run_until_rest`); raises
    :class:`~motionctl.planner.governor.NoLegalTick` (a :class:`PlanningError`) with a plain reason
    when no stop along the path holds every limit.  With ``plan``, the stop's poses are checked for
    clearance (they lie between the plan's checked ticks).
    """
    history = np.asarray(history, dtype=float)
    governor = SpeedGovernor(timeline, history=history)
    first = governor.values
    run = run_until_rest(governor)
    values = np.concatenate([first[None], run.values])
    clear, min_clearance = True, None
    if plan is not None and plan.rig is not None:
        result = _clearance(plan, Kinematics(plan.rig), values[:, : len(plan.rig.axes)])
        clear, min_clearance = not result.runs, result.min_m
    rate = timeline.rate_hz
    return Transition("stop", rate, np.arange(len(values)) / rate, values, False, clear, min_clearance, (),
                      np.concatenate([[history[-1]], run.tau]))


def controlled_stop(plan: Plan, tick: int) -> Transition:
    """Brake along the plan from its ``tick`` (reached at full speed) to rest, within every limit."""
    traj = plan.trajectory
    if traj is None:
        raise PlanningError("the move has no trajectory to stop from")
    tick = int(np.clip(tick, 0, len(traj) - 1))
    # Plan times of the last three ticks at full speed; before the first tick the plan rests on it.
    return stop_on_timeline(plan_timeline(plan), np.arange(tick - 2, tick + 1) / plan.rate_hz, plan)


def stop_along_path(plan: Plan, lead: NDArray[np.float64]) -> Transition:
    """Brake to rest along the plan, continuing from the plan times ``lead`` of the last 1-3 ticks."""
    if plan.trajectory is None:
        raise PlanningError("the move has no path to stop along")
    return stop_on_timeline(plan_timeline(plan), lead, plan)
