"""``plan(move, rig, stage, rate_hz) -> Plan``: the pure planning pipeline.

keys solved in order -> intended path (channels) -> IK along it (knots, refined until the camera error
is measured below bound at every tick) -> optional retiming -> samples at the servo rate -> limits on
every tick -> clearance on every tick -> :class:`CheckReport`.  No I/O, no global state, deterministic:
the same inputs give bit-identical arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from motionctl.collision import ClearanceChecker
from motionctl.errors import InputError, PlanningError, UnreachableError
from motionctl.kinematics import IKTracker, Kinematics
from motionctl.planner.channels import UnplannablePathError
from motionctl.planner.keys import SolvedKey, key_pose, solve_keys
from motionctl.planner.limits import (AxisLimits, KeyValues, axis_limits, derivatives, key_margin_violations,
                                      limit_violations, peaks, time_scale_needed)
from motionctl.planner.path import ReferencePath, build_reference
from motionctl.planner.report import CheckReport, Violation, ViolationKind
from motionctl.planner.retime import fastest_time_map, stretch_time_map
from motionctl.planner.tracking import JointPath, PathError, track_path
from motionctl.planner.trajectory import Trajectory
from motionctl.spec.move import Move, Scene
from motionctl.spec.rig import Rig
from motionctl.spec.stage import Stage

SERVO_RATES = (250, 500, 1000)
#: One plan holds every link frame of every tick in memory: about 20 minutes at 1 kHz.  A longer move
#: is a verdict (``duration`` violation), not an error: the move as written cannot be run, and the
#: operator fixes it by splitting it.
MAX_TICKS = 1_200_000
Progress = Callable[[str, float], None]


class Retime(Enum):
    NONE = "none"
    STRETCH = "stretch"      # slow the whole move uniformly to the shortest legal duration
    FASTEST = "fastest"      # time-optimal along the same path under velocity, acceleration and jerk limits


@dataclass(frozen=True, eq=False)
class Plan:
    """A checked plan: the report always, the trajectory when the path could be built."""

    move: Move
    rig: Rig
    stage: Stage | None
    rate_hz: int
    report: CheckReport
    trajectory: Trajectory | None = None
    joint_path: JointPath | None = None
    reference: ReferencePath | None = None

    @property
    def ok(self) -> bool:
        return self.report.ok and self.trajectory is not None


def _no_progress(stage: str, fraction: float) -> None:
    return None


def tick_times(duration: float, rate_hz: int) -> NDArray[np.float64]:
    """Servo ticks from 0 through the first tick at or after ``duration``."""
    count = int(math.ceil(duration * rate_hz - 1e-9)) + 1
    return np.arange(count, dtype=float) / rate_hz


def sample(move: Move, kin: Kinematics, joint_path: JointPath, reference: ReferencePath,
           t: NDArray[np.float64], s: NDArray[np.float64], rate_hz: int,
           ) -> tuple[Trajectory, NDArray[np.float64]]:
    """Evaluate the path at original-move instants ``s`` for run ticks ``t``; also every link frame."""
    s = np.clip(s, 0.0, joint_path.duration)
    q = joint_path(s)
    lens = reference.lens_values(s)
    qd, qdd, qddd = derivatives(q, rate_hz)
    frames = kin.link_frames(q)
    fps = float(move.rate.fps)
    return Trajectory(rate_hz, t, s, t * fps, q, qd, qdd, qddd, lens, kin.camera_from_frames(frames)), frames


def _resampler(joint_path: JointPath, reference: ReferencePath, rate_hz: int):
    """Joints and lens only (no FK): what the retimers need to test a time law against the limits."""
    def resample(t: NDArray[np.float64], s: NDArray[np.float64]) -> NDArray[np.float64]:
        s = np.clip(s, 0.0, joint_path.duration)
        return np.concatenate([joint_path(s), reference.lens_values(s)], axis=1)

    return resample


def _key_values(move: Move, rig: Rig, solved: list[SolvedKey], s: NDArray[np.float64] | None = None,
                ) -> list[KeyValues]:
    """Every reached key's own values (axes then lens, SI) and the ticks around it and its hold.

    ``s`` is the trajectory's original-move instant of every tick (None: no trajectory, ticks 0).  The
    ticks bracket the key's instants, so a run of ticks beyond a limit that the key causes holds them.
    """
    duration = float(move.rate.frame_duration)
    out: list[KeyValues] = []
    for key in solved:
        if key.q is None:
            continue
        values = np.concatenate([key.q, [key.lens[l.name] for l in rig.lens]])
        first = last = 0
        if s is not None and len(s):
            first = max(int(np.searchsorted(s, key.key.frame * duration, side="left")) - 1, 0)
            end = (key.key.frame + key.key.hold) * duration
            last = min(int(np.searchsorted(s, end, side="right")), len(s) - 1)
        out.append(KeyValues(key.key.index, key.key.frame, first, last, values))
    return out


def _illegal(move: Move, rig: Rig, stage: Stage | None, rate: int, report: CheckReport,
             key_violations: list[Violation], solved: list[SolvedKey], limits: list[AxisLimits],
             *found: Violation) -> Plan:
    """A plan without a trajectory: what the keys broke, keys in a soft margin, and why there is no path.

    Every problem the planner can name without a trajectory is reported, so the operator fixes them in
    one pass rather than one per run.
    """
    report.violations = (key_violations + key_margin_violations(_key_values(move, rig, solved), limits,
                                                                move.timecode_at) + list(found))
    return Plan(move, rig, stage, rate, report)


def _report_base(move: Move, rig: Rig, stage: Stage | None) -> CheckReport:
    return CheckReport(move=move.name, file=move.file, rig=rig.name, stage=stage.name if stage else None,
                       fps=move.rate.label, start=move.start.label, frames=move.last_frame + 1,
                       duration_s=move.duration_s, axes=rig.axis_table())


def plan(move: Move, rig: Rig, stage: Stage | None = None, rate_hz: int | None = None, *,
         retime: Retime | str = Retime.NONE, progress: Progress | None = None) -> Plan:
    """Plan and check ``move`` on ``rig`` in ``stage`` at ``rate_hz`` (default: the rig's servo rate).

    A move that cannot be planned as written (a key out of reach, a path out of reach, a turn the
    orientation channels cannot make, more ticks than a plan can hold) gives an illegal :class:`Plan`
    without a trajectory, its report saying why: a verdict, like any other broken limit.  Only input
    that cannot be used (a servo rate that does not exist) raises :class:`InputError`.
    """
    progress = progress or _no_progress
    retime = Retime(retime)
    rate = int(rate_hz or (rig.hardware.servo_rate_hz if rig.hardware else 500))
    if rate not in SERVO_RATES:
        raise InputError(f"servo rate must be one of {', '.join(map(str, SERVO_RATES))} Hz, not {rate}")
    scene = Scene(move, rig, stage)
    kin = Kinematics(rig)
    tracker = IKTracker(kin)
    report = _report_base(move, rig, stage)
    report.extra["rate_hz"] = rate
    limits = axis_limits(rig)

    progress("solving keys", 0.0)
    solved, key_violations = solve_keys(scene, kin, tracker)
    report.keys = [key_pose(scene, s) for s in solved]
    if any(v.kind is ViolationKind.UNREACHABLE for v in key_violations):
        return _illegal(move, rig, stage, rate, report, key_violations, solved, limits)

    progress("building the path", 0.1)
    try:
        reference = build_reference(move, rig, solved)
    except UnplannablePathError as exc:
        f0, f1 = exc.first_frame, exc.last_frame
        return _illegal(move, rig, stage, rate, report, key_violations, solved, limits, Violation(
            ViolationKind.PATH, exc.subject, f0, f1, move.timecode_at(f0), move.timecode_at(f1), exc.peak,
            exc.limit, exc.unit, exc.reason))
    except PlanningError as exc:
        raise PlanningError(f"{move.file}: {exc}") from None
    fps = float(move.rate.fps)
    if reference.duration * rate > MAX_TICKS:
        last = move.last_frame
        return _illegal(move, rig, stage, rate, report, key_violations, solved, limits, Violation(
            ViolationKind.DURATION, "move", 0, last, move.timecode_at(0), move.timecode_at(last),
            reference.duration, MAX_TICKS / rate, "s",
            f"the move lasts {reference.duration / 60:.1f} min; at {rate} Hz that is more than {MAX_TICKS:,} "
            f"servo ticks, more than one plan can hold: split it into moves shorter than "
            f"{MAX_TICKS / rate / 60:.0f} min"))
    nominal_ticks = tick_times(reference.duration, rate)
    progress("tracking the camera path", 0.2)
    try:
        joint_path, path_error = track_path(reference, kin, tracker, float(move.rate.frame_duration),
                                            nominal_ticks)
    except UnreachableError as exc:
        frame = exc.frame or 0
        tc = move.timecode_at(frame)
        return _illegal(move, rig, stage, rate, report, key_violations, solved, limits, Violation(
            ViolationKind.UNREACHABLE, "path", frame, frame, tc, tc, exc.position_error_m, None, "m",
            f"the path between keys leaves the arm's reach at frame {frame} ({tc}): {exc.reason}"))

    progress("sampling", 0.5)
    trajectory, frames = sample(move, kin, joint_path, reference, nominal_ticks, nominal_ticks, rate)
    before_frames = move.last_frame + 1
    if retime is not Retime.NONE:
        progress(f"retiming ({retime.value})", 0.55)
        resample = _resampler(joint_path, reference, rate)
        optimum = None
        if retime is Retime.STRETCH:
            t, s = stretch_time_map(trajectory, limits, reference.duration, rate, resample)
        else:
            t, s, optimum = fastest_time_map(joint_path, reference, limits, rate, resample)
        trajectory, frames = sample(move, kin, joint_path, reference, t, s, rate)
        after_frames = int(math.ceil(trajectory.duration_s * fps - 1e-6)) + 1
        report.extra["retime"] = {"mode": retime.value, "frames_before": before_frames,
                                  "frames_after": after_frames, "duration_before_s": reference.duration,
                                  "duration_after_s": trajectory.duration_s}
        if optimum is not None:
            report.extra["retime"]["toppra_duration_s"] = float(optimum)
        report.frames = after_frames
        report.duration_s = trajectory.duration_s

    progress("checking limits", 0.7)
    last_frame = report.frames - 1

    def frame_of_tick(i: int) -> int:
        return min(int(math.floor(trajectory.frame[i] + 1e-9)), last_frame)

    values = np.concatenate([trajectory.q, trajectory.lens], axis=1)
    v, a, j = derivatives(values, rate)
    violations = [x for x in key_violations if x.kind is not ViolationKind.POSITION]
    violations += limit_violations(values, v, a, j, limits, frame_of_tick, move.timecode_at,
                                   _key_values(move, rig, solved, trajectory.s))
    pk = peaks(v, a, j)
    scale = time_scale_needed(pk, limits)

    progress("checking clearance", 0.8)
    clearance = ClearanceChecker(rig, stage, kin.capsules).check(*kin.capsules_world(frames))
    del frames
    violations += clearance_violations(clearance, frame_of_tick, move.timecode_at)

    progress("report", 0.95)
    position, _ = trajectory.camera_xyz_ptr()
    speed = np.linalg.norm(np.diff(position, axis=0), axis=1) * rate if len(position) > 1 else np.zeros(1)
    report.violations = violations
    blocking = any(x.kind in (ViolationKind.POSITION, ViolationKind.COLLISION, ViolationKind.KEEPOUT,
                              ViolationKind.SELF_COLLISION) for x in violations)
    report.extra.update(_measurements(trajectory, clearance, path_error, scale, blocking, speed,
                                      frame_of_tick, move))
    report.extra["axis_peaks"] = [
        {"name": lim.name, "unit": lim.unit, "v": float(pk.v[i]), "a": float(pk.a[i]), "j": float(pk.j[i]),
         "v_pct": 100 * float(pk.v[i]) / lim.vmax, "a_pct": 100 * float(pk.a[i]) / lim.amax,
         "j_pct": 100 * float(pk.j[i]) / lim.jmax, "min": float(values[:, i].min()), "max": float(values[:, i].max())}
        for i, lim in enumerate(limits)]
    progress("done", 1.0)
    return Plan(move, rig, stage, rate, report, trajectory, joint_path, reference)


def clearance_violations(result, frame_of_tick, timecode_of_frame) -> list[Violation]:
    kinds = {"obstacle": ViolationKind.COLLISION, "keepout": ViolationKind.KEEPOUT,
             "self": ViolationKind.SELF_COLLISION}
    out = []
    for run in result.runs:
        pair = result.pairs[run.pair]
        f0, f1, fm = frame_of_tick(run.first_tick), frame_of_tick(run.last_tick), frame_of_tick(run.tick_of_min)
        what = {"obstacle": "obstacle", "keepout": "keep-out zone", "self": "link"}[pair.kind]
        state = "hits" if run.min_m <= 0 else "comes within"
        detail = (f"{pair.link} {state} {what} {pair.other}" + ("" if run.min_m <= 0 else f" at {run.min_m * 1000:.0f} mm")
                  + f" (needs {pair.required_m * 1000:.0f} mm); closest at frame {fm} ({timecode_of_frame(fm)})")
        out.append(Violation(kinds[pair.kind], f"{pair.link} vs {pair.other}", f0, f1, timecode_of_frame(f0),
                             timecode_of_frame(f1), run.min_m, pair.required_m, "m", detail))
    return out


def _measurements(trajectory: Trajectory, clearance, path_error: PathError, scale: float, blocking: bool,
                  speed: NDArray[np.float64], frame_of_tick, move: Move) -> dict:
    out: dict = {"duration_s": trajectory.duration_s}
    if clearance.pairs:
        worst = clearance.pairs[clearance.min_pair]
        frame = frame_of_tick(worst.tick)
        out["min_clearance_m"] = worst.min_m
        out["min_clearance_at"] = {"link": worst.link, "other": worst.other, "kind": worst.kind,
                                   "frame": frame, "timecode": move.timecode_at(frame),
                                   "required_m": worst.required_m}
        # The tightest moment is the least *spare* (clearance beyond what the pair needs), not the smallest
        # distance: two wrist links 20 mm apart that need 10 mm are roomier than a person at 505 mm who
        # needs 500.
        tight = min(clearance.pairs, key=lambda p: p.min_m - p.required_m)
        frame = frame_of_tick(tight.tick)
        out["tightest_at"] = {"link": tight.link, "other": tight.other, "kind": tight.kind, "frame": frame,
                              "timecode": move.timecode_at(frame), "min_m": tight.min_m,
                              "required_m": tight.required_m, "spare_m": tight.min_m - tight.required_m}
    out["shortest_legal_duration_s"] = None if blocking else trajectory.duration_s * scale
    out["peak_camera_speed_mps"] = float(speed.max()) if len(speed) else 0.0
    out["max_path_error_mm"] = path_error.max_position_m * 1000.0
    out["max_path_error_deg"] = math.degrees(path_error.max_angle_rad)
    out["ik_knots"] = path_error.knots
    out["clearances"] = [
        {"kind": p.kind, "link": p.link, "other": p.other, "min_m": p.min_m, "required_m": p.required_m,
         "frame": frame_of_tick(p.tick), "timecode": move.timecode_at(frame_of_tick(p.tick))}
        for p in sorted(clearance.pairs, key=lambda p: p.min_m - p.required_m)]
    return out


def plan_scene(scene: Scene, rate_hz: int | None = None, **kwargs) -> Plan:
    return plan(scene.move, scene.rig, scene.stage, rate_hz, **kwargs)
