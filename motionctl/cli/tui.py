"""``motionctl tui``: the operator's terminal UI."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionctl.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help="the operator's terminal UI (jog, teach, go to start, arm, run, E-stop)",
                       description="Run a shoot from the keyboard: the move library with check verdicts, the rig's "
                       "axes, transport, timecode, jog & teach, takes and a log.  Press ? for every key; space is "
                       "E-stop on every screen.")
    p.add_argument("move", metavar="MOVE", nargs="?", help="a move to load at once")
    p.add_argument("--sim", action="store_true", help="drive simulated drives over a real wire (the default "
                   "unless --hw names hardware)")
    p.add_argument("--transport", choices=("serial", "can"), default=None,
                   help="with --sim: simulate over this wire (default serial: simulated drives in their own "
                   "process on a pty; can: CiA 402 drives on python-can's virtual bus, in this process)")
    p.add_argument("--hw", metavar="URL", help="transport URL of real drives (overrides the rig's)")
    p.add_argument("--moves", action="append", default=[], metavar="DIR",
                   help="a folder of moves for the library (repeatable; default ./moves)")
    p.add_argument("--takes", default="takes", help="directory for takes (default: ./takes)")
    p.add_argument("--rate", type=int, choices=(250, 500, 1000), default=None, help="servo rate (default: the rig's)")
    p.add_argument("--ltc", metavar="FILE.wav", help="offer this LTC file as a timecode source (t cycles to it)")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="with --sim: inject a simulator fault (see motionctl sim --help)")
    p.add_argument("--clock", choices=("wall", "sim"), default="wall",
                   help="with --sim: wall (default) is real time, the rehearsal; sim keeps simulated lock-step time "
                   "paced to the wall clock (a busy machine slows the rig down instead of faulting it)")
    p.add_argument("--stage", metavar="FILE", help="the operator station of a stage network file instead: every "
                   "rig of the stage in one table, driven as one group (docs/stage-network.md)")
    p.add_argument("--as", dest="station", metavar="STATION", help="with --stage: the [[station]] to join as")
    p.set_defaults(handler=run_tui)


def run_tui(args: argparse.Namespace) -> int:
    if args.stage:
        return _stage_station(args)
    from motionctl.tui.app import MotionctlApp
    from motionctl.tui.controller import Settings
    from motionctl.tui.library import Library
    from motionctl.tui.rig_process import RigProcess

    sim = args.sim or args.hw is None
    if args.transport and not sim:
        raise InputError("--transport needs --sim")
    if args.clock == "sim" and not sim:
        raise InputError("--clock sim needs --sim (simulated time needs simulated drives)")
    folders = [Path(d) for d in (args.moves or ["moves"])]
    for folder in folders:
        if not folder.exists():
            raise InputError(f"--moves {folder}: no such folder")
    move = Path(args.move) if args.move else None
    if move is not None and not move.is_file():
        raise InputError(f"{move}: no such move file")
    if args.ltc and not Path(args.ltc).is_file():
        raise InputError(f"--ltc {args.ltc}: no such file")
    transport = (args.transport or "serial") if sim else None
    settings = Settings(sim=sim, transport=transport, hw=args.hw, takes_dir=Path(args.takes),
                        rate_hz=args.rate, ltc_file=args.ltc, faults=list(args.fault), clock=args.clock)
    controller = RigProcess(settings, Library(folders, args.rate))
    MotionctlApp(controller, move).run()
    return 0


def _stage_station(args: argparse.Namespace) -> int:
    from motionctl.stage.netfile import load_stage_net
    from motionctl.stage.operator import StageOperator
    from motionctl.tui.stage_app import StageApp

    net = load_stage_net(args.stage)
    try:
        operator = StageOperator(net, args.station)
    except KeyError as exc:
        raise InputError(f"--as: {exc.args[0]}") from None
    operator.open()
    try:
        StageApp(operator).run()
    finally:
        operator.close()
    return 0
