"""Camera tracks into moves: a move file whose planned path follows a :class:`CameraTrack`.

Import.  Keys are camera keys with pan/tilt/roll.  Mode ``fit`` evaluates the planner's *own* channels
(``planner.channels``: quintic rest-to-rest position, rotation-vector orientation and lens channels, split
at holds) through a candidate set of keys and inserts keys where the deviation from the track is largest
until every frame is within tolerance.  Mode ``keys`` keeps every frame; on a rig with follow axes (a
track under an arm) it pins them at every key to what the planner chooses at the fitted keys, because a
follow-axis search at every frame picks values a few millimetres apart that are huge speeds one frame
apart.  Runs of frames the planner cannot tell apart become one key with a ``hold``.

Rest: the planner starts and ends every move at rest (zero velocity and acceleration).  A CG camera that
is already moving at its first or last frame can only be matched *at the frame instants*, and the rig
then has to get up to speed within the first frame; ``motionctl check`` says whether it can.
:class:`TrackImport` notes when the source is not at rest at an end.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from motionctl.errors import InputError, PlanningError
from motionctl.rotations import ptr_to_matrix, rotation_angle
from motionctl.vcam.tracks import FOLLOW_PREFIX, LENS_TOLERANCE, REST_SPEED, CameraTrack, continuous_ptr


@dataclass(frozen=True)
class TrackImport:
    """A move made from a track, and how closely its interpolated path follows the track."""

    text: str                              # the move file (TOML)
    mode: str
    key_frames: tuple[int, ...]            # move frames of the keys (a held key: its first frame)
    max_position_error_m: float            # interpolated path vs. every track frame (without planner IK)
    max_angle_error_deg: float
    max_lens_error: Mapping[str, float]
    notes: tuple[str, ...] = ()


def track_to_move(track: CameraTrack, rig_path: Path | str, stage_path: Path | str | None = None, *,
                  mode: str = "keys", tolerance_m: float = 0.0005, tolerance_deg: float = 0.05,
                  name: str | None = None, out_path: Path | str | None = None,
                  tolerance_lens: Mapping[str, float] | None = None) -> str:
    """TOML text of a move following ``track``; see :func:`import_track` (which also reports the errors)."""
    return import_track(track, rig_path, stage_path, mode=mode, tolerance_m=tolerance_m,
                        tolerance_deg=tolerance_deg, name=name, out_path=out_path,
                        tolerance_lens=tolerance_lens).text


def import_track(track: CameraTrack, rig_path: Path | str, stage_path: Path | str | None = None, *,
                 mode: str = "keys", tolerance_m: float = 0.0005, tolerance_deg: float = 0.05,
                 name: str | None = None, out_path: Path | str | None = None,
                 tolerance_lens: Mapping[str, float] | None = None) -> TrackImport:
    """Turn a track into a move of camera keys (pan/tilt/roll) on the rig at ``rig_path``.

    ``mode="keys"``: every frame is a key (runs of identical frames become one key with a ``hold``).
    ``mode="fit"``: a subset of frames, chosen so that the planner's interpolation through them (its own
    quintic rest-to-rest position, orientation and lens channels, evaluated here) stays within
    ``tolerance_m`` / ``tolerance_deg`` / ``tolerance_lens`` of every track frame, less the planner's IK
    tracking allowance.  Keys are inserted where the error is largest until it is within tolerance.
    Rig and stage paths are written relative to ``out_path``'s directory (as given if ``out_path`` is
    None).  The move starts at the track's first frame: move frame 0 is track frame ``frames[0]``.
    """
    from motionctl.spec import load_rig
    if mode not in ("keys", "fit"):
        raise InputError(f'import mode must be "keys" or "fit", not "{mode}"')
    if len(track) < 2:
        raise InputError("a track of one frame cannot become a move: a move needs a duration")
    if not (tolerance_m > 0 and tolerance_deg > 0):
        raise InputError("the fit tolerances must be > 0")
    if track.frames[-1] - track.frames[0] >= track.fps.frames_per_day:
        raise InputError(f"the track is longer than 24 hours at {track.fps}: split it")
    rig = load_rig(rig_path)
    rig_lens = [l.name for l in rig.lens]
    notes = [f'the track\'s {k} is dropped: rig "{rig.name}" has no {k} axis'
             for k in track.lens if k not in rig_lens]
    # The rig's follow axes, where the track carries them (motionctl's own export of a move or take on
    # this rig): fitted and pinned to what they were.  The camera alone leaves them open, and the planner's
    # choice at other keys than the source move's moves them differently (wiggle that the arm then makes
    # up for, at many times the source's joint speeds).
    carried = {f: rig.axes[rig.axis_index(f)].linear for f in rig.follow} if rig.follow else {}
    if not all(f in track.follow for f in carried):
        carried = {}
    fit = _Fit(track, [k for k in track.lens if k in rig_lens], tolerance_m, tolerance_deg, tolerance_lens,
               carried)
    kept, (err_p, err_a, err_l) = fit.select(mode)
    keys = fit.keys(kept)
    name = name or track.name or "imported"
    head = [name, _relative(rig_path, out_path), _relative(stage_path, out_path), track.fps,
            track.start + int(track.frames[0])]
    pins: dict[str, NDArray[np.float64]] = {}
    if carried:
        pins = fit.pins(keys)
        notes.append(f"follow axes ({', '.join(carried)}) pinned at every key to the track's own "
                     f"({', '.join(FOLLOW_PREFIX + f for f in carried)})")
    elif mode == "keys" and rig.follow:
        # Dense keys would each search the follow axes (e.g. a track under an arm) on their own, and tiny
        # differences in that choice are large speeds one frame apart.  Pin them instead to what the planner
        # makes of the fitted keys: its choice there, interpolated by its own follow channel.
        pins, note = _follow_pins(rig, fit, head, out_path)
        notes.append(note)
    max_l = {k: float(err_l[:, j].max()) for j, k in enumerate(fit.lens_names)}
    notes += _rest_notes(track, fit.times)
    header = [f"Imported camera track ({len(track)} frames, mode {mode}): {len(keys)} keys.",
              f"Largest deviation of the interpolated path from the track: {err_p.max() * 1000:.4f} mm, "
              f"{err_a.max():.5f} deg" + "".join(f", {k} {v:.4g}" for k, v in max_l.items())
              + (f" (tolerance {tolerance_m * 1000:g} mm, {tolerance_deg:g} deg)." if mode == "fit" else "."),
              "The planner starts and ends every move at rest (zero velocity and acceleration).", *notes]
    return TrackImport(fit.text(head, keys, header, pins), mode, tuple(int(fit.frames[i]) for i, _ in keys),
                       float(err_p.max()), float(err_a.max()), MappingProxyType(max_l), tuple(notes))


class _Fit:
    """A track as camera keys: the values the file will hold, and the planner's channels through a subset."""

    def __init__(self, track: CameraTrack, lens_names: list[str], tolerance_m: float, tolerance_deg: float,
                 tolerance_lens: Mapping[str, float] | None, follow: Mapping[str, bool] | None = None) -> None:
        """``follow``: the rig's follow axes the track carries (name -> linear), fitted like the lens and
        pinned at every key to the track's values."""
        self.track = track
        self.lens_names = lens_names
        self.follow_names = list(follow or {})
        self.frames = track.frames - track.frames[0]
        self.times = self.frames * float(track.fps.frame_duration)      # as the planner times its keys
        # What the file will hold (repr round-trips floats) and what the loader makes of it.
        self.ptr = _key_angles(track)
        self.rotations = ptr_to_matrix(*[np.array([math.radians(a) for a in col]) for col in self.ptr.T])
        # Lens axes, then follow axes: channels of the planner's own kind, each with its tolerance.
        columns = [track.lens[k] for k in lens_names] + [track.follow[k] for k in self.follow_names]
        self.lens = np.stack(columns, axis=1) if columns else np.zeros((len(track), 0))
        # Rows the planner cannot tell apart (within its IK tolerance) from the first row of their run are a
        # hold: their keys take that row's values, so the channels rest exactly where the source rests.
        self.anchor = _hold_anchors(track.position, self.rotations, self.lens)
        self.same = self.anchor[1:] == self.anchor[:-1]
        lens_tolerance = {**LENS_TOLERANCE, **(tolerance_lens or {})}
        fit_m, fit_deg = _fit_tolerances(tolerance_m, tolerance_deg)
        # Position alone would admit wiggle: a spline through unevenly spaced keys can stay within a
        # millimetre while its speed swings (and the joints' with it).  So at every frame the fitted
        # channels may be faster than the channels through every row (the frame and its neighbours) by less
        # than the tolerance per frame; slower is allowed (smoothing jitter).
        dt = float(track.fps.frame_duration)
        self.tolerances = [fit_m, fit_deg, *(float(lens_tolerance[k]) for k in lens_names),
                           *(fit_m if linear else fit_deg for linear in (follow or {}).values()),
                           tolerance_m / dt, tolerance_deg / dt]
        self._reference: tuple[NDArray, NDArray] | None = None

    def errors(self, kept: NDArray[np.bool_]) -> tuple[NDArray, NDArray, NDArray]:
        """Position, angle and lens errors (no rates: no reference channels to build)."""
        a = self.anchor
        return _interpolation_errors(self.times, self.frames, kept,
                                     (self.track.position[a], self.rotations[a], self.lens[a]),
                                     (self.track.position, self.rotations, self.lens, None))[:3]

    def _errors(self, kept: NDArray[np.bool_]) -> tuple[NDArray, ...]:
        """Position, angle, lens errors, and speed and turn-rate errors against the planner's channels
        through every row (what ``keys`` mode gives)."""
        a = self.anchor
        if self._reference is None:
            every = np.ones(len(self.track), dtype=bool)
            self._reference = _interpolation_errors(self.times, self.frames, every, (self.track.position[a],
                                                    self.rotations[a], self.lens[a]), None)[3]
        return _interpolation_errors(self.times, self.frames, kept,
                                     (self.track.position[a], self.rotations[a], self.lens[a]),
                                     (self.track.position, self.rotations, self.lens, self._reference))

    def select(self, mode: str) -> tuple[NDArray[np.bool_], tuple[NDArray, NDArray, NDArray]]:
        """Kept rows (every row, or a fit) and the errors of the channels through them."""
        kept = np.ones(len(self.track), dtype=bool)
        if mode == "keys":
            return kept, self.errors(kept)
        kept[1:-1] = False
        kept[:-1] |= self.same
        kept[1:] |= self.same
        kept |= _turn_guard(self.rotations)
        while True:
            p, a, l, v, w = self._errors(kept)
            scores = np.max(np.column_stack([p, a, l, v, w]) / self.tolerances, axis=1)
            if not np.any(scores > 1.0):
                return kept, (p, a, l)
            kept |= _worst_per_interval(scores, kept)

    def keys(self, kept: NDArray[np.bool_]) -> list[tuple[int, int]]:
        """(row, hold frames) per key: kept rows of one hold run are one key with a hold."""
        keys: list[tuple[int, int]] = []
        for i in np.flatnonzero(kept):
            if keys and self.anchor[i] == self.anchor[keys[-1][0]]:
                keys[-1] = (keys[-1][0], int(self.frames[i] - self.frames[keys[-1][0]]))
            else:
                keys.append((int(i), 0))
        return keys

    def pins(self, keys: list[tuple[int, int]]) -> dict[str, NDArray[np.float64]]:
        """The track's follow-axis values (file units) at ``keys``."""
        n = len(self.lens_names)
        return {k: self.lens[[self.anchor[row] for row, _ in keys], n + j] for j, k in enumerate(self.follow_names)}

    def text(self, head: list, keys: list[tuple[int, int]], header: list[str],
             pins: Mapping[str, NDArray[np.float64]]) -> str:
        name, rig, stage, rate, start = head
        out = [f"# {line}" for line in header]
        out += [f"name = {_toml_string(name)}", f"rig = {_toml_string(rig)}"]
        if stage is not None:
            out.append(f"stage = {_toml_string(stage)}")
        out += [f"fps = {_toml_string(rate.label)}", f"start = {_toml_string(start.label)}"]
        for n, (row, hold) in enumerate(keys):
            i = self.anchor[row]
            x, y, z = (repr(float(v)) for v in self.track.position[i])
            pan, tilt, roll = (repr(float(v)) for v in self.ptr[i])
            out += ["", "[[key]]", f"frame = {int(self.frames[row])}",
                    f"camera = {{ position = [{x}, {y}, {z}], pan = {pan}, tilt = {tilt}, roll = {roll} }}"]
            if pins:
                out.append("joints = { " + ", ".join(f"{k} = {float(v[n])!r}" for k, v in pins.items())
                           + " }")
            if self.lens_names:
                out.append("lens = { " + ", ".join(f"{k} = {float(self.lens[i, j])!r}"
                                                   for j, k in enumerate(self.lens_names)) + " }")
            if hold:
                out.append(f"hold = {hold}")
        return "\n".join(out) + "\n"


