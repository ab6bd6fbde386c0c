"""Previews for stunt coordinators and ADs: see the move in the set before anyone stands near it.

``preview(source, out_dir)`` writes an offline HTML page (interactive 3D, scrub, play at real speed,
clearance colours, the tightest moment one click away), PNG pictures (a contact sheet of top/side/front
views, clearance over time, per-axis velocity and acceleration against the limits) and an animated GIF.
The source is a move (planned and checked here), a take (the motion the rig really made), or a move with
one of its takes overlaid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from motionctl.errors import InputError, PlanningError
from motionctl.planner import Plan
from motionctl.planner.report import Violation, ViolationKind
from motionctl.preview.scene import Approach, PreviewData, build, closest_person_text, frame_samples, people_first

MAX_FRAMES = 400


@dataclass(frozen=True)
class PreviewFiles:
    html: Path
    contact_sheet: Path
    clearance: Path
    axes: Path
    animation: Path
    verdict: str


#: The order a stunt coordinator reads a verdict in: people, the set, the rig itself, then the limits.
_IMPORTANCE = (ViolationKind.KEEPOUT, ViolationKind.COLLISION, ViolationKind.SELF_COLLISION,
               ViolationKind.UNREACHABLE, ViolationKind.PATH, ViolationKind.DURATION, ViolationKind.POSITION,
               ViolationKind.VELOCITY, ViolationKind.ACCELERATION, ViolationKind.JERK)


def violations_first_things_first(violations: Sequence[Violation]) -> list[Violation]:
    """Every violation (the page lists as many as ``check`` reports), keep-out zones and obstacles first,
    in time order within each kind."""
    rank = {kind: i for i, kind in enumerate(_IMPORTANCE)}
    return sorted(violations, key=lambda v: (rank.get(v.kind, len(rank)), v.first_frame))


def from_plan(plan: Plan, take_q: tuple[np.ndarray, np.ndarray] | None = None) -> PreviewData:
    """Preview data of a planned move (``take_q``: a take's (frames, joints) to overlay the plan on)."""
    traj, move = plan.trajectory, plan.move
    if traj is None:
        raise PlanningError(f"{move.name}: nothing to preview, the move has no path ("
                         + (plan.report.violations[0].message if plan.report.violations else "not plannable") + ")")
    fps = float(move.rate.fps)
    shown = frame_samples(plan.report.frames, MAX_FRAMES)
    # The tightest moment is the check's (least spare over every servo tick, the frame that tick falls
    # in): one definition for the report and the picture.  Its frame is always among those shown.
    tightest = plan.report.extra.get("tightest_at")
    if tightest is not None:
        shown = np.union1d(shown, [int(tightest["frame"])])
    ticks = np.minimum((shown / fps * plan.rate_hz).round().astype(int), len(traj) - 1)
    verdict = "LEGAL" if plan.ok else "ILLEGAL"
    violations = [v.message for v in violations_first_things_first(plan.report.violations)]
    q, lens = traj.q[ticks], traj.lens[ticks]
    ghost = None
    title = move.title or move.name
    if take_q is not None:
        frames, measured = take_q
        index = np.clip(np.searchsorted(frames, shown), 0, len(frames) - 1)
        ghost, q = q, measured[index]            # the take in colour, the plan as a ghost
        verdict, title = "TAKE", f"{title}: take over plan"
    data = build(title, verdict, violations, fps, shown.tolist(), [move.timecode_at(int(f)) for f in shown],
                 plan.rig, plan.stage, q, lens, ghost_q=ghost)
    if take_q is not None:
        return data
    if tightest is not None:
        data = replace(data, min_frame_index=int(np.searchsorted(shown, int(tightest["frame"]))),
                       min_text=tightest_text(tightest))
    pairs = plan.report.extra.get("clearances")
    if pairs:               # the check's closest approaches, over every servo tick
        data = replace(data, approaches=people_first([Approach(**pair) for pair in pairs]))
    return replace(data, rate_bands=rate_bands(traj.qd, traj.qdd, ticks))


def tightest_text(t: dict) -> str:
    """The check's tightest moment in words: ``tightest at frame 106 (03:00:04:06): flange to stunt_lane
    clear of its margin by 5 mm``."""
    where = "inside its margin by" if t["spare_m"] < 0 else "clear of its margin by"
    return (f"tightest at frame {t['frame']} ({t['timecode']}): {t['link']} to {t['other']} {where} "
            f"{abs(t['spare_m']) * 1000:.0f} mm")


def rate_bands(qd: np.ndarray, qdd: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """(F, axes, 4): the extreme velocity and acceleration over the ticks from each shown tick to the next.

    Differencing positions at the shown frames (as a picture of a few hundred points would) smooths a
    spike that lives between two frames; the check works per tick, and so must the picture of it.
    ``ticks`` ascend; the last band runs to the end of the trajectory.
    """
    starts = np.asarray(ticks, dtype=int)
    return np.stack([np.minimum.reduceat(qd, starts, axis=0), np.maximum.reduceat(qd, starts, axis=0),
                     np.minimum.reduceat(qdd, starts, axis=0), np.maximum.reduceat(qdd, starts, axis=0)], axis=2)


def from_take(take_path: Path) -> tuple[PreviewData, object]:
    """Preview data of what the rig really did in a take (its move file gives the rig and the set)."""
    from motionctl.runtime.takes import read_take
    from motionctl.spec import load_scene
    from motionctl.timecode import FrameRate, Timecode
    from motionctl.vcam.tracks import take_joints

    take = read_take(take_path)
    move_file = take.meta.get("move_file")
    if not move_file or not Path(move_file).is_file():
        raise InputError(f"{take_path}: the take's move file ({move_file}) is not there to give the rig and the set")
    scene = load_scene(move_file)
    frames, q, lens_values = take_joints(take, scene.rig)
    rate = FrameRate.parse(take.meta["fps"])
    start = Timecode.parse(str(take.meta.get("start_timecode", "00:00:00:00")), rate)
    picks = frame_samples(len(frames), MAX_FRAMES)
    lens = np.stack([lens_values.get(l.name, np.full(len(frames), l.default)) for l in scene.rig.lens], axis=1) \
        if scene.rig.lens else np.zeros((len(frames), 0))
    summary = take.meta.get("summary") or {}
    notes = list(summary.get("faults", []))
    data = build(f"{take.meta.get('move', 'take')}: take {Path(take_path).name}", "TAKE", notes,
                 float(rate.fps), frames[picks].tolist(), [(start + int(f)).label for f in frames[picks]],
                 scene.rig, scene.stage, q[picks], lens[picks])
    return data, scene


def write(data: PreviewData, rig, out_dir: Path, view: str = "side", subtitle: str = "") -> PreviewFiles:
    from motionctl.fileio import write_atomic
    from motionctl.preview import pictures
    from motionctl.preview.html import page

    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = write_atomic(out_dir / "preview.html", page(data, rig, subtitle))
    sheet = pictures.contact_sheet(data, out_dir / "contact_sheet.png")
    clearance = pictures.clearance_plot(data, out_dir / "clearance.png")
    axes = pictures.axis_plots(data, rig, out_dir / "axes.png", data.fps)
    movie = pictures.animation(data, out_dir / f"move_{view}.gif", view=view)
    return PreviewFiles(html_path, sheet, clearance, axes, movie, data.verdict)


def describe(data: PreviewData) -> str:
    tight = closest_person_text(data) + data.min_text
    speed = float(np.max(data.speed_mps)) if len(data.speed_mps) else 0.0
    return f"{data.verdict}: {tight}; peak camera-head speed {speed:.2f} m/s" + (
        f"; {len(data.violations)} violation(s), first: {data.violations[0]}" if data.violations else "")


__all__ = ["PreviewFiles", "describe", "from_plan", "from_take", "write"]
