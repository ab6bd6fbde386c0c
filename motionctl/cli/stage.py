"""``motionctl serve`` (a rig daemon) and ``motionctl stage`` (an operator station, for scripts)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path

from motionctl.cli.exits import EXIT_FAULT, EXIT_OK
from motionctl.errors import InputError

FINAL = ("done", "stopped", "faulted", "e-stopped")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run one rig as a daemon on the stage network (Zenoh)",
                       description="Own one rig (drives, planning, takes) and show it on the stage network: status "
                       "at 20 Hz, events, and commands from operator stations (docs/stage-network.md).")
    p.add_argument("--stage-net", required=True, metavar="FILE", help="the stage network file")
    p.add_argument("--rig", required=True, metavar="NAME", help="which [[rig]] of the file this daemon is")
    p.add_argument("--move", metavar="MOVE", help="a move to load at once (default: the rig's move in the file)")
    p.add_argument("--sim", action="store_true", help="drive simulated drives over a real wire (the default "
                   "unless --hw names hardware)")
    p.add_argument("--transport", choices=("serial", "can"), default=None, help="with --sim: the wire")
    p.add_argument("--clock", choices=("wall", "sim"), default="wall",
                   help="with --sim: wall (real time) or sim (simulated lock-step time paced to the wall)")
    p.add_argument("--hw", metavar="URL", help="transport URL of real drives (overrides the rig's)")
    p.add_argument("--takes", default="takes", help="directory for takes (default: ./takes)")
    p.add_argument("--insecure", action="store_true",
                   help="accept commands that move the rig without [security] (a closed test network only)")
    p.set_defaults(handler=run_serve)

    p = sub.add_parser("stage", help="an operator station for scripts: status, load, go, run, stop, estop",
                       description="Ask the rigs of a stage network for things, as the station named by --as. "
                       "Commands that move a rig wait until it is at rest again: a rig stops in a controlled "
                       "way when the station that moved it leaves.")
    p.add_argument("--net", required=True, metavar="FILE", help="the stage network file")
    p.add_argument("--as", dest="station", metavar="STATION", help="the [[station]] to join as (default: the first)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--timeout", type=float, default=600.0, help="longest wait for a rig to come to rest (s)")
    p.add_argument("--renew", action="store_true", help="certs: issue every node's certificate again")
    p.add_argument("--timecode", action="store_true",
                   help="go: the moves will run on the stage's timecode; run: arm them, and be the stage's "
                   "timecode master (from 2 s before the earliest start timecode) until they are done: each rig "
                   "starts its frame 0 on its start timecode")
    p.add_argument("--preroll", type=float, default=2.0, help="run --timecode: seconds of timecode before the "
                   "earliest start (default 2)")
    p.add_argument("verb", choices=("status", "load", "go", "run", "stop", "estop", "reset", "certs", "demo"),
                   help="certs makes the stage's CA and a certificate for every node of the file ([security]); "
                   "demo starts every rig of the file as a simulated daemon, runs their moves together on the "
                   "stage's timecode from this station, and ends them")
    p.add_argument("rigs", nargs="*", metavar="RIG", help="the rigs (default: every rig of the file); for "
                   "load: RIG MOVE")
    p.set_defaults(handler=run_stage)


def _load_net(path: str):
    from motionctl.stage.netfile import load_stage_net
    return load_stage_net(path)


def run_serve(args: argparse.Namespace) -> int:
    from motionctl.stage.daemon import RigDaemon
    from motionctl.tui.controller import Settings

    net = _load_net(args.stage_net)
    try:
        net.rig(args.rig)
    except KeyError as exc:
        raise InputError(f"--rig: {exc.args[0]}") from None
    sim = args.sim or args.hw is None
    if args.clock == "sim" and not sim:
        raise InputError("--clock sim needs --sim (simulated time needs simulated drives)")
    move = Path(args.move) if args.move else net.rig(args.rig).move
    if move is not None and not move.is_file():
        raise InputError(f"--move {move}: no such move file")
    settings = Settings(sim=sim, transport=(args.transport or "serial") if sim else None, hw=args.hw,
                        takes_dir=Path(args.takes), clock=args.clock)
    daemon = RigDaemon(net, args.rig, settings, insecure=args.insecure, move=move).start()
    print(f"motionctl serve: {args.rig} on stage {net.stage} at {net.endpoint(net.rig(args.rig))}", flush=True)

    signal.signal(signal.SIGTERM, lambda signum, frame: daemon.leave())
    signal.signal(signal.SIGINT, lambda signum, frame: daemon.leave())
    daemon.serve()            # until a signal; then a controlled stop if the rig moves, and off the stage
    return EXIT_OK


def run_stage(args: argparse.Namespace) -> int:
    from motionctl.stage.messages import Verb
    from motionctl.stage.station import Station

    net = _load_net(args.net)
    if args.verb == "certs":
        from motionctl.stage.certs import stage_certs
        written = stage_certs(net, renew=args.renew)
        print("\n".join(written) if written else "every certificate is there already (--renew to issue them again)")
        return EXIT_OK
    if args.verb == "demo":
        return _demo(args, net)
    verb = Verb(args.verb)
    names = [r.name for r in net.rigs]
    move = ""
    rigs = list(args.rigs)
    if verb is Verb.LOAD:
        if len(rigs) != 2:
            raise InputError("stage load takes RIG MOVE")
        rigs, move = rigs[:1], str(Path(rigs[1]).resolve())
    for rig in rigs:
        if rig not in names:
            raise InputError(f'no rig named "{rig}" in {args.net} (its rigs: {", ".join(names)})')
    rigs = rigs or names
    try:
        station = Station(net, args.station)
    except KeyError as exc:
        raise InputError(f"--as: {exc.args[0]}") from None
    watched = verb.moves                     # only a station that moves a rig is watched (its token)
    with station.open(on_event=None if args.json or not watched else _print_event, token=watched):
        if verb in (Verb.STOP, Verb.ESTOP):
            return _stop_all(station, rigs, verb, args.json)
        reachable = station.join(rigs)
        if verb is Verb.STATUS:
            return _status(station, rigs, reachable, args.json)
        group = tuple(rigs) if verb is Verb.GO else ()      # rigs sent to their starts together run together
        replies = {rig: station.ask(rig, verb, move=move, timecode=args.timecode, group=group) for rig in rigs}
        ok = all(r.accepted for r in replies.values())
        master = None
        on_timecode = args.timecode or any(r.status.get("on_timecode") for r in replies.values())
        if ok and verb is Verb.RUN and on_timecode:      # armed on the stage's timecode: someone must roll it
            master, why = station.master_for(replies, args.preroll)
            if master is None:
                for rig in rigs:
                    station.ask(rig, Verb.STOP, timeout=5.0)         # disarm: nothing starts without a master
                replies = {rig: replace(r, accepted=False, reason=why) for rig, r in replies.items()}
                ok = False
        try:
            if ok and verb in (Verb.GO, Verb.RUN):
                ok = _wait_for_rest(station, replies, verb, args.timeout)
        finally:
            if master is not None:
                master.stop()
        _report(replies, station, args.json)
        if master is not None and not args.json:
            _start_agreement(station, rigs)
        return EXIT_OK if ok else EXIT_FAULT


def _stop_all(station, rigs: list[str], verb, as_json: bool) -> int:
    """Stop or E-stop every rig at once (a thread each, a short timeout): one rig that does not answer
    never holds up the others; no waiting to join first (a query goes out as soon as a link is up)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(rigs)) as pool:
        futures = {rig: pool.submit(station.ask, rig, verb, timeout=3.0) for rig in rigs}
        replies = {rig: future.result() for rig, future in futures.items()}
    if any(not r.accepted for r in replies.values()):       # a link that was not up yet: once more
        with ThreadPoolExecutor(max_workers=len(rigs)) as pool:
            again = {rig: pool.submit(station.ask, rig, verb, timeout=3.0)
                     for rig, r in replies.items() if not r.accepted}
            replies.update({rig: future.result() for rig, future in again.items()})
    _report(replies, station, as_json)
    return EXIT_OK if all(r.accepted for r in replies.values()) else EXIT_FAULT


