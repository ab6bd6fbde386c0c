"""The stage -> engine-world step shared by both virtual-camera protocols, and lens value checks.

Both FreeD and OpenTrackIO carry the camera in one right-handed, Z-up world whose camera looks along +Y at
pan = tilt = roll = 0 (see ``docs/vcam.md``).  motionctl's stage frame has exactly those axes, so the only
step between the two is the stage file's rigid ``[engine]`` transform::

    engine_T_camera = stage.engine_from_stage @ stage_T_camera

The rotation part turns the camera axes with the stage; the translation is in metres.
``stage.engine_units_per_metre`` is *not* applied: FreeD is in millimetres and OpenTrackIO in metres by
definition, and the engine plug-ins (LiveLinkFreeD, LiveLinkOpenTrackIO) convert to their own units.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from motionctl.rotations import matrix_to_ptr
from motionctl.spec.rig import LENS_UNITS, Rig
from motionctl.spec.stage import Stage

#: The lens channels a sample may carry, in their physical units (focus m, iris f-stop, zoom mm).
LENS_NAMES = tuple(LENS_UNITS)


def engine_pose(pose: ArrayLike, stage: Stage) -> NDArray[np.float64]:
    """Camera pose 4x4 in the stage frame -> camera pose 4x4 in the engine world (metres)."""
    p = np.asarray(pose, dtype=float)
    if p.shape != (4, 4):
        raise ValueError(f"camera pose must be a 4x4 matrix, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("camera pose has a non-finite element")
    return np.asarray(stage.engine_from_stage, dtype=float) @ p


def pose_ptr_deg(pose: NDArray[np.float64]) -> tuple[float, float, float]:
    """Pan, tilt, roll in degrees (stage/OpenTrackIO convention, pan counter-clockwise) of a 4x4 pose."""
    pan, tilt, roll = (math.degrees(float(a)) for a in matrix_to_ptr(pose[:3, :3]))
    return pan, tilt, roll


def check_lens(lens: Mapping[str, float] | None) -> dict[str, float]:
    """Validated copy of a ``{"focus": m, "iris": f-stop, "zoom": mm}`` mapping (any subset)."""
    if lens is None:
        return {}
    out: dict[str, float] = {}
    for name, value in lens.items():
        if name not in LENS_NAMES:
            raise ValueError(f'unknown lens channel "{name}"; expected one of {", ".join(LENS_NAMES)}')
        number = float(value)
        if not math.isfinite(number) or number <= 0.0:
            raise ValueError(f"lens {name} must be a finite value > 0 {LENS_UNITS[name]}, got {value!r}")
        out[name] = number
    return out


def lens_encoder(rig: Rig | None, name: str, value: float) -> float | None:
    """Normalised 0..1 encoder position of a lens value through the rig's calibration (None: no axis)."""
    if rig is None:
        return None
    for axis in rig.lens:
        if axis.name == name:
            return float(np.clip(axis.encoder(value), 0.0, 1.0))
    return None
