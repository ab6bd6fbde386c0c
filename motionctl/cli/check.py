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
from dataclasses import asdict
from pathlib import Path

from motionctl.cli.render import render_check, render_together
from motionctl.errors import InputError, PlanningError


def add_plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=int, choices=(250, 500, 1000), default=None,
                   help="servo rate in Hz (default: the rig's)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check a move against its rig's limits and its stage",
                       description="Plan the move at the servo rate and check every tick against position, "
                       "velocity, acceleration and jerk limits and clearance to the set, the keep-out zones and "
                       "the rig itself.  Exit 0 legal, 1 illegal, 2 bad input.")
    p.add_argument("moves", nargs="*", metavar="MOVE", help="move file(s) (.toml)")
    p.add_argument("--stage-net", metavar="FILE", help="check the moves of a stage network file's rigs (each "
                   "[[rig]]'s move) on their own and together: clearance between the rigs' links at every tick "
                   "of one timeline (by their start timecodes), against the file's margin")
    add_plan_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable report (one JSON object per move)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.stage_net:
        return _together(args)
    if not args.moves:
        raise InputError("name a move to check (or --stage-net FILE)")
    worst, _ = _each(args, args.moves)
    return worst


def _each(args: argparse.Namespace, moves: list[str]) -> tuple[int, list]:
    """Check each move on its own; (the worst exit code, the plans of the moves that could be planned)."""
    from motionctl.planner import plan_scene
    from motionctl.spec import load_scene
    worst, plans = 0, []
    for index, path in enumerate(moves):
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
        plans.append(result)
        if args.json:
            print(json.dumps(report.to_dict(), allow_nan=False))
        else:
            if index:
                print()
            print(render_check(report))
        if not result.ok:
            worst = max(worst, 1)
    return worst, plans


def _together(args: argparse.Namespace) -> int:
    """The stage network file's rigs: each move on its own, then all of them together."""
    from motionctl.planner.together import check_together
    from motionctl.stage.netfile import load_stage_net

    if args.moves:
        raise InputError("--stage-net takes the moves from the file: name no MOVE")
    net = load_stage_net(args.stage_net)
    missing = [r.name for r in net.rigs if r.move is None]
    if missing:
        raise InputError(f"{net.file}: rig {missing[0]} names no move to check (its move key)")
    worst, plans = _each(args, [str(r.move) for r in net.rigs])
    if worst == 2 or len(plans) != len(net.rigs):
        return max(worst, 1)
    for rig, plan in zip(net.rigs, plans):
        if plan.rig.file and Path(plan.rig.file).resolve() != rig.rig_file.resolve():
            raise InputError(f"{net.file}: rig {rig.name}'s move {rig.move} is for {plan.rig.file}, not {rig.rig_file}")
    if not all(p.trajectory is not None for p in plans):
        return 1
    report = check_together({r.name: p for r, p in zip(net.rigs, plans)}, net.margin_m)
    if args.json:
        print(json.dumps({"together": True, "ok": report.ok, "margin_m": report.margin_m, "rate_hz": report.rate_hz,
                          "offsets_ticks": report.offsets, "violations": report.violations(),
                          "pairs": [asdict(p) for p in report.pairs]}, allow_nan=False))
    else:
        print()
        print(render_together(report))
    return max(worst, 0 if report.ok else 1)