def _follow_pins(rig: Any, fit: _Fit, head: list, out_path: Path | str | None,
                 ) -> tuple[dict[str, NDArray[np.float64]], str]:
    """Follow-axis values (file units) for every key of ``fit``'s dense move, from the fitted keys' solve."""
    from motionctl.errors import MotionctlError
    from motionctl.planner.channels import Channel
    from motionctl.planner.keys import solve_keys
    from motionctl.spec.move import Scene, move_from_toml
    from motionctl.spec.source import parse_toml
    try:
        kept, _ = fit.select("fit")
        sparse = fit.keys(kept)
        doc, source = parse_toml(fit.text(head, sparse, [], {}), "<fitted keys>")
        move = move_from_toml(doc, source, Path(out_path or "imported.toml"), rig)
        solved, _ = solve_keys(Scene(move, rig, None))
    except MotionctlError as exc:
        return {}, f"follow axes not pinned: solving the fitted keys failed ({exc})"
    if any(s.q is None for s in solved):
        return {}, "follow axes not pinned: a fitted key is out of reach (see motionctl check)"
    times, values = [], []
    for (row, hold), s in zip(sparse, solved):
        for frame in ([fit.frames[row], fit.frames[row] + hold] if hold else [fit.frames[row]]):
            times.append(frame * float(fit.track.fps.frame_duration))
            values.append(s.q[: len(rig.follow)])
    dense = fit.keys(np.ones(len(fit.track), dtype=bool))
    follow = Channel(np.array(times), np.array(values))(fit.times[[row for row, _ in dense]])
    axes = [rig.axes[rig.axis_index(f)] for f in rig.follow]
    pins = {a.name: np.array([a.to_file(v) for v in follow[:, j]]) for j, a in enumerate(axes)}
    return pins, (f"follow axes ({', '.join(rig.follow)}) pinned at every key to the planner's choice at "
                  f"{len(sparse)} fitted keys")


