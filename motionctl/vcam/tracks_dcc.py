"""Camera tracks in the formats of the 3D tools: Nuke ``.chan`` and USD.

Nuke ``.chan`` (also written by Maya, Houdini, 3DEqualizer, Blender): ``frame tx ty tz rx ry rz [vfov]``
per line, whitespace separated, in the tool's world: **Y up**, right-handed, a camera with zero rotation
looks along **-Z** with +Y up and +X to its right.  Rotations are degrees, applied in Nuke's default order
``ZXY`` (Z first, then X, then Y: ``M = Ry(ry) Rx(rx) Rz(rz)``, Foundry: "the order in which rotation
components are applied, from left to right").  The mapping to the stage frame (Z up, camera looks +Y)::

    x_stage = x,  y_stage = -z,  z_stage = y             (A = [[1,0,0],[0,0,-1],[0,1,0]])
    R_stage = A M A^T         (the same A also maps the camera's own axes: -Z_cam -> +Y, +Y_cam -> +Z)

so with ``ZXY``: ``pan = ry``, ``tilt = rx``, ``roll = -rz`` (Nuke's rz turns the picture counter-clockwise,
stage roll turns its up direction to the right).  A Nuke camera with ``ry = 90`` looks along Nuke -X, which
is stage -X: pan +90.  The optional 8th column is the vertical field of view in degrees (Nuke, Blender)
or, with ``lens_column="focal"``, the focal length in mm; vfov <-> zoom uses ``sensor_height_mm``
(default Nuke's vertical aperture, 18.672 mm).  Positions are metres unless ``units`` is ``cm`` or ``mm``.

USD (needs ``pip install usd-core``): one ``UsdGeom.Camera``, its local-to-world transform (any scale
removed), ``focalLength`` (in tenths of a scene unit, per the schema), ``focusDistance`` (scene units) and
``fStop`` per time code (time code = frame).  The stage's ``upAxis`` (Y: the mapping above; Z: none, only
the camera's own axes are mapped) and ``metersPerUnit`` are honoured; ``customLayerData["motionctl"]``
carries the exact rate and start timecode.  Files are written Y up in centimetres (USD's defaults, where
``focalLength`` is millimetres).  ``.usdz`` is read only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import InputError, TimecodeError
from motionctl.rotations import rot_x, rot_y, rot_z
from motionctl.timecode import RateLike, Timecode
from motionctl.vcam.tracks import CameraTrack, continuous_ptr
from motionctl.vcam.tracks_formats import UNITS, parse_number, resolve_rate

NUKE_SENSOR_HEIGHT_MM = 18.672
#: Y-up tool (Nuke, Maya, USD) -> stage frame; the same matrix maps the camera's own axes.
Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_ROT = {"X": rot_x, "Y": rot_y, "Z": rot_z}
_USD_HINT = "reading or writing USD needs the pxr module: pip install usd-core"


# -- Nuke .chan ---------------------------------------------------------------------------------------

def _order(rotation_order: str) -> str:
    order = str(rotation_order).upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise InputError(f'rotation order must be a permutation of XYZ (Nuke\'s default: ZXY), '
                         f'not "{rotation_order}"')
    return order


def _scale(units: str | None) -> float:
    if units is None:
        return 1.0
    if units not in UNITS:
        raise InputError(f'units must be one of {", ".join(UNITS)}, not "{units}"')
    return UNITS[units]


def yup_rotation(rx: NDArray, ry: NDArray, rz: NDArray, order: str = "ZXY") -> NDArray[np.float64]:
    """Rotation matrices (n, 3, 3) of a Y-up tool's Euler angles (degrees), first letter applied first."""
    angles = {"X": rx, "Y": ry, "Z": rz}
    out = np.broadcast_to(np.eye(3), (len(np.atleast_1d(rx)), 3, 3))
    for axis in _order(order):
        out = _ROT[axis](np.radians(np.atleast_1d(angles[axis]))) @ out
    return out


