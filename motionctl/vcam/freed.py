"""FreeD "D1" camera-pose messages: encode, decode, and conversion from a stage-frame camera pose.

Wire format (``PROTOCOLS.md`` section 2; Vinten Radamec free-d manual App. A/B; Unreal's
``LiveLinkFreeDSource.cpp``): 29 bytes, big-endian.

====== === ============ ================================================================================
offset len field        encoding here
====== === ============ ================================================================================
0      1   type         ``0xD1``
1      1   camera id    u8, 0..255
2      3   pan          s24 two's complement, degrees x 32768 (1 LSB = 1/32768 deg)
5      3   tilt         s24, degrees x 32768
8      3   roll         s24, degrees x 32768
11     3   X            s24, millimetres x 64 (1 LSB = 1/64 mm)
14     3   Y            s24, millimetres x 64
17     3   Z (height)   s24, millimetres x 64
20     3   zoom         u24 raw encoder counts
23     3   focus        u24 raw encoder counts
26     2   spare/user   u16: 0, or with ``iris_in_spare`` the iris encoder x 0xFFFF (some vendors)
28     1   checksum     ``(0x40 - sum(bytes[0:28])) mod 256``: all 29 bytes sum to 0x40 mod 256
====== === ============ ================================================================================

Axes and signs (free-d manual B.1-B.4, ``PROTOCOLS.md`` section 2):

====== ================================================== ===============================================
value  FreeD meaning                                      from the engine-world pose (stage conventions)
====== ================================================== ===============================================
X,Y,Z  right-handed, Z up, pan 0 looks along +Y           engine-world position x 1000 (m -> mm)
pan    positive = pan right, clockwise seen from above    **-pan** (stage pan is counter-clockwise)
tilt   positive = tilt up                                 tilt (same sign)
roll   positive = clockwise seen from behind the camera   roll (same sign: stage roll turns the camera's
                                                          up vector towards camera-right)
zoom   raw counts                                         ``round(encoder(zoom mm) x full_scale)``
focus  raw counts                                         ``round(encoder(focus m) x full_scale)``
====== ================================================== ===============================================

Euler order: pan about the vertical, then tilt, then roll about the optical axis, i.e. the stage's intrinsic
Z-X-Y with the pan sign flipped: ``R = Rz(-pan) Rx(tilt) Ry(roll)`` (:func:`engine_pose_from_freed`).

Encoder counts use the rig's lens calibration (``LensAxis.encoder``: physical value -> 0..1, increasing
with the physical value, so focus counts grow towards infinity) scaled by ``full_scale`` (default
``0xFFFF``, the 0..0xFFFF range of Unreal LiveLinkFreeD's "Generic" preset; any value up to 0xFFFFFF).
A lens channel that is not given, or that the rig has no axis for, is sent as 0 counts.

Range policy (decided here):

* Angles are wrapped into [-180, 180) degrees (after quantising, so +180 is sent as -180).  Wrapping one
  Euler angle by 360 degrees never changes the rotation, so nothing is lost, and the wire range
  (+-256 deg) is never exceeded.
* Positions are **not** clamped: a value outside the s24 range (-131072 .. +131071.984 mm, about +-131 m)
  raises :class:`FreedRangeError`.  A clamped position would put the virtual camera in the wrong place
  without a word; :class:`~motionctl.vcam.sender.VcamSender` counts the error and keeps going.
* Counts outside u24 / the spare field outside u16 / a camera id outside u8, and NaN or infinite values,
  also raise :class:`FreedRangeError`.

:func:`decode_d1` raises :class:`~motionctl.errors.ProtocolError` on a wrong length, type or checksum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from motionctl.errors import MotionctlError, ProtocolError
from motionctl.rotations import homogeneous, ptr_to_matrix
from motionctl.spec.rig import Rig
from motionctl.spec.stage import Stage
from motionctl.vcam.frames import check_lens, engine_pose, lens_encoder, pose_ptr_deg

__all__ = [
    "ANGLE_LSB_PER_DEG", "D1_LENGTH", "D1_TYPE", "DEFAULT_FULL_SCALE", "FREED_DEFAULT_PORT", "FreedPose",
    "FreedRangeError", "POSITION_LSB_PER_MM", "decode_d1", "encode_d1", "engine_pose_from_freed",
    "freed_checksum", "freed_from_pose",
]

FREED_DEFAULT_PORT = 40000          # Unreal LiveLinkFreeD's default UDP port
D1_TYPE = 0xD1
D1_LENGTH = 29
ANGLE_LSB_PER_DEG = 32768           # 1/32768 degree per LSB
POSITION_LSB_PER_MM = 64            # 1/64 millimetre per LSB
DEFAULT_FULL_SCALE = 0xFFFF         # encoder 1.0 -> this many counts
_S24_MIN, _S24_MAX = -(1 << 23), (1 << 23) - 1
_U24_MAX = 0xFFFFFF


class FreedRangeError(MotionctlError, ValueError):
    """A value that a D1 message cannot carry (position beyond +-131 m, counts beyond 24 bits, NaN...)."""


@dataclass(frozen=True)
class FreedPose:
    """The content of one D1 message, in FreeD's own conventions (see the module docstring)."""

    camera_id: int
    pan_deg: float
    tilt_deg: float
    roll_deg: float
    x_mm: float
    y_mm: float
    z_mm: float
    zoom: int
    focus: int
    spare: int = 0