def _wait_for_rest(station, replies: dict, verb, timeout: float) -> bool:
    """Keep the station (and so the rigs' owner) on the stage until every rig is at rest again (a status
    newer than the rig's reply: the stream may still carry statuses from before the command)."""
    wanted = ("at start",) if verb.value == "go" else ("done",)
    rest = FINAL + ("at start", "idle")
    ok = True
    rigs = list(replies)
    try:
        for rig in rigs:
            after = int(replies[rig].status.get("seq", 0))
            status = station.wait_for(rig, lambda s: s.seq > after and s.state in rest and not s.busy, timeout)
            ok = ok and status is not None and status.state in wanted
    except KeyboardInterrupt:
        from motionctl.stage.messages import Verb
        for rig in rigs:
            station.ask(rig, Verb.STOP, timeout=5.0)
        raise
    return ok


def _start_agreement(station, rigs: list[str]) -> None:
    """Each rig's start against the timecode (its own lock), and how far apart the rigs started (wall)."""
    statuses = [station.latest.get(rig) for rig in rigs]
    started = [s for s in statuses if s is not None and s.run_started_unix_ns]
    for s in started:
        error = f"{s.start_error_ticks:+.2f} ticks" if s.start_error_ticks is not None else "?"
        print(f"{s.rig}: started on {s.start} ({error} against the timecode)")
    if len(started) > 1:
        times = [s.run_started_unix_ns for s in started]
        print(f"start spread between the rigs: {(max(times) - min(times)) / 1e6:.2f} ms (their wall clocks)")


