"""``motionctl check MOVE...``: is this move legal on its rig in its stage?

Exit 0 when every move is legal, 1 when any is not, 2 when any file is bad input (the others are
still checked and reported).  ``--json`` prints one JSON object per move, one per line.
"""

from __future__ import annotations

import argparse
import json
import sys

from motionctl.cli.render import render_check
from motionctl.errors import InputError
from motionctl.planner import check_keys
from motionctl.spec import load_scene


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check a move against its rig's limits and its stage",
                       description="Solve every key of the move and report unreachable keys and limits "
                       "broken.  Exit 0 legal, 1 illegal, 2 bad input.")
    p.add_argument("moves", nargs="+", metavar="MOVE", help="move file(s) (.toml)")
    p.add_argument("--json", action="store_true", help="machine-readable report (one JSON object per move)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    worst = 0
    for index, path in enumerate(args.moves):
        try:
            report = check_keys(load_scene(path))
        except InputError as exc:
            if args.debug:
                raise
            print(f"motionctl: error: {exc}", file=sys.stderr)
            worst = 2
            continue
        if args.json:
            print(json.dumps(report.to_dict(), allow_nan=False))
        else:
            if index:
                print()
            print(render_check(report))
        if not report.ok:
            worst = max(worst, 1)
    return worst
