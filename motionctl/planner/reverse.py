"""A plan run backwards: the same checked path, from its last sample to its first.

Operators rehearse a move backwards to get the rig home along the path it came, or to look at the end of
a move again without a go-to-start across the set.  Nothing is re-planned: the reversed plan is the
forward plan's samples in reverse order, and its path functions are the forward ones at ``D - s``.  The
path is the same set of poses, so every clearance holds; a rest-to-rest trajectory reversed in time has
the same peak |velocity|, |acceleration| and |jerk| (signs flip), so every limit holds too; the forward
check report therefore stands for it (with a note).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import PlanningError
from motionctl.planner.limits import derivatives
from motionctl.planner.plan import Plan


@dataclass(frozen=True)
class _Reversed:
    """``f(D - t)``; its ``order``-th derivative picks up ``(-1) ** order``."""

    forward: object
    duration: float

    def __call__(self, t: NDArray[np.float64], order: int = 0) -> NDArray[np.float64]:
        values = self.forward(self.duration - np.asarray(t, dtype=float), order)
        return values if order % 2 == 0 else -values


@dataclass(frozen=True)
class _ReversedReference:
    """The slice of :class:`~motionctl.planner.path.ReferencePath` the runtime uses: lens channels."""

    lens: tuple[_Reversed, ...]
    duration: float

    def lens_values(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        if not self.lens:
            return np.zeros((len(np.asarray(t)), 0))
        return np.concatenate([c(t) for c in self.lens], axis=-1)


def reverse_plan(plan: Plan) -> Plan:
    """``plan`` from its end back to its start (same rate, same duration, same checked poses)."""
    traj, path, reference = plan.trajectory, plan.joint_path, plan.reference
    if traj is None or path is None or reference is None:
        raise PlanningError("the move has no trajectory to run backwards")
    duration = float(path.duration)
    q = traj.q[::-1].copy()
    qd, qdd, qddd = derivatives(q, traj.rate_hz)
    backwards = replace(traj, s=duration - traj.s[::-1], q=q, qd=qd, qdd=qdd, qddd=qddd,
                        lens=traj.lens[::-1].copy(), camera=traj.camera[::-1].copy())
    joint_path = _Reversed(path, duration)
    reversed_reference = _ReversedReference(tuple(_Reversed(c, duration) for c in reference.lens), duration)
    move = replace(plan.move, name=f"{plan.move.name} (backwards)")
    return replace(plan, move=move, trajectory=backwards, joint_path=joint_path, reference=reversed_reference)