def _status(station, rigs: list[str], reachable: set[str], as_json: bool) -> int:
    rows = []
    for rig in rigs:
        status = station.wait_for(rig, lambda s: True, 1.0) if rig in reachable else None
        rows.append({"rig": rig, "reachable": rig in reachable,
                     **({} if status is None else {k: v for k, v in status.__dict__.items() if k != "rig"})})
    if as_json:
        print(json.dumps({"stage": station.net.stage, "rigs": rows}, indent=2))
    else:
        for row in rows:
            if not row["reachable"]:
                print(f"{row['rig']:<16} not on the stage network")
                continue
            line = f"{row['rig']:<16} {row.get('state', '?'):<16} {row.get('move', '') or '-':<24}"
            extra = [f"owner {row['owner']}" if row.get("owner") else "", row.get("verdict", "") if
                     row.get("verdict") not in ("legal", "") else "", f"FAULT: {row['fault']}" if row.get("fault") else ""]
            print(line + "  ".join(e for e in extra if e))
    return EXIT_OK if all(r["reachable"] for r in rows) else EXIT_FAULT


def _report(replies: dict, station, as_json: bool) -> None:
    if as_json:
        out = {rig: {"accepted": r.accepted, "reason": r.reason,
                     "state": (station.latest.get(rig).state if station.latest.get(rig) else r.status.get("state", ""))}
               for rig, r in replies.items()}
        print(json.dumps(out, indent=2))
        return
    for rig, reply in replies.items():
        state = station.latest.get(rig)
        where = f" ({state.state})" if state is not None else ""
        print(f"{rig}: {reply.verb} " + ("accepted" if reply.accepted else f"refused: {reply.reason}") + where)


def _print_event(event) -> None:
    print(f"{event.rig}: {event.message}", file=sys.stderr, flush=True)


def _demo(args: argparse.Namespace, net) -> int:
    """Every rig of the file as a simulated daemon (a process each), then go to start and run from here."""
    import subprocess
    import time

    from motionctl.errors import HardwareError

    if net.security is not None:
        from motionctl.stage.certs import stage_certs
        for line in stage_certs(net):
            print(f"made {line}")
    daemons = []
    try:
        for rig in net.rigs:
            if rig.move is None:
                raise InputError(f"{net.file}: rig {rig.name} has no move to run (its move key)")
            daemons.append(subprocess.Popen(
                [sys.executable, "-m", "motionctl", "serve", "--stage-net", str(args.net), "--rig", rig.name, "--sim",
                 "--clock", "sim", "--takes", f"takes/{rig.name}"], stdout=subprocess.PIPE, text=True))
            line = daemons[-1].stdout.readline().strip()
            if not line:
                raise HardwareError(f"the daemon of {rig.name} did not start")
            print(line)
        names = [r.name for r in net.rigs]
        from motionctl.stage.station import Station
        with Station(net, args.station).open(on_event=_print_event) as station:
            deadline = time.monotonic() + 60
            while not all(station.wait_for(n, lambda s: s.state == "idle", 0.5) for n in names):
                if time.monotonic() > deadline:
                    raise HardwareError("the rigs did not come up within 60 s")
            from motionctl.stage.messages import Verb
            for verb in (Verb.GO, Verb.RUN):          # together on the stage's timecode, this station its master
                replies = {rig: station.ask(rig, verb, timecode=True, group=tuple(names) if verb is Verb.GO else ())
                           for rig in names}
                master = None
                if verb is Verb.RUN and all(r.accepted for r in replies.values()):
                    master, why = station.master_for(replies, args.preroll)
                    if master is None:
                        replies = {rig: replace(r, accepted=False, reason=why) for rig, r in replies.items()}
                try:
                    ok = all(r.accepted for r in replies.values()) and _wait_for_rest(station, replies, verb,
                                                                                       args.timeout)
                finally:
                    if master is not None:
                        master.stop()
                _report(replies, station, False)
                if not ok:
                    return EXIT_FAULT
            _start_agreement(station, names)
            _status(station, names, set(names), False)
        return EXIT_OK
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(15)
            except subprocess.TimeoutExpired:
                daemon.kill()
