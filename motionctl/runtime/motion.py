"""What the drives are sent, tick by tick: the plan on its governed clock, a transition, or a hold.

:class:`Motion` owns everything that depends on the loaded plan: its timeline and speed governor while it
runs (override, timecode chase), the transition being streamed (a go-to-start, or a stop of the run or of
a go-to-start), and the map from the plan's columns (joints, then lens) to the driver's axes.  It never
decides the run's state; it answers "what is the next sample" and "is this one the last", and the
streamer acts on that.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from motionctl.planner.governor import SpeedGovernor, Timeline
from motionctl.planner.plan import Plan
from motionctl.planner.transitions import Transition, plan_timeline

#: A speed override or the timecode chase changes the plan's clock this gently (a fraction of what its
#: limits allow; a stop brakes harder, planned ahead with a bounded search).
RUN_BRAKE_FRACTION = 0.25


class Motion:
    """The loaded plan and what is being streamed from it."""

    def __init__(self, plan: Plan, axis_names: tuple[str, ...]) -> None:
        self.axis_names = axis_names
        self.transition: Transition | None = None
        self.transition_index = 0
        self.governor: SpeedGovernor | None = None
        self.load(plan)

    def load(self, plan: Plan) -> None:
        rig, names = plan.rig, self.axis_names
        self.plan = plan
        self.timeline: Timeline = plan_timeline(plan)
        self.governor = None
        self.transition = None
        self.transition_index = 0
        self._arm = [names.index(a) for a in rig.axis_names]
        self._lens = [(i, names.index(l.name)) for i, l in enumerate(rig.lens) if l.name in names]

    # -- the map to the driver's axes ------------------------------------------------------------------
    def command(self, plan_values: NDArray[np.float64], base: NDArray[np.float64]) -> NDArray[np.float64]:
        """A driver command: ``plan_values`` (joints then lens) on their axes, ``base`` on the others."""
        out = np.array(base, dtype=float)
        n = len(self.plan.rig.axes)
        out[self._arm] = plan_values[:n]
        for lens_index, column in self._lens:
            out[column] = plan_values[n + lens_index]
        return out

    def arm_of(self, driver_values: NDArray[np.float64]) -> NDArray[np.float64]:
        return driver_values[self._arm]

    def lens_of(self, driver_values: NDArray[np.float64] | None) -> NDArray[np.float64]:
        """The lens columns of ``driver_values``; the plan's first lens values for lens axes not driven."""
        lens = np.array(self.plan.trajectory.lens[0], dtype=float)
        if driver_values is not None:
            for lens_index, column in self._lens:
                lens[lens_index] = driver_values[column]
        return lens

    def start_sample(self) -> NDArray[np.float64]:
        traj = self.plan.trajectory
        return np.concatenate([traj.q[0], traj.lens[0]])

    # -- transitions --------------------------------------------------------------------------------------
    def begin_transition(self, transition: Transition | None, index: int = 0) -> None:
        self.transition, self.transition_index = transition, index

    def transition_sample(self) -> tuple[NDArray[np.float64], bool]:
        """The transition's next sample, and whether it is its last (it holds there afterwards)."""
        values = self.transition.values
        index = min(self.transition_index, len(values) - 1)
        self.transition_index += 1
        return values[index], index >= len(values) - 1

    @property
    def past_transition_end(self) -> int:
        """Ticks streamed since the transition's last sample (a go-to-start's settling time)."""
        return self.transition_index - len(self.transition.values)

    # -- the run --------------------------------------------------------------------------------------------
    def start_run(self, speed: float) -> None:
        """Frame 0 is the next tick.  The plan rests on its first sample, so its clock starts at the target
        speed at once (the rig's own start is in the plan)."""
        self.governor = SpeedGovernor(self.timeline, 0.0, speed=speed, brake_fraction=RUN_BRAKE_FRACTION)

    def run_sample(self, target: float) -> NDArray[np.float64]:
        """The run's next sample with the plan's clock heading for ``target`` speed (raises
        :class:`~motionctl.planner.governor.NoLegalTick` when no value holds every limit)."""
        return self.governor.step(target)

    @property
    def tau(self) -> float:
        return self.governor.tau if self.governor is not None else 0.0

    @property
    def speed(self) -> float:
        return self.governor.speed if self.governor is not None else 0.0

    @property
    def at_end(self) -> bool:
        return self.governor is not None and self.governor.at_end
