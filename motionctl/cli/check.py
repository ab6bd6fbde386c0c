"""``motionctl check MOVE...``: is this move legal on its rig in its stage?

Plans the move at the servo rate and checks every tick (limits, clearance).  Exit 0 when every move is
legal, 1 when any is not, 2 when any file is bad input (the others are still checked and reported).
A move that cannot be planned as written (a key out of reach, a turn too large for one run of keys, a
move too long for one plan) is not legal: it gets its report like any other verdict.
``--json`` prints one JSON object per move, one per line.
"""

from __future__ import annotations

# The planner and the file loaders are imported inside the handlers: building the parser (--help, tc)
# must not pay for them (a pipeline calls motionctl in loops).

import argparse
import json
import sys

from motionctl.cli.progress import progress_bar
from motionctl.cli.render import render_check
from motionctl.errors import InputError, PlanningError


def add_plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=int, choices=(250, 500, 1000), default=None,
                   help="servo rate in Hz (default: the rig's)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check a move against its rig's limits and its stage",
                       description="Plan the move at the servo rate and check every tick against position, "
                       "velocity, acceleration and jerk limits and clearance to the set, the keep-out zones and "
                       "the rig itself.  Exit 0 legal, 1 illegal, 2 bad input.")
    p.add_argument("moves", nargs="+", metavar="MOVE", help="move file(s) (.toml)")
    add_plan_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable report (one JSON object per move)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from motionctl.planner import plan_scene
    from motionctl.spec import load_scene
    worst = 0
    for index, path in enumerate(args.moves):
        try:
            scene = load_scene(path)
            with progress_bar(f"checking {path}") as update:
                result = plan_scene(scene, args.rate, progress=update)
        except InputError as exc:
            if args.debug:
                raise
            print(f"motionctl: error: {exc}", file=sys.stderr)
            worst = 2
            continue
        except PlanningError as exc:
            # Not expected (plan() reports what a move breaks as a verdict), but one move the planner
            # fails on must not keep the moves after it from being checked.
            if args.debug:
                raise
            print(f"motionctl: {exc}", file=sys.stderr)
            worst = max(worst, 1)
            continue
        report = result.report
        if args.json:
            print(json.dumps(report.to_dict(), allow_nan=False))
        else:
            if index:
                print()
            print(render_check(report))
        if not result.ok:
            worst = max(worst, 1)
    return worst
