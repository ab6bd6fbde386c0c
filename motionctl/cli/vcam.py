"""``motionctl vcam`` (stream a planned move to the engine, no hardware), ``motionctl import`` (CG camera
animation -> move) and ``motionctl export`` (planned or actual camera -> CSV/JSON/.chan/USD for VFX)."""

from __future__ import annotations

# The planner and the file loaders are imported inside the handlers: building the parser (--help, tc)
# must not pay for them (a pipeline calls motionctl in loops).

import argparse
import time
from pathlib import Path

from motionctl.cli.check import add_plan_options
from motionctl.cli.progress import progress_bar
from motionctl.cli.render import render_check
from motionctl.errors import InputError
from motionctl.fileio import write_atomic

FORMATS = ("csv", "json", "chan", "usd")


def register(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("vcam", help="stream a planned move's camera to the game engine (FreeD, OpenTrackIO)",
                       description="Plan the move and send its camera at the frame rate, one FreeD D1 and one "
                       "OpenTrackIO sample per frame with timecode, so the engine operator can see the move "
                       "before the arm runs.  Destinations default to 127.0.0.1; any other must be named (and "
                       "--vcam-bind an interface to send from).")
    v.add_argument("move", metavar="MOVE")
    v.add_argument("--freed", metavar="HOST:PORT", default=None, help="FreeD D1 destination (port 40000 default)")
    v.add_argument("--otrk", metavar="HOST:PORT", default=None, help="OpenTrackIO destination (port 55555 default)")
    v.add_argument("--vcam-bind", metavar="ADDR", default="127.0.0.1")
    v.add_argument("--loop", action="store_true", help="play again and again until interrupted")
    add_plan_options(v)
    v.set_defaults(handler=run_vcam)

    i = sub.add_parser("import", help="turn CG camera animation into a move file, and check it",
                       description="Read a camera track (CSV/JSON with timecode, Nuke .chan, USD camera with the "
                       "usd-core extra) and write a move: every frame as a key (--mode keys) or as few keys as "
                       "keep the planned path within --tolerance-mm / --tolerance-deg (--mode fit).  Then check it.")
    i.add_argument("track", metavar="FILE")
    i.add_argument("--rig", required=True)
    i.add_argument("--stage", default=None)
    i.add_argument("--out", required=True, help="move file to write (.toml)")
    i.add_argument("--mode", choices=("keys", "fit"), default="fit",
                   help="keys: every frame becomes a key; fit: the fewest keys within tolerance (default: fit)")
    i.add_argument("--tolerance-mm", type=float, default=0.5)
    i.add_argument("--tolerance-deg", type=float, default=0.05)
    i.add_argument("--fps", default=None, help="frame rate when the file does not say")
    i.add_argument("--units", choices=("m", "cm", "mm"), default=None, help="length unit of .chan/USD files")
    i.add_argument("--start", default=None, metavar="TIMECODE",
                   help=".chan: the timecode of frame 0 (the file has none; default 00:00:00:00, said when used)")
    i.add_argument("--format", choices=FORMATS, default=None, help="default: from the file extension")
    i.set_defaults(handler=run_import)

    e = sub.add_parser("export", help="export the planned camera of a move, or the actual camera of a take",
                       description="One row per frame with timecode: the planned camera of MOVE, or the actual "
                       "camera of a TAKE directory (FK of the measured joints).  Formats: csv, json, chan "
                       "(Nuke), usd (needs usd-core).")
    e.add_argument("source", metavar="MOVE|TAKE")
    e.add_argument("--format", choices=FORMATS, required=True)
    e.add_argument("--out", required=True)
    add_plan_options(e)
    e.set_defaults(handler=run_export)


def run_vcam(args: argparse.Namespace) -> int:
    from motionctl.planner import plan_scene
    from motionctl.spec import load_scene
    import numpy as np

    from motionctl.cli.run import vcam_sender
    from motionctl.kinematics import Kinematics

    if not (args.freed or args.otrk):
        args.freed, args.otrk = "127.0.0.1", "127.0.0.1"
    scene = load_scene(args.move)
    with progress_bar(f"planning {args.move}") as update:
        plan = plan_scene(scene, args.rate, progress=update)
    if plan.trajectory is None:
        print(render_check(plan.report))
        return 1
    if not plan.ok:
        print("warning: the move is not legal; streaming its planned camera anyway (nothing moves)")
    sender = vcam_sender(args)
    kin = Kinematics(plan.rig)
    traj = plan.trajectory
    rate = plan.move.rate
    frames = plan.report.frames
    fps = float(rate.fps)
    times = np.arange(frames) / fps
    s = np.interp(times, traj.t, traj.s)
    poses = kin.camera(plan.joint_path(s))
    lens = plan.reference.lens_values(s)
    names = [l.name for l in plan.rig.lens]
    print(f"streaming {plan.move.name}: {frames} frames at {rate.label} fps"
          + (f", FreeD to {sender.freed_destination}" if sender.freed_destination else "")
          + (f", OpenTrackIO to {sender.otrk_destination}" if sender.otrk_destination else "")
          + (" (looping; Ctrl-C to stop)" if args.loop else ""))
    period_ns = 1e9 / fps
    sequence = 0
    try:
        while True:
            start = time.monotonic_ns()
            for f in range(frames):
                deadline = start + int(f * period_ns)
                delay = (deadline - time.monotonic_ns()) / 1e9
                if delay > 0:
                    time.sleep(delay)
                sender.send(poses[f], dict(zip(names, lens[f])), plan.move.start + f, sequence, plan.rig, plan.stage,
                            measured_at_ns=time.monotonic_ns())
                sequence += 1
            if not args.loop:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stats = sender.stats
        sender.close()
    print(f"sent {stats.freed_sent} FreeD and {stats.otrk_samples_sent} OpenTrackIO samples, "
          f"{stats.send_errors} send errors")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from motionctl.planner import plan_scene
    from motionctl.spec import load_rig, load_scene
    from motionctl.vcam.track_import import import_track
    from motionctl.vcam.tracks import read_track

    load_rig(args.rig)                                      # a bad rig is reported before reading the track
    if args.stage is not None:                              # ... and a bad stage: nothing is written on bad input
        from motionctl.spec.stage import load_stage
        load_stage(args.stage)
    from motionctl.vcam.tracks import track_format
    chan = track_format(args.track, args.format) == "chan"
    if args.start is not None and not chan:
        raise InputError("--start is for .chan files (the other formats carry their timecode)")
    options = {"start": args.start} if chan and args.start is not None else {}
    track = read_track(args.track, args.format, fps=args.fps, units=args.units, **options)
    if chan and args.start is None:
        print(f"note: {args.track} has no timecode (.chan): the move starts at {track.start.label}; give --start "
              "to set it")
    out = Path(args.out)
    result = import_track(track, args.rig, args.stage, mode=args.mode, tolerance_m=args.tolerance_mm / 1000.0,
                          tolerance_deg=args.tolerance_deg, name=out.stem.replace("_", "-"), out_path=out)
    write_atomic(out, result.text)
    print(f"wrote {out}: {len(result.key_frames)} keys from {len(track.frames)} frames ({args.mode}); path within "
          f"{result.max_position_error_m * 1000:.3f} mm, {result.max_angle_error_deg:.4f} deg of the track")
    for note in result.notes:
        print(f"  note: {note}")
    with progress_bar(f"checking {out}") as update:
        plan = plan_scene(load_scene(out), progress=update)
    print()
    print(render_check(plan.report))
    return 0 if plan.ok else 1


def run_export(args: argparse.Namespace) -> int:
    from motionctl.planner import plan_scene
    from motionctl.spec import load_scene
    from motionctl.vcam.tracks import track_from_plan, track_from_take, write_track

    source = Path(args.source)
    if source.is_dir() and (source / "meta.json").is_file():
        from motionctl.runtime.takes import read_take
        take = read_take(source)
        move_file = take.meta.get("move_file")
        if not move_file or not Path(move_file).is_file():
            raise InputError(f"{source}: the take names move file {move_file!r}, which is not there (the rig is "
                             "needed to turn measured joints into the camera)")
        track = track_from_take(take, load_scene(move_file).rig)
        what = "actual camera of the take"
    elif source.is_dir():
        inside = sorted(p.name for p in source.iterdir() if (p / "meta.json").is_file())
        raise InputError(f"{source} is a folder but not a take (it has no meta.json): give one take's folder"
                         + (f", e.g. {source / inside[-1]}" if inside else "") + ", or a move file")
    else:
        scene = load_scene(source)
        with progress_bar(f"planning {source}") as update:
            plan = plan_scene(scene, args.rate, progress=update)
        if plan.trajectory is None:
            print(render_check(plan.report))
            print(f"no trajectory: nothing written to {args.out}")
            return 1
        track = track_from_plan(plan)
        what = "planned camera" + ("" if plan.ok else " (the move is NOT legal: see motionctl check)")
    write_track(track, args.out, args.format)
    print(f"wrote {args.out}: {what}, {len(track.frames)} frames at {track.fps.label} fps from {track.start.label}")
    return 0
