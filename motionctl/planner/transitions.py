"""Getting onto a plan and off it: go-to-start and the controlled stop, jerk-limited and checked.

*Go-to-start* is a state-to-state move from wherever the rig is (position, velocity, acceleration) to
the plan's first sample at rest, computed by ruckig at a reduced speed with every axis phase-
synchronised (a straight line in joint space, so the operator can predict it), then checked tick by tick
for limits and clearance.  If the direct move would collide, it goes via the rig's park pose and says so.

The *controlled stop* leaves the plan from any tick by braking along the path itself: ruckig brakes the
path parameter (one degree of freedom) to rest, and the joints follow ``q(s)``.  Staying on the
checked path is what makes a stop safe near the set; the braking limits are halved until every
joint's velocity, acceleration and jerk are within limits on every tick of the stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from motionctl.collision import ClearanceChecker
from motionctl.errors import PlanningError
from motionctl.kinematics import Kinematics
from motionctl.planner.limits import axis_limits, derivatives, peaks, time_scale_needed
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
    s: NDArray[np.float64] | None = None       # keyed instants of a stop's samples (stops follow the path)

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


def controlled_stop(plan: Plan, tick: int) -> Transition:
    """Brake along the path from ``tick`` to rest, within every joint limit (checked on every tick)."""
    traj = plan.trajectory
    if traj is None:
        raise PlanningError("the move has no trajectory to stop from")
    tick = int(np.clip(tick, 0, len(traj) - 1))
    s = traj.s
    lead = s[max(0, tick - 3): tick + 1]
    return stop_along_path(plan, lead)


def stop_along_path(plan: Plan, lead: NDArray[np.float64]) -> Transition:
    """Brake to rest along the path, continuing from the keyed instants ``lead`` of the last 1-4 ticks.

    The path parameter's speed and acceleration come from ``lead`` (so a run at a speed override stops
    from where it really is).  Returns the stop's samples, the first being the last lead tick.
    """
    from ruckig import ControlInterface, InputParameter, Result, Ruckig, Trajectory

    path, reference = plan.joint_path, plan.reference
    if path is None or reference is None:
        raise PlanningError("the move has no path to stop along")
    rate = plan.rate_hz
    lead = np.asarray(lead, dtype=float)
    s_now = float(lead[-1])
    s_dot = (lead[-1] - lead[-2]) * rate if len(lead) >= 2 else 0.0
    s_ddot = (lead[-1] - 2 * lead[-2] + lead[-3]) * rate ** 2 if len(lead) >= 3 else 0.0
    limits = axis_limits(plan.rig)
    end = path.duration
    probe = np.linspace(s_now, min(end, s_now + max(2.0, 2 * abs(s_dot))), 400)
    lens_slope = (np.concatenate([c(probe, 1) for c in reference.lens], axis=-1) if reference.lens
                  else np.zeros((len(probe), 0)))
    slope = np.maximum(np.abs(np.concatenate([path(probe, 1), lens_slope], axis=1)).max(axis=0), 1e-9)
    brake_a = float(min(l.amax / d for l, d in zip(limits, slope)))
    brake_j = float(min(l.jmax / d for l, d in zip(limits, slope)))
    for _ in range(20):
        inp = InputParameter(1)
        inp.control_interface = ControlInterface.Velocity
        inp.current_position, inp.current_velocity, inp.current_acceleration = [s_now], [s_dot], [s_ddot]
        inp.target_velocity, inp.target_acceleration = [0.0], [0.0]
        inp.max_velocity = [max(abs(s_dot), 1.0) * 2]
        inp.max_acceleration, inp.max_jerk = [brake_a], [brake_j]
        out = Trajectory(1)
        if Ruckig(1).calculate(inp, out) not in (Result.Working, Result.Finished):
            raise PlanningError("ruckig could not plan the stop")
        ticks = np.arange(1, int(np.ceil(out.duration * rate)) + 2) / rate
        s_stop = np.clip([out.at_time(min(t, out.duration))[0][0] for t in ticks], 0.0, end)
        s_all = np.concatenate([lead, s_stop])
        values = np.concatenate([path(s_all), reference.lens_values(s_all)], axis=1)
        # The lead samples carry the motion into the stop; with fewer than four the plan was at rest
        # before them, which is what derivatives() assumes before its first sample.
        valid = len(lead) - 1 if len(lead) >= 4 else 0
        rates = [d[valid:] for d in derivatives(values, rate)]
        if time_scale_needed(peaks(*rates), limits) <= 1.0 + 1e-9:
            break
        brake_a, brake_j = brake_a / 2, brake_j / 2
    else:
        raise PlanningError("could not find a stop within the limits")
    kin = Kinematics(plan.rig)
    values = values[len(lead) - 1:]
    result = _clearance(plan, kin, values[:, : len(plan.rig.axes)])
    return Transition("stop", rate, np.arange(len(values)) / rate, values, False, not result.runs, result.min_m,
                      (), np.concatenate([[s_now], s_stop]))


def stop_joint_transition(transition: Transition, index: int, plan: Plan,
                          fraction: float = GOTO_SPEED_FRACTION) -> Transition:
    """Brake a joint-space transition (a go-to-start) to rest from its sample ``index``.

    Every axis brakes together (phase-synchronised), so the rig stays on the transition's straight
    line in joint space, which was collision-checked.
    """
    from ruckig import ControlInterface, InputParameter, Result, Ruckig, Synchronization, Trajectory

    values, rate = transition.values, transition.rate_hz
    index = int(np.clip(index, 0, len(values) - 1))
    window = values[max(0, index - 3): index + 1]
    v, a, _ = (d[-1] for d in derivatives(window, rate)) if len(window) >= 3 else (np.zeros(values.shape[1]),) * 3
    limits = axis_limits(plan.rig)
    n = values.shape[1]
    inp = InputParameter(n)
    inp.control_interface = ControlInterface.Velocity
    inp.synchronization = Synchronization.Phase
    inp.current_position = values[index].tolist()
    inp.current_velocity = v.tolist()
    inp.current_acceleration = a.tolist()
    inp.target_velocity = [0.0] * n
    inp.target_acceleration = [0.0] * n
    inp.max_velocity = [l.vmax for l in limits]
    inp.max_acceleration = [l.amax * fraction for l in limits]
    inp.max_jerk = [l.jmax * fraction for l in limits]
    out = Trajectory(n)
    result = Ruckig(n).calculate(inp, out)
    if result not in (Result.Working, Result.Finished):
        inp.synchronization = Synchronization.No
        if Ruckig(n).calculate(inp, out) not in (Result.Working, Result.Finished):
            raise PlanningError("ruckig could not plan the stop of the go-to-start")
    ticks = np.arange(int(np.ceil(out.duration * rate)) + 1) / rate
    samples = np.array([out.at_time(min(t, out.duration))[0] for t in ticks])
    return Transition("stop", rate, ticks, samples, transition.via_park, transition.clear, transition.min_clearance_m)