def chan_to_stage(rows: NDArray[np.float64], order: str = "ZXY") -> tuple[NDArray, NDArray]:
    """``tx ty tz rx ry rz`` rows (n, 6) of a Y-up tool -> stage positions (n, 3) and pan/tilt/roll (n, 3)."""
    position = rows[:, :3] @ Y_UP.T
    rx, ry, rz = rows[:, 3], rows[:, 4], rows[:, 5]
    if _order(order) == "ZXY":
        ptr = np.stack([ry, rx, -rz], axis=1)
        outside = np.abs(rx) > 90.0
        if outside.any():
            ptr[outside] = continuous_ptr(Y_UP @ yup_rotation(rx, ry, rz)[outside] @ Y_UP.T, ptr[outside])
        return position, ptr
    return position, continuous_ptr(Y_UP @ yup_rotation(rx, ry, rz, order) @ Y_UP.T)


def stage_to_chan(track: CameraTrack, order: str = "ZXY") -> NDArray[np.float64]:
    """Inverse of :func:`chan_to_stage`: rows (n, 6) of ``tx ty tz rx ry rz``."""
    position = track.position @ Y_UP                       # Y_UP is orthogonal: its inverse is its transpose
    if _order(order) == "ZXY":
        angles = np.stack([track.tilt, track.pan, -track.roll], axis=1)
    else:
        from scipy.spatial.transform import Rotation
        local = Y_UP.T @ track.rotations @ Y_UP
        euler = Rotation.from_matrix(local).as_euler(order.lower(), degrees=False)   # lower case: extrinsic
        euler = np.degrees(np.unwrap(euler, axis=0))
        angles = np.stack([euler[:, order.index(a)] for a in "XYZ"], axis=1)
    return np.concatenate([position, angles], axis=1)


def read_chan(text: str, file: str, fps: RateLike | None = None, units: str | None = None,
              start: str | Timecode | None = None, rotation_order: str = "ZXY", lens_column: str = "vfov",
              sensor_height_mm: float = NUKE_SENSOR_HEIGHT_MM) -> CameraTrack:
    order, scale = _order(rotation_order), _scale(units)
    if lens_column not in ("vfov", "focal"):
        raise InputError(f'lens_column must be "vfov" or "focal", not "{lens_column}"')
    rate = resolve_rate(fps, None, file)
    if rate is None:
        raise InputError("a .chan file does not say its frame rate: give fps (--fps)", file=file)
    names = ("frame", "tx", "ty", "tz", "rx", "ry", "rz", lens_column)
    frames: list[int] = []
    values: list[list[float]] = []
    width = None
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) not in (7, 8) or (width is not None and len(parts) != width):
            raise InputError(f"expected {width or '7 or 8'} columns (frame tx ty tz rx ry rz "
                             f"[{lens_column}]), got {len(parts)}", file=file, line=number)
        width = len(parts)
        row = []
        for name, cell in zip(names, parts):
            row.append(parse_number(cell, lambda m, name=name: InputError(m, file=file, key=name, line=number)))
        frame = row[0]
        if not frame.is_integer() or frame < 0:
            raise InputError(f"frame must be a whole number >= 0, not {parts[0]}", file=file, key="frame",
                             line=number)
        if frames and int(frame) <= frames[-1]:
            raise InputError(f"frame {int(frame)} does not come after frame {frames[-1]}", file=file,
                             key="frame", line=number)
        if width == 8 and not (0 < row[7] < (180.0 if lens_column == "vfov" else math.inf)):
            raise InputError(f"{lens_column} {parts[7]} is out of range", file=file, key=lens_column,
                             line=number)
        frames.append(int(frame))
        values.append(row[1:])
    if not frames:
        raise InputError("the file has no frames", file=file)
    data = np.array(values)
    data[:, :3] *= scale
    position, ptr = chan_to_stage(data[:, :6], order)
    lens = {}
    if width == 8:
        lens["zoom"] = data[:, 6] if lens_column == "focal" else vfov_to_focal(data[:, 6], sensor_height_mm)
    try:
        start_tc = start if isinstance(start, Timecode) else Timecode.parse(str(start or "00:00:00:00"), rate)
    except TimecodeError as exc:
        raise InputError(f"start: {exc.message}", file=file) from None
    return CameraTrack(rate, start_tc, np.array(frames, dtype=np.int64), position, ptr, lens, Path(file).stem)


