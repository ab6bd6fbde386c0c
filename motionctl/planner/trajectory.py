"""The servo-rate trajectory: immutable arrays, one row per tick, cheap to slice."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from numpy.typing import NDArray

from motionctl.rotations import frozen, matrix_to_ptr


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Setpoints at the servo rate.  Angles in radians, lengths in metres, lens in its units.

    ``t`` is run time from frame 0; ``s`` is the matching instant of the move as keyed (they differ when
    the move was retimed); ``frame`` is the (fractional) frame position of each tick in the run.
    Derivatives are backward differences of ``q`` at the servo rate (what the drives see).
    """

    rate_hz: int
    t: NDArray[np.float64]
    s: NDArray[np.float64]
    frame: NDArray[np.float64]
    q: NDArray[np.float64]               # (K, arm axes): joints only; the lens is ``lens`` (the CSV has both)
    qd: NDArray[np.float64]
    qdd: NDArray[np.float64]
    qddd: NDArray[np.float64]
    lens: NDArray[np.float64]            # (K, lens axes), in each lens axis' own unit
    camera: NDArray[np.float64]          # (K, 4, 4) camera pose by FK of q

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and value.flags.writeable:
                object.__setattr__(self, f.name, frozen(value))

    def __len__(self) -> int:
        return len(self.t)

    @property
    def duration_s(self) -> float:
        return float(self.t[-1]) if len(self.t) else 0.0

    def slice(self, start: int, stop: int | None = None) -> Trajectory:
        """Rows ``start:stop`` as a new trajectory (views, no copies)."""
        picked = {f.name: getattr(self, f.name)[start:stop] for f in fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        return replace(self, **picked)

    def camera_xyz_ptr(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Camera position (K, 3) in metres and pan/tilt/roll (K, 3) in radians, pan unwrapped."""
        ptr = matrix_to_ptr(self.camera[:, :3, :3])
        ptr[:, 0] = np.unwrap(ptr[:, 0])
        ptr[:, 2] = np.unwrap(ptr[:, 2])
        return self.camera[:, :3, 3], ptr
