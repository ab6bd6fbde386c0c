"""Joint trajectory along the intended path: IK at knots, splines between them, error measured per tick.

In a camera stretch the IK tracker solves the intended camera pose at every frame instant (the knots),
each solve seeded from the previous one with the follow axes held at their interpolated values, so the
arm never changes configuration.  A quintic spline through the knots (at rest where the whole stretch
rests) gives the joints at every servo tick; FK of those ticks is compared with the intended pose at the
same instants, and wherever the error is above :data:`REFINE_POSITION_M` / :data:`REFINE_ANGLE_RAD` new
knots are added between the neighbours and solved, until it is not.  The measured maximum is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from motionctl.kinematics import IKTracker, Kinematics
from motionctl.planner.channels import Channel
from motionctl.planner.path import ReferencePath, Space, Stretch
from motionctl.rotations import rotation_angle

#: Knots are added until the camera is this close to the intended path at every tick.
REFINE_POSITION_M = 2e-5
REFINE_ANGLE_RAD = math.radians(2e-3)
MAX_REFINEMENTS = 6


@dataclass(frozen=True, eq=False)
class JointPath:
    """Joints as a function of (original) move time: one evaluator per stretch."""

    starts: NDArray[np.float64]
    evaluators: tuple[Channel, ...]
    duration: float

    def __call__(self, t: NDArray[np.float64], order: int = 0) -> NDArray[np.float64]:
        """Joints (or their ``order``-th derivative with respect to move time) at times ``t``."""
        t = np.asarray(t, dtype=float)
        index = np.clip(np.searchsorted(self.starts, t, side="right") - 1, 0, len(self.evaluators) - 1)
        out = None
        for i, ev in enumerate(self.evaluators):
            mask = index == i
            if not mask.any():
                continue
            values = ev(t[mask], order)
            if out is None:
                out = np.empty((t.size, values.shape[-1]))
            out[mask] = values
        assert out is not None
        return out


@dataclass(frozen=True)
class PathError:
    max_position_m: float
    max_angle_rad: float
    knots: int


def _frame_knots(stretch: Stretch, frame_duration: float) -> NDArray[np.float64]:
    first = int(round(stretch.t0 / frame_duration))
    last = int(round(stretch.t1 / frame_duration))
    knots = np.arange(first, last + 1) * frame_duration
    knots[0], knots[-1] = stretch.t0, stretch.t1
    return np.union1d(knots, stretch.rest_times)


class StretchTracker:
    """IK along one camera stretch."""

    def __init__(self, stretch: Stretch, kin: Kinematics, tracker: IKTracker, frame_duration: float) -> None:
        self.stretch = stretch
        self.kin = kin
        self.tracker = tracker
        self.frame_duration = frame_duration

    def solve_knots(self, times: NDArray[np.float64], seed: NDArray[np.float64]) -> NDArray[np.float64]:
        """Solve the intended pose at ``times`` in order, each knot seeded from the one before it."""
        frames = np.round(times / self.frame_duration).astype(np.int64)
        return self.tracker.track(self.stretch.camera(times), self.stretch.follow_values(times), seed, frames)

    def track(self, ticks: NDArray[np.float64]) -> tuple[Channel, PathError]:
        """Joint channel for the stretch, refined until the camera follows the path at every tick."""
        stretch = self.stretch
        knots = _frame_knots(stretch, self.frame_duration)
        q0 = stretch.keys[0].q
        values = self.solve_knots(knots, q0)
        inside = ticks[(ticks >= stretch.t0) & (ticks <= stretch.t1)]
        intended = stretch.camera(inside) if len(inside) else np.zeros((0, 4, 4))
        for _ in range(MAX_REFINEMENTS + 1):
            channel = Channel(knots, values, forced_rest=np.isin(knots, stretch.rest_times))
            if not len(inside):
                return channel, PathError(0.0, 0.0, len(knots))
            actual = self.kin.camera(channel(inside))
            pos_err = np.linalg.norm(actual[:, :3, 3] - intended[:, :3, 3], axis=1)
            ang_err = rotation_angle(actual[:, :3, :3], intended[:, :3, :3])
            bad = (pos_err > REFINE_POSITION_M) | (ang_err > REFINE_ANGLE_RAD)
            if not bad.any():
                break
            # Add a knot in the middle of every knot interval that holds a bad tick.
            intervals = np.unique(np.clip(np.searchsorted(knots, inside[bad], side="right") - 1, 0, len(knots) - 2))
            new_times = 0.5 * (knots[intervals] + knots[intervals + 1])
            new_values = self.solve_knots_between(new_times, knots, values, intervals)
            order = np.argsort(np.concatenate([knots, new_times]), kind="stable")
            knots = np.concatenate([knots, new_times])[order]
            values = np.concatenate([values, new_values])[order]
        return channel, PathError(float(pos_err.max()), float(ang_err.max()), len(knots))

    def solve_knots_between(self, times: NDArray[np.float64], knots: NDArray[np.float64],
                            values: NDArray[np.float64], intervals: NDArray[np.int64]) -> NDArray[np.float64]:
        """Solve each new knot seeded from the knot before it (same branch, a short step away)."""
        out = np.empty((len(times), values.shape[1]))
        for j, (t, i) in enumerate(zip(times, intervals)):
            out[j] = self.solve_knots(np.array([t]), values[i])[0]
        return out


def track_path(reference: ReferencePath, kin: Kinematics, tracker: IKTracker, frame_duration: float,
               ticks: NDArray[np.float64]) -> tuple[JointPath, PathError]:
    """Joint path for the whole move and the worst camera-path error measured at the ticks."""
    evaluators: list[Channel] = []
    worst = PathError(0.0, 0.0, 0)
    for stretch in reference.stretches:
        if stretch.space is Space.JOINTS:
            evaluators.append(_JointStretch(stretch))
            continue
        channel, error = StretchTracker(stretch, kin, tracker, frame_duration).track(ticks)
        evaluators.append(channel)
        worst = PathError(max(worst.max_position_m, error.max_position_m),
                          max(worst.max_angle_rad, error.max_angle_rad), worst.knots + error.knots)
    starts = np.array([s.t0 for s in reference.stretches])
    return JointPath(starts, tuple(evaluators), reference.duration), worst


class _JointStretch(Channel):
    """A joint-space stretch evaluated like a channel (each axis its own channel)."""

    def __init__(self, stretch: Stretch) -> None:  # noqa: D107 - deliberately not calling Channel.__init__
        self.stretch = stretch

    def __call__(self, t: NDArray[np.float64], order: int = 0) -> NDArray[np.float64]:
        return np.concatenate([c(t, order) for c in self.stretch.joints], axis=-1)