def vfov_to_focal(vfov_deg: NDArray, sensor_height_mm: float = NUKE_SENSOR_HEIGHT_MM) -> NDArray[np.float64]:
    return 0.5 * sensor_height_mm / np.tan(np.radians(vfov_deg) / 2.0)


def focal_to_vfov(focal_mm: NDArray, sensor_height_mm: float = NUKE_SENSOR_HEIGHT_MM) -> NDArray[np.float64]:
    return np.degrees(2.0 * np.arctan(0.5 * sensor_height_mm / np.asarray(focal_mm, dtype=float)))


def chan_text(track: CameraTrack, units: str | None = None, rotation_order: str = "ZXY",
              lens_column: str = "vfov", sensor_height_mm: float = NUKE_SENSOR_HEIGHT_MM) -> str:
    rows = stage_to_chan(track, rotation_order)
    rows[:, :3] /= _scale(units)
    if "zoom" in track.lens:
        zoom = track.lens["zoom"]
        column = zoom if lens_column == "focal" else focal_to_vfov(zoom, sensor_height_mm)
        rows = np.concatenate([rows, np.asarray(column)[:, None]], axis=1)
    return "".join(" ".join([str(int(f))] + [repr(float(v)) for v in row]) + "\n"
                   for f, row in zip(track.frames, rows))


# -- USD (optional) -----------------------------------------------------------------------------------

def _pxr(file: str):
    try:
        from pxr import Gf, Usd, UsdGeom
    except ImportError:
        raise InputError(_USD_HINT, file=file) from None
    return Gf, Usd, UsdGeom


def read_usd(path: Path, fps: RateLike | None = None, units: str | None = None, camera: str | None = None,
             ) -> CameraTrack:
    file = str(path)
    Gf, Usd, UsdGeom = _pxr(file)
    if not path.is_file():
        raise InputError("file not found", file=file)
    try:
        stage = Usd.Stage.Open(file)
    except Exception as exc:                     # pxr raises Tf.ErrorException
        raise InputError(f"cannot open the USD stage: {' '.join(str(exc).split())}", file=file) from None
    if camera is not None:
        prim = stage.GetPrimAtPath(camera)
        if not prim or not prim.IsA(UsdGeom.Camera):
            raise InputError(f"no camera at {camera}", file=file)
    else:
        cameras = [p for p in stage.Traverse() if p.IsA(UsdGeom.Camera)]
        if len(cameras) != 1:
            found = ", ".join(str(p.GetPath()) for p in cameras) or "none"
            raise InputError(f"expected one UsdGeom.Camera, found {found}: name one (camera=...)", file=file)
        prim = cameras[0]
    custom = dict(stage.GetRootLayer().customLayerData.get("motionctl", {}) or {})
    rate = resolve_rate(fps, (custom["fps"], None) if "fps" in custom else None, file)
    if rate is None:
        rate = resolve_rate(stage.GetTimeCodesPerSecond(), None, file)
    scale = _scale(units) if units is not None else float(UsdGeom.GetStageMetersPerUnit(stage))
    world = Y_UP if UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y else np.eye(3)
    cam = UsdGeom.Camera(prim)
    # The frames are the time samples of the camera's transform (its own and its parents') and focal length;
    # with none (a still camera), every frame of the stage's time range.
    samples: set[float] = set(cam.GetFocalLengthAttr().GetTimeSamples())
    p = prim
    while p and not p.IsPseudoRoot():
        if p.IsA(UsdGeom.Xformable):
            samples.update(UsdGeom.Xformable(p).GetTimeSamples())
        p = p.GetParent()
    if samples:
        times = np.array(sorted(samples))
    elif stage.HasAuthoredTimeCodeRange():
        times = np.arange(math.ceil(stage.GetStartTimeCode()), math.floor(stage.GetEndTimeCode()) + 1.0)
    else:
        times = np.zeros(1)
    if np.any(np.abs(times - np.round(times)) > 1e-6) or times[0] < 0:
        raise InputError("time codes must be whole frame numbers >= 0", file=file)
    cache = UsdGeom.XformCache()
    position, rotation, zoom, focus, iris = [], [], [], [], []
    attrs = {"focus": cam.GetFocusDistanceAttr(), "iris": cam.GetFStopAttr()}
    for t in times:
        code = Usd.TimeCode(float(t))
        cache.SetTime(code)
        m = np.array(cache.GetLocalToWorldTransform(prim), dtype=float)     # row vectors: translation row 3
        u, _, vt = np.linalg.svd(m[:3, :3].T)                               # drop any scale
        rotation.append(world @ (u @ vt) @ Y_UP.T)
        position.append(world @ m[3, :3] * scale)
        zoom.append(float(cam.GetFocalLengthAttr().Get(code)) * scale * 100.0)    # tenths of a unit -> mm
        focus.append(float(attrs["focus"].Get(code) or 0.0) * scale)
        iris.append(float(attrs["iris"].Get(code) or 0.0))
    lens = {"zoom": np.array(zoom)}
    if attrs["focus"].HasAuthoredValue() and min(focus) > 0:
        lens["focus"] = np.array(focus)
    if attrs["iris"].HasAuthoredValue() and min(iris) > 0:
        lens["iris"] = np.array(iris)
    start = Timecode.parse(str(custom.get("start", "00:00:00:00")), rate)
    return CameraTrack.from_poses(rate, start, np.round(times).astype(np.int64),
                                  _homogeneous(np.array(rotation), np.array(position)), lens,
                                  str(custom.get("name") or prim.GetName()))


