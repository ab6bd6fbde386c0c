"""``motionctl preview MOVE|TAKE``: an offline HTML page, PNG pictures and an animated GIF."""

from __future__ import annotations

import argparse
import sys
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

from motionctl.cli.progress import progress_bar
from motionctl.errors import InputError

if TYPE_CHECKING:
    from motionctl.planner import Plan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preview", help="see a move (or a take) in the set: offline HTML, PNG pictures, GIF",
                       description="Plan and check MOVE (or read TAKE, a take folder) and write DIR/preview.html "
                       "(interactive 3D, offline), DIR/contact_sheet.png, DIR/clearance.png, DIR/axes.png and "
                       "DIR/move_<view>.gif.  Exit 0 when the move is legal, 1 when it is not.")
    p.add_argument("source", metavar="MOVE|TAKE")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs (created)")
    p.add_argument("--take", metavar="TAKE", help="with a MOVE: overlay this take's actual motion on the plan")
    p.add_argument("--rate", type=int, choices=(250, 500, 1000), default=None)
    p.add_argument("--view", choices=("top", "side", "front"), default="side", help="viewpoint of the GIF")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(handler=preview_cmd)


def _no_path(plan: Plan, out: str) -> int:
    """The report of a move that has no trajectory, and exit 1 (illegal), like ``plan`` and ``export``."""
    from motionctl.cli.render import render_check

    print(render_check(plan.report))
    print(f"no trajectory: nothing written to {out}", file=sys.stderr)
    return 1


def preview_cmd(args: argparse.Namespace) -> int:
    from motionctl import preview
    from motionctl.planner import plan_scene
    from motionctl.spec import load_scene

    source = Path(args.source)
    if not source.exists():
        raise InputError(f"{source}: no such move file or take folder")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise InputError(f'--out "{args.out}" is a file: give a folder for the page and pictures (created if '
                         "missing)")
    no_path = None
    with progress_bar(f"preview of {source.name}") as update:
        if source.is_dir():
            if args.take:
                raise InputError("--take goes with a MOVE, not with a take folder")
            update("reading the take", 0.1)
            data, scene = preview.from_take(source)
            rig = scene.rig
        else:
            scene = load_scene(source)
            update("planning and checking", 0.1)
            plan = plan_scene(scene, args.rate)
            if plan.trajectory is None:
                # An illegal move with no path (a key out of reach, a turn too large): the report says
                # why, as `check` would; there is nothing to draw.
                no_path = plan
            else:
                take_q = None
                if args.take:
                    from motionctl.runtime.takes import read_take
                    from motionctl.vcam.tracks import take_joints
                    take = read_take(args.take)
                    if take.meta.get("move") != plan.move.name:
                        # Joints of another move drawn under this move's title would mislead whoever reads
                        # the picture: refuse, and say what to do instead.
                        raise InputError(f'--take {args.take} is a take of "{take.meta.get("move", "?")}", not of '
                                         f'"{plan.move.name}": preview the take alone (motionctl preview TAKE) '
                                         "or give the move it was shot from")
                    frames, q, _ = take_joints(take, scene.rig)
                    take_q = (frames, q)
                update("clearance at every shown frame", 0.4)
                data = preview.from_plan(plan, take_q)
                rig = scene.rig
        if no_path is None:
            update("drawing", 0.7)
            files = preview.write(data, rig, Path(args.out), view=args.view, subtitle=str(source))
    if no_path is not None:
        return _no_path(no_path, args.out)
    print(preview.describe(data))
    for label, path in (("page", files.html), ("contact sheet", files.contact_sheet), ("clearance", files.clearance),
                        ("axes", files.axes), ("animation", files.animation)):
        print(f"  {label:14s} {path}")
    if args.open:
        webbrowser.open(files.html.resolve().as_uri())
    return 1 if data.verdict == "ILLEGAL" else 0
