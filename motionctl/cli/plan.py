"""``motionctl plan``: the servo-rate trajectory as CSV (``export`` lives in ``cli/vcam.py``)."""

from __future__ import annotations

# The planner and the file loaders are imported inside the handlers: building the parser (--help, tc)
# must not pay for them (a pipeline calls motionctl in loops).

import argparse
import json
import sys

from motionctl.cli.check import add_plan_options
from motionctl.cli.progress import progress_bar
from motionctl.cli.render import render_check
from motionctl.fileio import write_atomic


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="plan a move and write its servo-rate trajectory as CSV",
                       description="Plan the move, check it, and write one CSV row per servo tick: t_s, frame, "
                       "timecode, every axis in SI units (m, rad) under its rig name, the camera "
                       "(x_m y_m z_m pan_deg tilt_deg roll_deg) and the lens axes.  Exit 0 legal, 1 illegal "
                       "(the CSV is still written when a trajectory exists, for inspection), 2 bad input.")
    p.add_argument("move", metavar="MOVE")
    p.add_argument("--out", required=True, help="CSV file to write")
    add_plan_options(p)
    p.add_argument("--retime", choices=("stretch", "fastest"), default=None,
                   help="stretch: slow the whole move uniformly to the shortest legal duration; fastest: "
                   "time-optimal along the same path under velocity, acceleration and jerk limits")
    p.add_argument("--json", action="store_true", help="print the check report as JSON")
    p.set_defaults(handler=run_plan)



def run_plan(args: argparse.Namespace) -> int:
    from motionctl.planner import plan_scene
    from motionctl.planner.export import plan_csv
    from motionctl.spec import load_scene
    scene = load_scene(args.move)
    with progress_bar(f"planning {args.move}") as update:
        result = plan_scene(scene, args.rate, retime=args.retime or "none", progress=update)
    if result.trajectory is not None:
        write_atomic(args.out, plan_csv(result))
    if args.json:
        print(json.dumps(result.report.to_dict(), allow_nan=False))
    else:
        print(render_check(result.report))
        if result.trajectory is not None:
            print(f"wrote {args.out}: {len(result.trajectory)} ticks at {result.rate_hz} Hz")
        else:
            print(f"no trajectory: nothing written to {args.out}", file=sys.stderr)
    return 0 if result.ok else 1
