"""Rotations in the stage frame's conventions, vectorised over any leading shape.

Stage frame (OpenTrackIO, see ``docs/architecture.md``): right-handed, Z up, a camera with
pan = tilt = roll = 0 looks along +Y with +X to its right.  Camera rotation is the intrinsic Z-X-Y Euler
sequence ``R = Rz(pan) @ Rx(tilt) @ Ry(roll)``: positive pan turns left (counter-clockwise seen from
above), positive tilt looks up, positive roll turns the picture's up vector to camera-right.

URDF uses fixed-axis roll/pitch/yaw, ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``; :func:`rpy_to_matrix`.

These are a handful of closed forms used on arrays of 60 000 samples, which is why they are written
here in numpy rather than looped through spatialmath's per-object SO3 class.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Below this |cos(tilt)| the camera looks straight up or down and pan/roll share one degree of freedom.
GIMBAL_EPS = 1e-9


def rot_x(angle: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(angle, dtype=float)
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([one, zero, zero], -1), np.stack([zero, c, -s], -1),
                     np.stack([zero, s, c], -1)], -2)


def rot_y(angle: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(angle, dtype=float)
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1),
                     np.stack([-s, zero, c], -1)], -2)


def rot_z(angle: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(angle, dtype=float)
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1),
                     np.stack([zero, zero, one], -1)], -2)


def ptr_to_matrix(pan: ArrayLike, tilt: ArrayLike, roll: ArrayLike) -> NDArray[np.float64]:
    """Camera rotation from pan, tilt, roll in radians (intrinsic Z-X-Y)."""
    return rot_z(pan) @ rot_x(tilt) @ rot_y(roll)


def matrix_to_ptr(rotation: ArrayLike) -> NDArray[np.float64]:
    """Inverse of :func:`ptr_to_matrix`: ``[..., 3]`` of pan, tilt, roll in radians.

    Tilt is in [-90, 90] degrees.  Looking straight up or down, roll is reported as 0 and the whole
    rotation about the vertical goes into pan.
    """
    r = np.asarray(rotation, dtype=float)
    tilt = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    cos_tilt = np.hypot(r[..., 0, 1], r[..., 1, 1])
    regular = cos_tilt > GIMBAL_EPS
    pan = np.where(regular, np.arctan2(-r[..., 0, 1], r[..., 1, 1]), np.arctan2(r[..., 1, 0], r[..., 0, 0]))
    roll = np.where(regular, np.arctan2(-r[..., 2, 0], r[..., 2, 2]), 0.0)
    return np.stack([pan, tilt, roll], -1)


def rpy_to_matrix(roll: ArrayLike, pitch: ArrayLike, yaw: ArrayLike) -> NDArray[np.float64]:
    """URDF fixed-axis roll/pitch/yaw in radians."""
    return rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)


def look_at_ptr(position: ArrayLike, target: ArrayLike) -> NDArray[np.float64]:
    """Pan and tilt (radians, ``[..., 2]``) of a camera at ``position`` looking at ``target``."""
    d = np.asarray(target, dtype=float) - np.asarray(position, dtype=float)
    horizontal = np.hypot(d[..., 0], d[..., 1])
    pan = np.arctan2(-d[..., 0], d[..., 1])
    tilt = np.arctan2(d[..., 2], horizontal)
    return np.stack([pan, tilt], -1)


def rotation_angle(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Angle in radians of the rotation taking ``a`` to ``b`` (geodesic distance on SO(3))."""
    rel = np.swapaxes(np.asarray(a, dtype=float), -1, -2) @ np.asarray(b, dtype=float)
    trace = rel[..., 0, 0] + rel[..., 1, 1] + rel[..., 2, 2]
    # arccos loses precision near 0; use the skew part for small angles (both forms agree elsewhere).
    skew = np.stack([rel[..., 2, 1] - rel[..., 1, 2], rel[..., 0, 2] - rel[..., 2, 0],
                     rel[..., 1, 0] - rel[..., 0, 1]], -1)
    return np.arctan2(0.5 * np.linalg.norm(skew, axis=-1), 0.5 * (trace - 1.0))


def homogeneous(rotation: ArrayLike, translation: ArrayLike) -> NDArray[np.float64]:
    """Stack rotation ``[..., 3, 3]`` and translation ``[..., 3]`` into ``[..., 4, 4]`` transforms."""
    r = np.asarray(rotation, dtype=float)
    t = np.asarray(translation, dtype=float)
    shape = np.broadcast_shapes(r.shape[:-2], t.shape[:-1])
    out = np.zeros(shape + (4, 4))
    out[..., :3, :3] = r
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def invert(transform: ArrayLike) -> NDArray[np.float64]:
    """Inverse of rigid transforms ``[..., 4, 4]``."""
    t = np.asarray(transform, dtype=float)
    rt = np.swapaxes(t[..., :3, :3], -1, -2)
    return homogeneous(rt, -(rt @ t[..., :3, 3:4])[..., 0])


def frozen(array: ArrayLike) -> NDArray[np.float64]:
    """A read-only float copy, for arrays held by immutable models."""
    out = np.array(array, dtype=float)
    out.flags.writeable = False
    return out