def _homogeneous(rotation: NDArray, position: NDArray) -> NDArray[np.float64]:
    from motionctl.rotations import homogeneous
    return homogeneous(rotation, position)


def write_usd(track: CameraTrack, path: Path) -> Path:
    file = str(path)
    Gf, Usd, UsdGeom = _pxr(file)
    if path.suffix.lower() == ".usdz":
        raise InputError("cannot write .usdz (a package): write .usda or .usdc", file=file)
    unit = 0.01                          # centimetres, USD's default: lens values in tenths of a unit are mm
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        stage = Usd.Stage.CreateNew(str(tmp))
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, unit)
        stage.SetTimeCodesPerSecond(float(track.fps.fps))
        stage.SetFramesPerSecond(float(track.fps.fps))
        stage.SetStartTimeCode(float(track.frames[0]))
        stage.SetEndTimeCode(float(track.frames[-1]))
        stage.GetRootLayer().customLayerData = {
            "motionctl": {"fps": track.fps.label, "start": track.start.label, "name": track.name}}
        cam = UsdGeom.Camera.Define(stage, "/camera")
        stage.SetDefaultPrim(cam.GetPrim())
        op = cam.AddTransformOp()
        local = Y_UP.T @ track.rotations @ Y_UP
        position = track.position @ Y_UP / unit
        for i, f in enumerate(track.frames):
            code = Usd.TimeCode(float(f))
            m = np.eye(4)
            m[:3, :3] = local[i].T                               # USD matrices act on row vectors
            m[3, :3] = position[i]
            op.Set(Gf.Matrix4d(*[float(v) for v in m.ravel()]), code)
            if "zoom" in track.lens:
                cam.GetFocalLengthAttr().Set(float(track.lens["zoom"][i]), code)
            if "focus" in track.lens:
                cam.GetFocusDistanceAttr().Set(float(track.lens["focus"][i] / unit), code)
            if "iris" in track.lens:
                cam.GetFStopAttr().Set(float(track.lens["iris"][i]), code)
        stage.GetRootLayer().Save()
        os.replace(tmp, path)
    except InputError:
        raise
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the USD file: {' '.join(str(exc).split())}", file=file) from None
    return path
