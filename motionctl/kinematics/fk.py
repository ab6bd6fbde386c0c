"""Forward kinematics of a rig, vectorised over N joint samples.

Why hand-written next to roboticstoolbox: the planner evaluates every link frame at every servo tick
(60 000 samples for a one-minute move at 1 kHz).  roboticstoolbox's ``fkine`` computes one end frame
per call; here each link multiplies a whole ``(N, 4, 4)`` stack at once, updating only the two matrix
columns an elementary rotation touches.  ``tests/kinematics/test_fk.py`` checks every frame against
roboticstoolbox (and the UR10e geometry against an independent DH model), so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from motionctl.spec.chain import LinkSpec
from motionctl.spec.rig import Rig

# Columns mixed by a rotation about x, y, z: (first, second); R_axis(t) maps
#   first  <- cos t * first + sin t * second,   second <- -sin t * first + cos t * second
_ROTATED_COLUMNS = {0: (1, 2), 1: (2, 0), 2: (0, 1)}


@dataclass(frozen=True, eq=False)
class CapsuleSet:
    """Every collision capsule of the rig, flattened: endpoints in their link frames."""

    link: NDArray[np.int64]         # (C,) index of the link each capsule belongs to
    a: NDArray[np.float64]          # (C, 3)
    b: NDArray[np.float64]          # (C, 3)
    radius: NDArray[np.float64]     # (C,)
    names: tuple[str, ...]          # link name per capsule


class Kinematics:
    """Batched forward kinematics of one rig in the stage frame.

    ``q`` is ``(N, n)`` (or ``(n,)`` for one sample) in SI units, columns in the rig's axis order.
    """

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.n = len(rig.axes)
        self.links: tuple[LinkSpec, ...] = rig.links
        names = rig.axis_names
        self._joint_column = [names.index(l.joint.variable) if l.joint else -1 for l in self.links]
        self.camera_link = rig.camera_link
        self.capsules = self._collect_capsules()

    def _collect_capsules(self) -> CapsuleSet:
        link, a, b, r, names = [], [], [], [], []
        for i, spec in enumerate(self.links):
            for cap in spec.capsules:
                link.append(i)
                a.append(cap.a)
                b.append(cap.b)
                r.append(cap.radius)
                names.append(spec.name)
        return CapsuleSet(np.array(link, dtype=np.int64), np.array(a).reshape(-1, 3),
                          np.array(b).reshape(-1, 3), np.array(r, dtype=float), tuple(names))

    @staticmethod
    def _as_batch(q: ArrayLike) -> tuple[NDArray[np.float64], bool]:
        arr = np.asarray(q, dtype=float)
        return (arr[None, :], True) if arr.ndim == 1 else (arr, False)

    def link_frames(self, q: ArrayLike, upto: int | None = None) -> NDArray[np.float64]:
        """Frames of links ``0..upto`` (all by default) in the stage frame: ``(N, L, 4, 4)``."""
        batch, single = self._as_batch(q)
        count = len(self.links) if upto is None else upto + 1
        out = np.empty((batch.shape[0], count, 4, 4))
        current = np.broadcast_to(self.rig.base, (batch.shape[0], 4, 4))
        for i in range(count):
            current = self._apply(current, i, batch)
            out[:, i] = current
        return out[0] if single else out

    def _apply(self, frame: NDArray[np.float64], index: int, q: NDArray[np.float64]) -> NDArray[np.float64]:
        spec = self.links[index]
        out = frame @ spec.pre
        joint = spec.joint
        if joint is not None:
            value = q[:, self._joint_column[index]] * joint.sign
            if joint.prismatic:
                out[:, :3, 3] += out[:, :3, joint.direction] * value[:, None]
            else:
                first, second = _ROTATED_COLUMNS[joint.direction]
                c, s = np.cos(value)[:, None], np.sin(value)[:, None]
                col_f = out[:, :3, first].copy()
                col_s = out[:, :3, second]
                out[:, :3, first] = c * col_f + s * col_s
                out[:, :3, second] = -s * col_f + c * col_s
        return out @ spec.post

    def camera(self, q: ArrayLike) -> NDArray[np.float64]:
        """Camera (nodal point) frame in the stage frame: ``(N, 4, 4)`` or ``(4, 4)``."""
        batch, single = self._as_batch(q)
        frames = self.link_frames(batch, upto=self.camera_link)
        out = frames[:, -1] @ self.rig.camera_mount
        return out[0] if single else out

    def camera_from_frames(self, frames: NDArray[np.float64]) -> NDArray[np.float64]:
        """Camera poses from ``link_frames`` output (saves a second FK pass)."""
        return frames[:, self.camera_link] @ self.rig.camera_mount

    def capsules_world(self, frames: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Capsule endpoints in the stage frame from ``link_frames`` output: two ``(N, C, 3)`` arrays."""
        caps = self.capsules
        count = frames.shape[0]
        a = np.empty((count, len(caps.radius), 3))
        b = np.empty_like(a)
        for c, link in enumerate(caps.link):
            rot, trans = frames[:, link, :3, :3], frames[:, link, :3, 3]
            a[:, c] = rot @ caps.a[c] + trans
            b[:, c] = rot @ caps.b[c] + trans
        return a, b
