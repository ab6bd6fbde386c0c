"""Plans as text: the servo-rate CSV, and the per-frame camera rows that ``vcam.tracks`` writes out.

Pure functions returning strings; the CLI writes them with :func:`motionctl.fileio.write_atomic`.
Numbers are written with 17 significant digits so the file round-trips the float64 samples exactly:
anyone can recompute velocities, accelerations and jerks from it, and two runs give identical bytes.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from numpy.typing import NDArray

from motionctl.planner.plan import Plan
from motionctl.rotations import matrix_to_ptr

CAMERA_COLUMNS = ["x_m", "y_m", "z_m", "pan_deg", "tilt_deg", "roll_deg"]


def _labels(plan: Plan, frames: NDArray[np.int64]) -> list[str]:
    unique = np.unique(frames)
    table = {int(f): plan.move.timecode_at(int(f)) for f in unique}
    return [table[int(f)] for f in frames]


def _camera_columns(poses: NDArray[np.float64]) -> NDArray[np.float64]:
    ptr = matrix_to_ptr(poses[:, :3, :3])
    ptr[:, 0] = np.unwrap(ptr[:, 0])
    ptr[:, 2] = np.unwrap(ptr[:, 2])
    return np.concatenate([poses[:, :3, 3], np.degrees(ptr)], axis=1)


def _format_rows(first: list[list[str]], numbers: NDArray[np.float64]) -> str:
    out = io.StringIO()
    for prefix, row in zip(first, numbers.tolist()):
        out.write(",".join(prefix + [repr(x) for x in row]))
        out.write("\n")
    return out.getvalue()


def plan_csv(plan: Plan) -> str:
    """One row per servo tick: time, frame, timecode, every axis (SI), camera, lens."""
    traj = plan.trajectory
    assert traj is not None, "an unplannable move has no trajectory"
    rig = plan.rig
    header = (["t_s", "frame", "timecode"] + list(rig.axis_names) + CAMERA_COLUMNS
              + [l.name for l in rig.lens])
    last = plan.report.frames - 1
    frames = np.minimum(np.floor(traj.frame + 1e-9).astype(np.int64), last)
    labels = _labels(plan, frames)
    numbers = np.concatenate([traj.q, _camera_columns(traj.camera), traj.lens], axis=1)
    first = [[repr(float(t)), str(int(f)), label] for t, f, label in zip(traj.t, frames, labels)]
    return ",".join(header) + "\n" + _format_rows(first, numbers)


def frame_track(plan: Plan) -> dict[str, Any]:
    """The planned camera at every frame instant (exact instants, not the nearest tick)."""
    traj = plan.trajectory
    assert traj is not None and plan.joint_path is not None and plan.reference is not None
    from motionctl.kinematics import Kinematics

    fps = plan.move.rate.fps
    frames = np.arange(plan.report.frames)
    t = frames * float(1 / fps)
    s = np.interp(t, traj.t, traj.s)
    q = plan.joint_path(s)
    poses = Kinematics(plan.rig).camera(q)
    cam = _camera_columns(poses)
    lens = plan.reference.lens_values(s)
    labels = _labels(plan, frames)
    # The follow axes (a track under an arm): the camera alone leaves them open, so an import of this
    # track onto the same rig keeps them where the plan had them (docs/formats.md, camera tracks).
    follow = [plan.rig.axes[plan.rig.axis_index(name)] for name in plan.rig.follow]
    rows = []
    for i, f in enumerate(frames.tolist()):
        row: dict[str, Any] = {"frame": f, "timecode": labels[i], "t_s": float(t[i])}
        row.update({name: float(cam[i, j]) for j, name in enumerate(CAMERA_COLUMNS)})
        row.update({l.name: float(lens[i, j]) for j, l in enumerate(plan.rig.lens)})
        row.update({f"follow.{a.name}": a.to_file(float(q[i, plan.rig.axis_index(a.name)])) for a in follow})
        rows.append(row)
    return {"move": plan.move.name, "rig": plan.rig.name, "fps": plan.move.rate.label,
            "start": plan.move.start.label, "frame_count": len(rows),
            "frame_rate": {"num": plan.move.rate.num, "den": plan.move.rate.den}, "frames": rows}
