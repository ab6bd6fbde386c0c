"""Solve every keyframe of a move in order, the way the planner will visit them.

Keys are solved one after another, each IK seeded from the previous key's solution (the first from
the rig's park pose), so a key that only the other elbow configuration could reach is reported instead
of being reached by a silent flip.  When the seeded solve fails (or leaves a joint limit) a wider,
deterministic search runs before anything is reported (:func:`motionctl.kinematics.ik_search.solve_key`):
a key with an exact solution in the pinned configuration is reachable, and whatever else is wrong with
it (a link against another, an obstacle) is then found by the planner's clearance check, under its true
name.  Joint keys set the named axes; unnamed axes hold their previous value.  Lens values hold too.
Problems become :class:`Violation` entries, not exceptions: an operator wants every bad key named in
one run, not only the first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import UnreachableError
from motionctl.kinematics import IKTracker, Kinematics
from motionctl.kinematics.ik_search import solve_key
from motionctl.planner.limits import POSITION_TOLERANCE
from motionctl.planner.report import KeyPose, Violation, ViolationKind
from motionctl.rotations import homogeneous, matrix_to_ptr
from motionctl.spec.move import Key, Scene


@dataclass(frozen=True, eq=False)
class SolvedKey:
    key: Key
    q: NDArray[np.float64] | None          # None when unreachable
    camera: NDArray[np.float64] | None     # 4x4 camera pose (from FK of q, or the asked pose)
    lens: dict[str, float]


def key_target(key: Key) -> NDArray[np.float64]:
    """The 4x4 camera pose a camera key asks for."""
    assert key.camera is not None
    return homogeneous(key.camera.rotation, key.camera.position)


def solve_keys(scene: Scene, kin: Kinematics | None = None,
               tracker: IKTracker | None = None) -> tuple[list[SolvedKey], list[Violation]]:
    """Solve all keys in order; return them with every unreachable key and limit breach found."""
    rig, move = scene.rig, scene.move
    kin = kin or Kinematics(rig)
    tracker = tracker or IKTracker(kin)
    q = np.array(rig.park, dtype=float)
    lens = {l.name: l.default for l in rig.lens}
    solved: list[SolvedKey] = []
    violations: list[Violation] = []
    for key in move.keys:
        tc = move.timecode_at(key.frame)
        lens = {**lens, **key.lens}
        if key.camera is not None:
            target = key_target(key)
            follow = None
            if rig.follow and any(f in key.joints for f in rig.follow):
                follow = np.array([key.joints.get(f, q[rig.axis_index(f)]) for f in rig.follow])
            try:
                result = solve_key(tracker, target, q, park=rig.park, follow=follow, frame=key.frame)
            except UnreachableError as exc:
                violations.append(Violation(ViolationKind.UNREACHABLE, f"key {key.index}", key.frame, key.frame,
                                            tc, tc, exc.position_error_m, None, "m",
                                            f"key {key.index}: {exc.reason}"))
                solved.append(SolvedKey(key, None, target, dict(lens)))
                continue
            q = result.q
        else:
            q = q.copy()
            for name, value in key.joints.items():
                q[rig.axis_index(name)] = value
        for i, axis in enumerate(rig.axes):
            if not axis.min - POSITION_TOLERANCE <= q[i] <= axis.max + POSITION_TOLERANCE:
                limit = axis.max if q[i] > axis.max else axis.min
                shown = f"{axis.to_file(q[i]):.3f} {axis.file_unit}"
                violations.append(Violation(
                    ViolationKind.POSITION, axis.name, key.frame, key.frame, tc, tc, float(q[i]), float(limit),
                    axis.unit, f"key {key.index} at frame {key.frame} ({tc}) puts {axis.name} at {shown}, beyond "
                    f"its limit of {axis.to_file(limit):g} {axis.file_unit}"))
        for lens_axis in rig.lens:
            value = lens[lens_axis.name]
            if not lens_axis.min - POSITION_TOLERANCE <= value <= lens_axis.max + POSITION_TOLERANCE:
                limit = lens_axis.max if value > lens_axis.max else lens_axis.min
                violations.append(Violation(
                    ViolationKind.POSITION, f"lens.{lens_axis.name}", key.frame, key.frame, tc, tc, value, limit,
                    lens_axis.unit, f"key {key.index} sets {lens_axis.name} to {value:g} {lens_axis.unit}, outside "
                    f"the lens range {lens_axis.min:g}..{lens_axis.max:g}"))
        solved.append(SolvedKey(key, q.copy(), kin.camera(q), dict(lens)))
    return solved, violations


def key_pose(scene: Scene, solved: SolvedKey) -> KeyPose:
    """Report row of one solved key, in file units."""
    rig, key = scene.rig, solved.key
    camera: dict[str, float] = {}
    if solved.camera is not None:
        x, y, z = solved.camera[:3, 3]
        pan, tilt, roll = (math.degrees(a) for a in matrix_to_ptr(solved.camera[:3, :3]))
        camera = {"x_m": float(x), "y_m": float(y), "z_m": float(z), "pan_deg": pan, "tilt_deg": tilt,
                  "roll_deg": roll}
    joints = {} if solved.q is None else {a.name: float(a.to_file(v)) for a, v in zip(rig.axes, solved.q)}
    return KeyPose(key.index, key.frame, scene.move.timecode_at(key.frame), key.label,
                   "camera" if key.camera is not None else "joints", solved.q is not None, joints, camera,
                   dict(solved.lens))