def freed_checksum(body: bytes) -> int:
    """Checksum of the first 28 bytes: ``(0x40 - sum) mod 256``."""
    return (0x40 - sum(body)) & 0xFF


def _finite(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise FreedRangeError(f"FreeD {name} must be finite, got {value!r}")
    return number


def _angle(name: str, value: float) -> bytes:
    """Quantise, then wrap the *count* into [-180, 180) degrees (so 179.99999999 and 180 both go to -180)."""
    half_turn = 180 * ANGLE_LSB_PER_DEG
    count = (round(_finite(name, value) * ANGLE_LSB_PER_DEG) + half_turn) % (2 * half_turn) - half_turn
    return (count & 0xFFFFFF).to_bytes(3, "big")


def _s24(name: str, value: float, scale: int, unit: str) -> bytes:
    count = round(_finite(name, value) * scale)
    if not _S24_MIN <= count <= _S24_MAX:
        raise FreedRangeError(f"FreeD {name} {value:g} {unit} is outside the 24-bit range "
                              f"{_S24_MIN / scale:g} .. {_S24_MAX / scale:g} {unit}")
    return (count & 0xFFFFFF).to_bytes(3, "big")


def _unsigned(name: str, value: int, maximum: int, size: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FreedRangeError(f"FreeD {name} must be an integer count, got {value!r}")
    if not 0 <= int(value) <= maximum:
        raise FreedRangeError(f"FreeD {name} {value} is outside 0 .. {maximum}")
    return int(value).to_bytes(size, "big")


def encode_d1(pose: FreedPose) -> bytes:
    """The 29-byte D1 message of ``pose`` (angles wrapped to [-180, 180); see the range policy above)."""
    body = b"".join((
        bytes((D1_TYPE,)),
        _unsigned("camera id", pose.camera_id, 0xFF, 1),
        _angle("pan", pose.pan_deg),
        _angle("tilt", pose.tilt_deg),
        _angle("roll", pose.roll_deg),
        _s24("x", pose.x_mm, POSITION_LSB_PER_MM, "mm"),
        _s24("y", pose.y_mm, POSITION_LSB_PER_MM, "mm"),
        _s24("z", pose.z_mm, POSITION_LSB_PER_MM, "mm"),
        _unsigned("zoom", pose.zoom, _U24_MAX, 3),
        _unsigned("focus", pose.focus, _U24_MAX, 3),
        _unsigned("spare", pose.spare, 0xFFFF, 2),
    ))
    return body + bytes((freed_checksum(body),))


def decode_d1(data: bytes | bytearray | memoryview) -> FreedPose:
    """Parse one D1 message; :class:`ProtocolError` on a wrong length, message type or checksum."""
    raw = bytes(data)
    if len(raw) != D1_LENGTH:
        raise ProtocolError(f"FreeD D1 message must be {D1_LENGTH} bytes, got {len(raw)}")
    if raw[0] != D1_TYPE:
        raise ProtocolError(f"FreeD message type 0x{raw[0]:02X} is not D1 (0xD1)")
    expected = freed_checksum(raw[:28])
    if raw[28] != expected:
        raise ProtocolError(f"FreeD D1 checksum 0x{raw[28]:02X} does not match 0x{expected:02X}: "
                            f"the message is corrupt")

    def s24(offset: int) -> int:
        return int.from_bytes(raw[offset:offset + 3], "big", signed=True)

    def u24(offset: int) -> int:
        return int.from_bytes(raw[offset:offset + 3], "big")

    return FreedPose(
        camera_id=raw[1],
        pan_deg=s24(2) / ANGLE_LSB_PER_DEG, tilt_deg=s24(5) / ANGLE_LSB_PER_DEG,
        roll_deg=s24(8) / ANGLE_LSB_PER_DEG,
        x_mm=s24(11) / POSITION_LSB_PER_MM, y_mm=s24(14) / POSITION_LSB_PER_MM,
        z_mm=s24(17) / POSITION_LSB_PER_MM,
        zoom=u24(20), focus=u24(23), spare=int.from_bytes(raw[26:28], "big"))


def _counts(rig: Rig | None, lens: Mapping[str, float], name: str, full_scale: int) -> int:
    value = lens.get(name)
    encoder = None if value is None else lens_encoder(rig, name, value)
    return 0 if encoder is None else round(encoder * full_scale)


def freed_from_pose(pose: ArrayLike, lens: Mapping[str, float] | None, rig: Rig | None, stage: Stage,
                    camera_id: int = 1, *, full_scale: int = DEFAULT_FULL_SCALE,
                    iris_in_spare: bool = False) -> FreedPose:
    """FreeD values of a stage-frame camera pose (4x4) and physical lens values.

    ``lens`` is ``{"focus": m, "iris": f-stop, "zoom": mm}`` (any subset); counts come from ``rig``'s
    lens calibration times ``full_scale``.  The pose goes through ``stage.engine_from_stage`` first.
    """
    if isinstance(full_scale, bool) or not isinstance(full_scale, int) or not 1 <= full_scale <= _U24_MAX:
        raise FreedRangeError(f"FreeD encoder full scale must be an integer 1 .. {_U24_MAX}, "
                              f"got {full_scale!r}")
    values = check_lens(lens)
    world = engine_pose(pose, stage)
    pan, tilt, roll = pose_ptr_deg(world)
    x, y, z = (float(v) * 1000.0 for v in world[:3, 3])
    spare = _counts(rig, values, "iris", 0xFFFF) if iris_in_spare else 0
    return FreedPose(camera_id=camera_id, pan_deg=-pan, tilt_deg=tilt, roll_deg=roll, x_mm=x, y_mm=y,
                     z_mm=z, zoom=_counts(rig, values, "zoom", full_scale),
                     focus=_counts(rig, values, "focus", full_scale), spare=spare)


def engine_pose_from_freed(pose: FreedPose) -> NDArray[np.float64]:
    """Inverse of the pose part of :func:`freed_from_pose`: the camera's 4x4 in the engine world (metres)."""
    rotation = ptr_to_matrix(math.radians(-pose.pan_deg), math.radians(pose.tilt_deg),
                             math.radians(pose.roll_deg))
    return homogeneous(rotation, np.array([pose.x_mm, pose.y_mm, pose.z_mm]) / 1000.0)
