"""Move files (``moves/*.toml``) -> a validated, immutable :class:`Move`.

A move is keyframes in frames at an exact frame rate, starting at a timecode.  Each key sets the camera
(position plus a look-at target or pan/tilt/roll), or joint positions, and optionally lens values.
Every key describes the whole state: what a key does not name holds the previous key's value.
Limits are *not* checked here (a key beyond a joint limit is a legal file describing an illegal move,
which ``motionctl check`` reports); names, units, types and ordering are.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import SpecError, TimecodeError
from motionctl.rotations import frozen, look_at_ptr, ptr_to_matrix
from motionctl.spec.rig import Rig, load_rig
from motionctl.spec.source import Source, Table, check_number, read_toml, suggest
from motionctl.spec.stage import Stage, load_stage
from motionctl.timecode import FrameRate, Timecode

#: A look-at target closer than this to vertical above/below the camera leaves pan undefined.
MAX_LOOK_AT_TILT_DEG = 89.0
CAMERA_KEYS = ("position", "look_at", "pan", "tilt", "roll")


@dataclass(frozen=True, eq=False)
class CameraKey:
    """Camera pose of a key in the stage frame: nodal point position and rotation (radians)."""

    position: NDArray[np.float64]
    pan: float
    tilt: float
    roll: float
    look_at: NDArray[np.float64] | None = None   # kept so the path can track the target itself

    @property
    def rotation(self) -> NDArray[np.float64]:
        return ptr_to_matrix(self.pan, self.tilt, self.roll)


@dataclass(frozen=True, eq=False)
class Key:
    index: int
    frame: int
    camera: CameraKey | None = None
    joints: Mapping[str, float] = field(default_factory=dict)   # axis -> SI value
    lens: Mapping[str, float] = field(default_factory=dict)     # lens axis -> physical value
    hold: int = 0                                               # extra frames to stay at this key
    label: str = ""
    line: int | None = None


@dataclass(frozen=True, eq=False)
class Move:
    name: str
    title: str
    file: str
    rig_path: Path
    stage_path: Path | None
    rate: FrameRate
    start: Timecode
    keys: tuple[Key, ...]

    @property
    def last_frame(self) -> int:
        """The final frame of the move (the last key's frame plus its hold)."""
        return self.keys[-1].frame + self.keys[-1].hold

    @property
    def duration_s(self) -> float:
        return float(self.last_frame * self.rate.frame_duration)

    def timecode_at(self, frame: int) -> str:
        """Label of a move frame (frame 0 is the start timecode)."""
        return (self.start + frame).label


@dataclass(frozen=True, eq=False)
class Scene:
    """A move together with the rig and stage it names: what the planner and ``check`` work on."""

    move: Move
    rig: Rig
    stage: Stage | None


def load_scene(path: Path | str) -> Scene:
    """Load a move file and the rig and stage files it points to, cross-checked."""
    doc, source = read_toml(path)
    top = Table(doc, source)
    rig = load_rig(_referenced(top, "rig", Path(path), required=True))
    stage_path = _referenced(top, "stage", Path(path))
    stage = load_stage(stage_path) if stage_path else None
    return Scene(move_from_toml(doc, source, Path(path), rig), rig, stage)


def _referenced(top: Table, key: str, path: Path, *, required: bool = False) -> Path | None:
    """The rig or stage file a move names, relative to the move; missing, it is an error on that key."""
    relative = top.string(key, required=required)
    if relative is None:
        return None
    target = path.parent / relative
    if not os.path.exists(target):
        raise top.error(key, f'{key} file "{target}" not found')
    return target


def load_move(path: Path | str, rig: Rig | None = None) -> Move:
    """Load a move; axis names are checked against ``rig`` (loaded from the move's ``rig`` key if None)."""
    doc, source = read_toml(path)
    if rig is None:
        rig = load_rig(_referenced(Table(doc, source), "rig", Path(path), required=True))
    return move_from_toml(doc, source, Path(path), rig)


def move_from_toml(doc: dict, source: Source, path: Path, rig: Rig) -> Move:
    top = Table(doc, source)
    name = top.string("name", required=True)
    title = top.string("title", name)
    top.string("description", "")
    rig_rel = top.string("rig", required=True)
    stage_rel = top.string("stage")
    fps_value = top.raw("fps")
    if fps_value is None:
        raise top.error(None, 'missing required key "fps"')
    try:
        rate = FrameRate.parse(fps_value)
    except TimecodeError as exc:
        raise top.error("fps", exc.message) from None
    start_label = top.string("start", "00:00:00:00")
    try:
        start = Timecode.parse(start_label, rate)
    except TimecodeError as exc:
        raise top.error("start", exc.message) from None
    key_tables = top.tables("key", required=True)
    if not key_tables:
        raise top.error("key", "a move needs at least one [[key]]")
    keys = tuple(_read_key(i, kt, rig) for i, kt in enumerate(key_tables))
    top.finish()
    if keys[0].frame != 0:
        raise key_tables[0].error("frame", f"the first key must be at frame 0 (the start timecode), "
                                  f"not {keys[0].frame}")
    for prev, key, table in zip(keys, keys[1:], key_tables[1:]):
        end = prev.frame + prev.hold
        if key.frame == prev.frame:
            raise table.error("frame", f"frame {key.frame} is keyed twice (key {prev.index} and key {key.index})")
        if key.frame < prev.frame:
            raise table.error("frame", f"keys out of order: frame {key.frame} comes after frame {prev.frame}")
        if key.frame <= end:
            raise table.error("frame", f"frame {key.frame} falls inside the hold of the key at frame "
                              f"{prev.frame} (held until {end})")
    if keys[-1].frame + keys[-1].hold == 0:
        raise top.error("key", "the move has no duration: add a second key or a hold")
    if keys[-1].frame + keys[-1].hold >= rate.frames_per_day:   # frames count from the start, in order
        name = "frame" if keys[-1].frame >= rate.frames_per_day else "hold"
        raise key_tables[-1].error(name, f"the move must be shorter than 24 hours "
                                   f"({rate.frames_per_day} frames at {rate})")
    return Move(name, title or name, source.file, path.parent / rig_rel,
                path.parent / stage_rel if stage_rel else None, rate, start, keys)


def _read_key(index: int, table: Table, rig: Rig) -> Key:
    frame = table.integer("frame", required=True, minimum=0)
    hold = table.integer("hold", 0, minimum=0)
    label = table.string("label", "") or ""
    camera = None
    cam_table = table.table("camera", required=False)
    if cam_table is not None:
        camera = _read_camera(cam_table)
    joints: dict[str, float] = {}
    jt = table.table("joints", required=False)
    axis_names = [a.name for a in rig.axes]
    if jt is not None:
        for key, value in jt.items():
            if key not in axis_names:
                raise jt.error(key, f'unknown axis "{key}" for rig "{rig.name}"{suggest(key, axis_names)}')
            number = check_number(value, jt.error, key)
            axis = rig.axes[axis_names.index(key)]
            joints[key] = number if axis.linear else math.radians(number)
            if camera is not None and key not in rig.follow:
                raise jt.error(key, f'a camera key can only pin follow axes ({", ".join(rig.follow) or "none"}'
                               f' on this rig); "{key}" is solved from the camera pose')
    lens: dict[str, float] = {}
    lt = table.table("lens", required=False)
    lens_names = [l.name for l in rig.lens]
    if lt is not None:
        for key, value in lt.items():
            if key not in lens_names:
                raise lt.error(key, f'unknown lens axis "{key}" for rig "{rig.name}"{suggest(key, lens_names)}')
            lens[key] = check_number(value, lt.error, key)
    table.finish()
    if index == 0 and camera is None and set(joints) != set(axis_names):
        missing = [n for n in axis_names if n not in joints]
        raise table.error("camera", f"the first key sets the whole pose: give a camera pose or every joint "
                          f'(missing "{missing[0]}")')
    return Key(index, frame, camera, MappingProxyType(joints), MappingProxyType(lens), hold, label,
               table.source.line_of(table.path))


def _read_camera(table: Table) -> CameraKey:
    table.finish(allowed=CAMERA_KEYS)   # first, so a misspelt look_at is named as such
    position = np.array(table.vector("position", 3, required=True))
    target = table.vector("look_at", 3)
    has_angles = table.has("pan") or table.has("tilt")
    roll = math.radians(table.number("roll", 0.0))
    if target is not None:
        if has_angles:
            raise table.error("look_at", "give either look_at or pan/tilt, not both")
        if math.dist(target, position) < 1e-3:      # math.dist: no overflow warning for huge values
            raise table.error("look_at", "the look-at target is at the camera position")
        with np.errstate(over="ignore"):            # target - position beyond float range: angles stay finite
            pan, tilt = look_at_ptr(position, np.array(target))
        if abs(math.degrees(tilt)) > MAX_LOOK_AT_TILT_DEG:
            raise table.error("look_at", "the target is straight above or below the camera, so pan is "
                              "undefined: give pan/tilt/roll instead")
        table.finish()
        return CameraKey(frozen(position), float(pan), float(tilt), roll, frozen(np.array(target)))
    if not has_angles:
        raise table.error(None, "a camera needs look_at = [x, y, z] or pan/tilt/roll (degrees)")
    pan = math.radians(table.number("pan", 0.0))
    tilt = table.number("tilt", 0.0, minimum=-90.0, maximum=90.0)
    table.finish()
    return CameraKey(frozen(position), pan, math.radians(tilt), roll)


def check_paths_exist(move: Move) -> None:
    """Raise a SpecError if the rig or stage the move names is missing (used by quick listings)."""
    for label, p in (("rig", move.rig_path), ("stage", move.stage_path)):
        if p is not None and not p.is_file():
            raise SpecError(f"{label} file {p} not found", file=move.file, key=label)
