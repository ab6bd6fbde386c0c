"""The intended path: where the camera (or the joints) should be at every instant of the move.

Keys are first expanded (a ``hold`` becomes a second key with the same state) and then grouped into
*stretches*: the interval up to a camera key is interpolated in camera space, the interval up to a
joint key in joint space, and a stretch is a maximal run of intervals of one kind.  The move comes to
rest where the kind changes.  Inside a camera stretch the position, the orientation (or the look-at
target and roll, when every key of the stretch looks at a target: the camera then tracks the target
exactly), and each follow axis are separate :mod:`channels <motionctl.planner.channels>`; inside a
joint stretch every axis is its own channel.  Lens axes are channels over the whole move.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from motionctl.planner.channels import Channel, OrientationChannel
from motionctl.planner.keys import SolvedKey
from motionctl.rotations import homogeneous, look_at_ptr, ptr_to_matrix
from motionctl.spec.move import Move
from motionctl.spec.rig import Rig


class Space(Enum):
    CAMERA = "camera"
    JOINTS = "joints"


@dataclass(frozen=True, eq=False)
class PathKey:
    """A key after hold expansion: its instant, state and the original key it came from."""

    time: float
    frame: int
    source: int                          # index of the key in the move file
    q: NDArray[np.float64]
    camera: NDArray[np.float64]          # 4x4 intended camera pose
    look_at: NDArray[np.float64] | None
    roll: float
    is_camera: bool
    lens: NDArray[np.float64]


class Stretch:
    """A maximal run of key intervals interpolated in one space."""

    def __init__(self, space: Space, keys: list[PathKey], rig: Rig) -> None:
        self.space = space
        self.keys = keys
        self.t0, self.t1 = keys[0].time, keys[-1].time
        times = np.array([k.time for k in keys])
        self.times = times
        frames = [k.frame for k in keys]
        self.k = len(rig.follow)
        if space is Space.JOINTS:
            self.joints = [Channel(times, np.array([k.q[i] for k in keys])) for i in range(len(rig.axes))]
            rests = [c.rest_times for c in self.joints]
        else:
            self.position = Channel(times, np.array([k.camera[:3, 3] for k in keys]))
            self.tracking = all(k.look_at is not None for k in keys)
            if self.tracking:
                self.target = Channel(times, np.array([k.look_at for k in keys]))
                self.roll = Channel(times, np.array([k.roll for k in keys]))
                rests = [self.position.rest_times, self.target.rest_times, self.roll.rest_times]
            else:
                self.orientation = OrientationChannel(times, np.array([k.camera[:3, :3] for k in keys]),
                                                      frames=frames)
                rests = [self.position.rest_times, self.orientation.rest_times]
            self.follow = Channel(times, np.array([k.q[: self.k] for k in keys])) if self.k else None
            if self.follow is not None:
                rests.append(self.follow.rest_times)
        # Instants where every channel of the stretch is at rest: joint splines break there.
        common = set(rests[0].tolist())
        for r in rests[1:]:
            common &= set(r.tolist())
        self.rest_times = np.array(sorted(common | {self.t0, self.t1}))

    def camera(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Intended camera poses (N, 4, 4) at times ``t`` (camera stretches only)."""
        position = self.position(t)
        if self.tracking:
            target = self.target(t)
            pan, tilt = np.moveaxis(look_at_ptr(position, target), -1, 0)
            rotation = ptr_to_matrix(pan, tilt, self.roll(t)[..., 0])
        else:
            rotation = self.orientation(t)
        return homogeneous(rotation, position)

    def follow_values(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.follow(t) if self.follow is not None else np.zeros((len(t), 0))

    def joint_values(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.concatenate([c(t) for c in self.joints], axis=-1)


@dataclass(frozen=True, eq=False)
class ReferencePath:
    keys: tuple[PathKey, ...]
    stretches: tuple[Stretch, ...]
    lens: tuple[Channel, ...]
    duration: float

    def lens_values(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        if not self.lens:
            return np.zeros((len(t), 0))
        return np.concatenate([c(t) for c in self.lens], axis=-1)

    def stretch_index(self, t: NDArray[np.float64]) -> NDArray[np.int64]:
        starts = np.array([s.t0 for s in self.stretches])
        return np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(self.stretches) - 1)


def expand_keys(move: Move, rig: Rig, solved: list[SolvedKey]) -> list[PathKey]:
    """Solved keys -> path keys at their instants, holds expanded into a second key."""
    duration = float(move.rate.frame_duration)
    out: list[PathKey] = []
    for s in solved:
        key = s.key
        assert s.q is not None and s.camera is not None
        look_at = key.camera.look_at if key.camera is not None else None
        roll = key.camera.roll if key.camera is not None else 0.0
        pose = s.camera
        lens = np.array([s.lens[l.name] for l in rig.lens])
        for frame in ([key.frame, key.frame + key.hold] if key.hold else [key.frame]):
            out.append(PathKey(frame * duration, frame, key.index, s.q, pose, look_at, roll,
                               key.camera is not None, lens))
    return out


def build_reference(move: Move, rig: Rig, solved: list[SolvedKey]) -> ReferencePath:
    keys = expand_keys(move, rig, solved)
    stretches: list[Stretch] = []
    if len(keys) == 1:
        stretches.append(Stretch(Space.JOINTS, keys, rig))
    else:
        # Interval i -> i+1 takes the space of its end key; a hold keeps the space of its key.
        spaces = [Space.CAMERA if keys[i + 1].is_camera else Space.JOINTS for i in range(len(keys) - 1)]
        start = 0
        for i in range(1, len(spaces) + 1):
            if i == len(spaces) or spaces[i] is not spaces[start]:
                stretches.append(Stretch(spaces[start], keys[start: i + 1], rig))
                start = i
    times = np.array([k.time for k in keys])
    lens = tuple(Channel(times, np.array([k.lens[i] for k in keys])) for i in range(len(rig.lens)))
    return ReferencePath(tuple(keys), tuple(stretches), lens, float(times[-1]))