def _key_angles(track: CameraTrack) -> NDArray[np.float64]:
    """Pan/tilt/roll for camera keys: the track's own where tilt is within +-90, else the same rotation."""
    ptr = np.array(track.ptr, dtype=float)
    outside = np.abs(ptr[:, 1]) > 90.0
    if outside.any():
        ptr[outside] = continuous_ptr(track.rotations[outside], ptr[outside])
    return ptr


def _fit_tolerances(tolerance_m: float, tolerance_deg: float) -> tuple[float, float]:
    """The tolerances less what the planner itself adds (IK at the keys and along the path)."""
    from motionctl.kinematics import TOL_ANGLE_RAD, TOL_POSITION_M
    from motionctl.planner.tracking import REFINE_ANGLE_RAD, REFINE_POSITION_M
    budget_m = TOL_POSITION_M + REFINE_POSITION_M
    budget_deg = math.degrees(TOL_ANGLE_RAD + REFINE_ANGLE_RAD)
    fit_m = tolerance_m - budget_m if tolerance_m > 2 * budget_m else tolerance_m / 2
    fit_deg = tolerance_deg - budget_deg if tolerance_deg > 2 * budget_deg else tolerance_deg / 2
    return fit_m, fit_deg


def _turn_guard(rotations: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Keys so that consecutive keys turn less than 90 degrees (rotation vectors then go the track's way)."""
    out = np.zeros(len(rotations), dtype=bool)
    last = 0
    for i in range(1, len(rotations)):
        if rotation_angle(rotations[last], rotations[i]) > math.radians(90.0):
            out[i - 1] = True
            last = i - 1
    return out


def _hold_anchors(position, rotations, lens) -> NDArray[np.int64]:
    """For every row, the first row of its hold run (itself when it moves): runs of rows within the IK
    tolerance (and 1e-9 lens units) of the run's first row."""
    from motionctl.kinematics import TOL_ANGLE_RAD, TOL_POSITION_M
    anchor = np.arange(len(position))
    for i in range(1, len(position)):
        a = anchor[i - 1]
        if (np.linalg.norm(position[i] - position[a]) <= TOL_POSITION_M
                and rotation_angle(rotations[a], rotations[i]) <= TOL_ANGLE_RAD
                and np.all(np.abs(lens[i] - lens[a]) <= 1e-9)):
            anchor[i] = a
    return anchor


def _interpolation_errors(times, frames, kept, keys, track):
    """Errors against ``track`` (position, rotation, lens, and the rates of a reference or None) of the
    planner's channels through ``keys`` (position, rotation, lens) at the kept rows: position (m), angle
    (deg), lens, speed (m/s) and turn rate (deg/s); with ``track`` None, the rates themselves (speed
    vector, angular velocity vector) in the fourth place."""
    from motionctl.planner.channels import Channel, OrientationChannel
    k = np.flatnonzero(kept)
    key_p, key_r, key_l = keys
    try:
        orientation = OrientationChannel(times[k], key_r[k], frames=[int(f) for f in frames[k]])
    except PlanningError as exc:
        raise InputError(f"{exc} (the planner can only turn 170 degrees either side of a run's middle key "
                            "between two rests: cut the track where the camera holds still)") from None
    path = Channel(times[k], key_p[k])
    # Central differences a fraction of a frame wide (the orientation channel gives rotations only).
    h = 0.125 * float(np.min(np.diff(times))) if len(times) > 1 else 1e-3
    ra, rb = orientation(times - h), orientation(times + h)
    rates = ((path(times + h) - path(times - h)) / (2 * h),
             np.degrees(Rotation.from_matrix(np.swapaxes(ra, 1, 2) @ rb).as_rotvec()) / (2 * h))
    if track is None:
        return None, None, None, rates
    position, rotations, lens, reference = track
    err_p = np.linalg.norm(path(times) - position, axis=1)
    err_a = np.degrees(rotation_angle(orientation(times), rotations))
    err_l = np.stack([np.abs(Channel(times[k], key_l[k, j])(times)[:, 0] - lens[:, j])
                      for j in range(lens.shape[1])], axis=1) if lens.shape[1] else np.zeros((len(times), 0))
    if reference is None:
        return err_p, err_a, err_l, None, None
    speed, turn = reference
    # One-sided: faster than the reference anywhere in the frame's neighbourhood is wiggle; slower is the
    # fit smoothing what it may (a tracked camera's jitter, within the position tolerance).
    err_v = np.maximum(0.0, np.linalg.norm(rates[0], axis=1) - _around(np.linalg.norm(speed, axis=1)))
    err_w = np.maximum(0.0, np.linalg.norm(rates[1], axis=1) - _around(np.linalg.norm(turn, axis=1)))
    return err_p, err_a, err_l, err_v, err_w


def _around(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each value's largest neighbour (itself, the one before, the one after)."""
    out = values.copy()
    out[1:] = np.maximum(out[1:], values[:-1])
    out[:-1] = np.maximum(out[:-1], values[1:])
    return out


def _worst_per_interval(scores: NDArray[np.float64], kept: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The worst frame of every interval between keys that holds a frame beyond tolerance."""
    add = np.zeros_like(kept)
    index = np.flatnonzero(kept)
    for a, b in zip(index[:-1], index[1:]):
        if b - a > 1:
            inner = scores[a + 1: b]
            j = int(np.argmax(inner))
            if inner[j] > max(1.0, 0.5 * scores.max()):
                add[a + 1 + j] = True
    return add


def _rest_notes(track: CameraTrack, times: NDArray[np.float64]) -> list[str]:
    notes = []
    ends = (("first", 0, 1, "starts", "reach"), ("last", -2, -1, "ends", "leave"))
    for end, i, j, verb, gets in ends:
        dt = times[j] - times[i]
        speed = np.linalg.norm(track.position[j] - track.position[i]) / dt
        turn = math.degrees(rotation_angle(track.rotations[i], track.rotations[j])) / dt
        if speed > REST_SPEED[0] or turn > REST_SPEED[1]:
            notes.append(f"the track is not at rest at its {end} frame ({speed:.3g} m/s, {turn:.3g} deg/s): "
                         f"the planned move {verb} at rest, so the rig must {gets} that speed within one "
                         "frame")
    return notes


def _relative(path: Path | str | None, out_path: Path | str | None) -> str | None:
    if path is None:
        return None
    if out_path is None:
        return Path(path).as_posix()
    return Path(os.path.relpath(Path(path).resolve(), Path(out_path).resolve().parent)).as_posix()


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
