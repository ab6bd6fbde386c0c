"""Camera tracks: the camera pose at every frame, in and out of motionctl.

A :class:`CameraTrack` is what a virtual camera, a matchmove or a take *is* to the rest of a production:
one row per frame with the nodal-point position (metres) and pan/tilt/roll (degrees) in the stage frame
(Z up, +Y to the wall, intrinsic Z-X-Y; see ``docs/formats.md``), optionally the lens (focus in metres,
iris in f-stops, zoom in mm).  Frame numbers count from ``start``, the timecode of frame 0.

* :func:`read_track` / :func:`write_track`: CSV, JSON, Nuke ``.chan`` and USD (the file formats and
  their axis conventions are in :mod:`motionctl.vcam.tracks_formats` and :mod:`~motionctl.vcam.tracks_dcc`;
  :mod:`~motionctl.vcam.track_files` picks between them).
* :func:`track_from_plan`: the planned camera at every frame instant (``planner.export.frame_track``).
* :func:`track_from_take`: the camera the rig *actually* carried: FK of the measured joints.
* :func:`~motionctl.vcam.track_import.import_track`: a move file whose planned path follows the track
  (:mod:`motionctl.vcam.track_import`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from motionctl.errors import InputError
from motionctl.rotations import frozen, matrix_to_ptr, ptr_to_matrix
from motionctl.timecode import FrameRate, RateLike, Timecode

LENS_AXES = ("focus", "iris", "zoom")                   # metres, f-stop, mm
CAMERA_COLUMNS = ("x_m", "y_m", "z_m", "pan_deg", "tilt_deg", "roll_deg")
#: Columns ``follow.<axis>``: a rig's follow axis per frame (see :attr:`CameraTrack.follow`).
FOLLOW_PREFIX = "follow."
#: Default fit tolerances of the lens axes (focus m, iris f-stops, zoom mm).
LENS_TOLERANCE = MappingProxyType({"focus": 0.001, "iris": 0.01, "zoom": 0.01})
#: Below this speed (m/s, deg/s) the source counts as at rest at its first / last frame.
REST_SPEED = (1e-3, 0.1)


@dataclass(frozen=True, eq=False)
class TrackRow:
    """One frame of a track (a convenience view; the track itself holds columns)."""

    frame: int
    position: NDArray[np.float64]
    pan: float
    tilt: float
    roll: float
    lens: Mapping[str, float]
    follow: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class CameraTrack:
    """Camera pose per frame: ``frames`` (n,) strictly increasing, ``position`` (n, 3) m, ``ptr`` (n, 3) deg.

    ``lens`` maps ``focus``/``iris``/``zoom`` to (n,) arrays; an axis is present for every row or not at
    all.  Pan and roll may be unwrapped beyond +-180 and tilt may leave +-90 (other tools write such
    angles); :attr:`rotations` is what they mean.
    """

    fps: FrameRate
    start: Timecode
    frames: NDArray[np.int64]
    position: NDArray[np.float64]
    ptr: NDArray[np.float64]
    lens: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)
    name: str = ""
    #: Rig axis -> its value per frame in file units (m, deg): the follow axes (a track under an arm) of the
    #: move or take the track came from.  The camera alone leaves them open (an arm on a track reaches
    #: one pose from many track positions); an import onto the same rig keeps them as they were.
    follow: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rate = FrameRate.parse(self.fps)
        start = self.start if isinstance(self.start, Timecode) else Timecode.parse(str(self.start), rate)
        if start.rate != rate:
            start = Timecode(start.frame, rate)
        frames = np.asarray(self.frames)
        if frames.ndim != 1 or (frames.size and not np.issubdtype(frames.dtype, np.integer)):
            raise InputError("track frames must be a 1-D array of whole frame numbers")
        frames = frames.astype(np.int64)
        n = len(frames)
        if n == 0:
            raise InputError("a camera track needs at least one frame")
        if frames[0] < 0 or np.any(np.diff(frames) <= 0):
            raise InputError("track frames must be >= 0 and strictly increasing")
        position = np.asarray(self.position, dtype=float)
        ptr = np.asarray(self.ptr, dtype=float)
        if position.shape != (n, 3) or ptr.shape != (n, 3):
            raise InputError(f"a track of {n} frames needs positions and pan/tilt/roll of shape ({n}, 3)")
        lens = {}
        for key, values in self.lens.items():
            if key not in LENS_AXES:
                raise InputError(f'unknown lens axis "{key}" (known: {", ".join(LENS_AXES)})')
            lens[key] = frozen(np.asarray(values, dtype=float))
            if lens[key].shape != (n,):
                raise InputError(f"lens axis {key} needs one value per frame ({n})")
        follow = {}
        for key, values in self.follow.items():
            if not key or not isinstance(key, str):
                raise InputError(f"a follow axis needs a name, not {key!r}")
            follow[key] = frozen(np.asarray(values, dtype=float))
            if follow[key].shape != (n,):
                raise InputError(f"follow axis {key} needs one value per frame ({n})")
        if not all(np.all(np.isfinite(a)) for a in (position, ptr, *lens.values(), *follow.values())):
            raise InputError("track values must be finite numbers")
        object.__setattr__(self, "follow", MappingProxyType(follow))
        object.__setattr__(self, "fps", rate)
        object.__setattr__(self, "start", start)
        frames.flags.writeable = False
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "position", frozen(position))
        object.__setattr__(self, "ptr", frozen(ptr))
        object.__setattr__(self, "lens", MappingProxyType({k: lens[k] for k in LENS_AXES if k in lens}))

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def pan(self) -> NDArray[np.float64]:
        return self.ptr[:, 0]

    @property
    def tilt(self) -> NDArray[np.float64]:
        return self.ptr[:, 1]

    @property
    def roll(self) -> NDArray[np.float64]:
        return self.ptr[:, 2]

    @property
    def rotations(self) -> NDArray[np.float64]:
        """Camera rotations (n, 3, 3) in the stage frame."""
        return ptr_to_matrix(*np.radians(self.ptr).T)

    @property
    def times_s(self) -> NDArray[np.float64]:
        """Seconds since frame 0 (the start timecode) of every row."""
        return self.frames * float(self.fps.frame_duration)

    @property
    def timecodes(self) -> list[str]:
        return [(self.start + int(f)).label for f in self.frames]

    def rows(self) -> list[TrackRow]:
        return [TrackRow(int(f), self.position[i], *map(float, self.ptr[i]),
                         {k: float(v[i]) for k, v in self.lens.items()},
                         {k: float(v[i]) for k, v in self.follow.items()}) for i, f in enumerate(self.frames)]

    @classmethod
    def from_rows(cls, fps: RateLike, start: Timecode | str, rows: Iterable[TrackRow], name: str = "",
                  ) -> CameraTrack:
        rows = list(rows)
        keys = [k for k in LENS_AXES if rows and k in rows[0].lens]
        return cls(FrameRate.parse(fps), start, np.array([r.frame for r in rows], dtype=np.int64),
                   np.array([r.position for r in rows], dtype=float).reshape(-1, 3),
                   np.array([[r.pan, r.tilt, r.roll] for r in rows], dtype=float).reshape(-1, 3),
                   {k: np.array([r.lens[k] for r in rows]) for k in keys}, name,
                   {k: np.array([r.follow[k] for r in rows]) for k in (rows[0].follow if rows else ())})

    @classmethod
    def from_poses(cls, fps: RateLike, start: Timecode | str, frames: ArrayLike, poses: ArrayLike,
                   lens: Mapping[str, ArrayLike] | None = None, name: str = "") -> CameraTrack:
        """From camera poses (n, 4, 4): pan and roll are unwrapped so the angles are continuous."""
        poses = np.asarray(poses, dtype=float)
        return cls(FrameRate.parse(fps), start, np.asarray(frames, dtype=np.int64), poses[:, :3, 3],
                   continuous_ptr(poses[:, :3, :3]), dict(lens or {}), name)


def continuous_ptr(rotations: NDArray[np.float64], hint_deg: NDArray[np.float64] | None = None,
                   ) -> NDArray[np.float64]:
    """Pan/tilt/roll in degrees (tilt within +-90) of rotations (n, 3, 3), pan and roll unwrapped.

    With ``hint_deg`` (n, 3) every pan and roll is instead moved by whole turns to the one nearest the hint
    (how a reader keeps the angles a file was written with).
    """
    ptr = matrix_to_ptr(rotations)
    if hint_deg is None:
        ptr[:, 0] = np.unwrap(ptr[:, 0])
        ptr[:, 2] = np.unwrap(ptr[:, 2])
        return np.degrees(ptr)
    out = np.degrees(ptr)
    for c in (0, 2):
        out[:, c] += 360.0 * np.round((hint_deg[:, c] - out[:, c]) / 360.0)
    return out


# -- reading and writing files -------------------------------------------------------------------------

def track_format(path: Path | str, fmt: str | None = None) -> str:
    """``csv``, ``json``, ``chan`` or ``usd``: ``fmt`` if given, else from the file name's extension."""
    from motionctl.vcam.track_files import FORMATS, format_of
    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        fmt = {"usda": "usd", "usdc": "usd", "usdz": "usd"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise InputError(f'unknown camera track format "{fmt}" (known: {", ".join(FORMATS)})')
        return fmt
    return format_of(path)


def read_track(path: Path | str, fmt: str | None = None, fps: RateLike | None = None,
               units: str | None = None, **options: Any) -> CameraTrack:
    """Read a camera track; the format comes from the extension unless ``fmt`` is given.

    ``fps`` is needed where the file does not say (``.chan``; CSV without ``# fps=``); where both say, they
    must agree.  ``units`` (``m``, ``cm``, ``mm``) scales ``.chan`` and USD positions; ``None`` means
    metres for ``.chan`` and the stage's ``metersPerUnit`` for USD.  Format options: ``start`` (timecode of
    frame 0 for ``.chan``), ``rotation_order`` (``.chan``, default Nuke's ``ZXY``), ``lens_column``
    (``vfov`` or ``focal``), ``sensor_height_mm`` (for ``vfov``), ``camera`` (USD prim path).
    Every problem is an :class:`InputError` naming the file and, where known, the line.
    """
    from motionctl.vcam import track_files
    return track_files.read(Path(path), track_format(path, fmt), fps, units, **options)


def write_track(track: CameraTrack, path: Path | str, fmt: str | None = None, **options: Any) -> Path:
    """Write ``track`` atomically in the format of the extension (or ``fmt``); options as in
    :func:`read_track` (``.chan``: ``units``, ``rotation_order``, ``lens_column``, ``sensor_height_mm``)."""
    from motionctl.vcam import track_files
    return track_files.write(track, Path(path), track_format(path, fmt), **options)


# -- tracks from plans and takes ---------------------------------------------------------------------

def track_from_plan(plan: Any) -> CameraTrack:
    """The planned camera at every frame instant (``planner.export.frame_track``), lens included."""
    from motionctl.planner.export import frame_track
    doc = frame_track(plan)
    rows = doc["frames"]
    lens_names = [l.name for l in plan.rig.lens if l.name in LENS_AXES]
    follow = {k[len(FOLLOW_PREFIX):]: np.array([r[k] for r in rows]) for k in rows[0] if k.startswith(FOLLOW_PREFIX)}
    return CameraTrack(plan.move.rate, plan.move.start, np.array([r["frame"] for r in rows], dtype=np.int64),
                       np.array([[r["x_m"], r["y_m"], r["z_m"]] for r in rows]),
                       np.array([[r["pan_deg"], r["tilt_deg"], r["roll_deg"]] for r in rows]),
                       {k: np.array([r[k] for r in rows]) for k in lens_names}, plan.move.name, follow)


def take_joints(take: Any, rig: Any) -> tuple[NDArray[np.int64], NDArray[np.float64], dict[str, NDArray[np.float64]]]:
    """(frames, measured joints (F, axes), measured lens values by axis) of a take, one sample per frame.

    The sample of frame ``f`` is the first tick of frame ``f`` while the state is ``running``; lens values
    are the measured lens columns (physical units) where the take has them.
    """
    file = str(Path(take.path) / "samples.csv")
    columns = list(take.columns)
    needed = ["state", "frame"] + [f"meas_{a}" for a in rig.axis_names]
    for name in needed:
        if name not in columns:
            raise InputError(f'the take has no "{name}" column (is it a take of rig "{rig.name}"?)',
                             file=file)
    state, frame_col = columns.index("state"), columns.index("frame")
    first: dict[int, int] = {}
    for i, row in enumerate(take.rows):
        if row[state] == "running":
            try:
                f = int(row[frame_col])
            except ValueError:
                raise InputError(f'bad frame number "{row[frame_col]}"', file=file, line=i + 2) from None
            first.setdefault(f, i)
    if not first:
        raise InputError("the take has no samples in the running state", file=file)
    frames = np.array(sorted(first), dtype=np.int64)
    picked = [first[int(f)] for f in frames]

    def values(name: str) -> NDArray[np.float64]:
        index = columns.index(name)
        out = np.empty(len(picked))
        for j, i in enumerate(picked):
            cell = take.rows[i][index]
            try:
                out[j] = float(cell) if cell else math.nan
            except ValueError:
                raise InputError(f'{name}: "{cell}" is not a number', file=file, line=i + 2) from None
        return out

    q = np.stack([values(f"meas_{a}") for a in rig.axis_names], axis=1)
    bad = np.flatnonzero(~np.all(np.isfinite(q), axis=1))
    if len(bad):
        raise InputError(f"no measured joint positions at frame {frames[bad[0]]}: the take has no feedback",
                         file=file, line=picked[bad[0]] + 2)
    lens = {}
    for axis in rig.lens:
        if f"meas_{axis.name}" in columns:
            v = values(f"meas_{axis.name}")
            if np.all(np.isfinite(v)):
                lens[axis.name] = v
    return frames, q, lens


def track_from_take(take: Any, rig: Any) -> CameraTrack:
    """The camera the rig actually carried in a take: FK of the measured joints, one sample per frame."""
    from motionctl.kinematics import Kinematics
    frames, q, measured_lens = take_joints(take, rig)
    lens = {name: v for name, v in measured_lens.items() if name in LENS_AXES}
    meta = take.meta
    if "fps" not in meta:
        raise InputError('the take\'s meta.json has no "fps"', file=str(Path(take.path) / "meta.json"))
    rate = FrameRate.parse(meta["fps"])
    start = Timecode.parse(str(meta.get("start_timecode", "00:00:00:00")), rate)
    track = CameraTrack.from_poses(rate, start, frames, Kinematics(rig).camera(q), lens, str(meta.get("move", "")))
    return replace(track, follow=follow_columns(rig, q))


def follow_columns(rig: Any, q: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    """The rig's follow axes (file units) of joint rows ``q``, for a track's ``follow``."""
    axes = [rig.axes[rig.axis_index(name)] for name in rig.follow]
    return {a.name: np.array([a.to_file(float(v)) for v in q[:, rig.axis_index(a.name)]]) for a in axes}
