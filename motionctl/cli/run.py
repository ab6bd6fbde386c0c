"""``motionctl run`` (dry run or real run of a move), ``motionctl sim``, ``motionctl takes``, ``motionctl hw info``."""

from __future__ import annotations

# The planner and the file loaders are imported inside the handlers: building the parser (--help, tc)
# must not pay for them (a pipeline calls motionctl in loops).

import argparse
import hashlib
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from textwrap import shorten

from motionctl.cli.check import add_plan_options
from motionctl.cli.exits import EXIT_FAULT, EXIT_ILLEGAL, EXIT_INTERRUPTED, EXIT_OK
from motionctl.cli.progress import progress_bar
from motionctl.cli.render import render_check, table
from motionctl.errors import HardwareError, InputError


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run a checked move on the drives (or the simulator: --sim)",
                       description="Plan and check the move, then go to start (reduced speed), arm, run and "
                       "record a take.  Refuses a move that is not legal.  Ctrl-C once: controlled stop; twice: "
                       "E-stop.  Exit 0 when the move ran to its end.")
    r.add_argument("move", metavar="MOVE")
    r.add_argument("--sim", action="store_true", help="run against simulated drives on a real wire")
    r.add_argument("--clock", choices=("wall", "sim"), default="wall",
                   help="with --sim: wall (default) runs in real time, the operator's rehearsal; sim runs the whole "
                   "take in simulated lock-step time, as fast as the machine allows, and two runs write the same take")
    r.add_argument("--hw", metavar="URL", help="transport URL overriding the rig's [hardware] transport")
    add_plan_options(r)
    r.add_argument("--transport", choices=("serial", "can"), default=None,
                   help="with --sim: simulate over this wire instead of the rig's (serial: a pty; can: the virtual bus)")
    r.add_argument("--override", "--speed", dest="override", type=float, default=100.0, metavar="PCT",
                   help="rehearsal speed override in percent (0-100); the path stays the same")
    r.add_argument("--json", action="store_true", help="print the run summary as JSON")
    r.add_argument("--freed", metavar="HOST:PORT", default=None,
                   help="stream the measured camera as FreeD D1 (default host 127.0.0.1, port 40000)")
    r.add_argument("--otrk", metavar="HOST:PORT", default=None,
                   help="stream the measured camera as OpenTrackIO JSON over UDP (default 127.0.0.1:55555)")
    r.add_argument("--vcam-bind", metavar="ADDR", default="127.0.0.1",
                   help="local interface address the vcam sockets bind to (default loopback; name one to send "
                   "to another machine)")
    r.add_argument("--timecode", metavar="SOURCE", default=None,
                   help="chase timecode: internal[:HH:MM:SS:FF] (a generator rolling when armed; default 2 s "
                   "before the move's start) or ltc:FILE.wav; frame 0 starts exactly on the move's start timecode")
    r.add_argument("--takes", default="takes", help="directory for takes (default: ./takes)")
    r.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="with --sim: inject a simulator fault (see motionctl sim --help); host-stall@T+D freezes "
                   "motionctl's own servo thread for D seconds at T seconds into the run")
    r.set_defaults(handler=run_move)

    s = sub.add_parser("sim", help="start simulated drives for a rig (prints the device to connect to)",
                       description="Simulated drives for RIG on a serial pseudo-terminal or a CAN bus, until Ctrl-C: "
                       "connect a run or the TUI to them with --hw.  --fault injects what real drives and links "
                       "do (see simulator/faults.py).")
    s.add_argument("--rig", required=True)
    s.add_argument("--transport", choices=("serial", "can"), default="serial")
    s.add_argument("--can", default=None, help="CAN URL for --transport can, e.g. can://socketcan/vcan0")
    s.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="drop=P, corrupt=P, delay=MS, stall@T+D, drive:AXIS@T[+D]=CODE, following:AXIS@T, heartbeat@T, "
                   "unplug@T, busoff@T; CAN: warning:AXIS@T+D=CODE, reboot:AXIS@T, modelag[:AXIS]=MS, "
                   "syncwatch[:AXIS]=N, refuse:AXIS/0xINDEX=ABORT (T, D in seconds after the first setpoint)")
    s.add_argument("--seed", type=int, default=1)
    s.set_defaults(handler=run_sim)

    t = sub.add_parser("takes", help="list recorded takes with their summaries",
                       description="The takes in --dir (default takes/), newest last: move, how each ended, run "
                       "time, ticks and faults; cut-short takes included.")
    t.add_argument("--dir", default="takes")
    t.add_argument("--json", action="store_true")
    t.set_defaults(handler=list_takes_cmd)

    h = sub.add_parser("hw", help="hardware information",
                       description="hw info: the rig's link budget (CAN bus load against its bitrate, or serial "
                       "bandwidth) and, for CAN, every SDO write the drives get at start-up.")
    h.add_argument("what", choices=("info",))
    h.add_argument("--rig", required=True)
    h.add_argument("--hw", metavar="URL")
    h.set_defaults(handler=hw_info)


def _simulator_command(rig_file: str, transport: str, faults: list[str], *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "simulator", "--rig", rig_file, "--transport", transport,
           "--parent-pid", str(os.getpid()), *extra]
    for spec in faults:
        cmd += ["--fault", spec]
    return cmd


def start_simulator(rig, url: str | None, faults: list[str], *, lockstep: bool = False):
    """A simulator next to the run: a separate process for serial rigs (on a pty), KUKA RSI rigs (a robot
    controller sending to 127.0.0.1) and UR rigs (a controller on 127.0.0.1), so that it keeps its own time;
    the in-process bus for CAN; for a rig on several controllers, each group's in a process of its own
    (a CAN group's drives served over TCP, as socketcand serves a bus).
    In simulated time (``lockstep``) all run in this process, on their wire, keeping the run's time.

    Returns (a function that stops it, the transport URL to open, the device when it is in this process).
    """
    target = url or (rig.hardware.transport if rig.hardware else "serial://")
    if target.startswith("group://") and not lockstep:
        return _start_group_simulators(rig, faults)
    if target.startswith("can://") or lockstep:
        import simulator
        device, address = simulator.launch(rig, target, _injector(faults), lockstep=lockstep)
        return device.stop, address, device
    return _simulator_process(rig.file, target, faults)


def _injector(faults: list[str]):
    from simulator.faults import FaultInjector, parse_fault
    injector = FaultInjector()
    for spec in faults:
        injector.add(parse_fault(spec))
    return injector


def _simulator_process(rig_file: str, target: str, faults: list[str], group: str | None = None):
    """The simulator in a process of its own for a serial, RSI or UR wire: (stop, URL to open, None).

    A session of its own, too: the simulated drives stand for another machine, and the operator's Ctrl-C
    (sent by the terminal to the whole foreground process group) is for motionctl -- a controlled stop the
    drives must live through -- not for them.  stop() ends them; orphaned, they end on their own."""
    from urllib.parse import urlsplit

    kind = next((k for k in ("rsi", "rtde", "can") if target.startswith(f"{k}://")), "serial")
    extra: tuple[str, ...] = ("--group", group) if group else ()
    if kind == "can":
        extra += ("--can", "socketcand")        # its drives served over TCP on 127.0.0.1
    if kind == "rsi":
        from simulator import free_udp_port, rsi_cycle_ms
        port = free_udp_port()
        extra += ("--send-to", f"127.0.0.1:{port}", "--ipo-ms", str(rsi_cycle_ms(target)))
    process = subprocess.Popen(_simulator_command(rig_file, kind, faults, *extra), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               cwd=Path(__file__).resolve().parents[2], start_new_session=True)
    line = process.stdout.readline()
    if not any(word in line for word in ("ready at", "sending to", "ready rtde://")):
        process.kill()
        raise HardwareError(f"the simulator did not start: {line.strip() or process.stderr.read().strip()}")

    def stop() -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
    if kind == "rsi":
        query = urlsplit(target).query
        return stop, f"rsi://127.0.0.1:{port}" + (f"?{query}" if query else ""), None
    if kind == "rtde":
        return stop, line.split(" ready ", 1)[1].split(" ", 1)[0], None
    if kind == "can":
        return stop, line.split(" ready at ", 1)[1].strip(), None
    return stop, f"serial://{line.rsplit(' ', 1)[-1].strip()}?baud=1000000", None


def _start_group_simulators(rig, faults: list[str]):
    """Real time, a rig on several controllers: each group's simulated controller in a process of its own
    (a CAN group's drives served over TCP as socketcand serves a bus: in this process, at 500 Hz, they
    and the host starved each other).  A fault that names an axis goes to that axis' controller."""
    from urllib.parse import urlencode

    from simulator.faults import parse_fault

    parsed = [(spec, parse_fault(spec)) for spec in faults]
    stops, urls = [], {}
    try:
        for group in rig.hardware.groups:
            own = [spec for spec, fault in parsed if fault.concerns(group.address)]
            stop, urls[group.name], _ = _simulator_process(rig.file, group.transport, own, group.name)
            stops.append(stop)
    except BaseException:
        for stop in stops:
            stop()
        raise

    def stop_all() -> None:
        for stop in stops:
            stop()
    return stop_all, f"{rig.hardware.transport}?{urlencode(urls)}", None


def _host_stall(specs: list[str]) -> tuple[tuple[float, float] | None, list[str]]:
    """Split ``--fault`` specs: ``host-stall@T+D`` is for motionctl itself, the rest for the simulator."""
    import re

    stall, rest = None, []
    for spec in specs:
        if not spec.startswith("host-stall"):
            rest.append(spec)
            continue
        match = re.fullmatch(r"host-stall@([0-9.]+)\+([0-9.]+)", spec.strip())
        if not match:
            raise InputError(f'bad fault "{spec}": expected host-stall@T+D (T s into the run, D s long, e.g. '
                             "host-stall@2+0.05)")
        stall = (float(match[1]), float(match[2]))
    return stall, rest


def run_move(args: argparse.Namespace) -> int:
    from motionctl.planner import plan_scene
    from motionctl.spec import load_scene
    from motionctl.hal import open_driver
    from motionctl.runtime.session import run_take
    from motionctl.runtime.streamer import RunState

    if not 0 < args.override <= 100:
        raise InputError(f"--override must be within 0..100 %, got {args.override:g}")
    digest = hashlib.sha256(Path(args.move).read_bytes()).hexdigest() if Path(args.move).is_file() else ""
    scene = load_scene(args.move)
    if args.timecode and args.override != 100:
        raise InputError("--timecode runs at the planned speed: drop --override")
    with progress_bar(f"planning {args.move}") as update:
        plan = plan_scene(scene, args.rate, progress=update)
    if not plan.ok:
        print(render_check(plan.report))
        print("\nNot run: the move is not legal (nothing runs that breaks a limit or a clearance).", file=sys.stderr)
        return EXIT_ILLEGAL
    stop_sim = device = clock = None
    url = args.hw
    host_stall, device_faults = _host_stall(args.fault)
    if args.clock == "sim":
        if not args.sim:
            raise InputError("--clock sim needs --sim (simulated time needs simulated drives)")
        from motionctl.runtime.clock import SimClock
        clock = SimClock(plan.rate_hz)
    if args.sim:
        wire = args.hw
        if args.transport == "serial":
            wire = "serial://"
        elif args.transport == "can":
            import simulator

            wire = args.hw if args.hw and args.hw.startswith("can://") else simulator.virtual_can_url()
        stop_sim, url, device = start_simulator(scene.rig, wire, device_faults, lockstep=clock is not None)
    elif args.transport:
        raise InputError("--transport needs --sim (without it the rig's [hardware] or --hw names the wire)")
    elif args.fault:
        raise InputError("--fault needs --sim (faults are injected by the simulator)")
    interrupts = {"count": 0}

    def on_sigint(*_: object) -> None:
        interrupts["count"] += 1

    def interrupt(streamer) -> None:
        if interrupts["count"] == 1 and not interrupts.get("stopped"):
            interrupts["stopped"] = True
            print("stopping (Ctrl-C again for E-stop)", file=sys.stderr)
            streamer.stop()
        elif interrupts["count"] >= 2 and not interrupts.get("estopped"):
            interrupts["estopped"] = True
            streamer.estop()

    if clock is None:
        from motionctl.runtime.clock import realtime_process
        realtime_process()              # every thread started from here on inherits it
    previous = signal.signal(signal.SIGINT, on_sigint)
    fps = float(plan.move.rate.fps)
    try:
        if not args.sim and str(url or getattr(scene.rig.hardware, "transport", "")).startswith("rsi://"):
            print(f"listening for the KUKA controller on {url or scene.rig.hardware.transport}: start the motionctl "
                  "program on the pendant now", file=sys.stderr)
        driver = (open_driver(scene.rig, url, rate_hz=plan.rate_hz) if clock is None else
                  open_driver(scene.rig, url, rate_hz=plan.rate_hz, lockstep=True, now_ns=clock.now_ns))
        if clock is not None:
            from motionctl.runtime.simtime import lock_step
            lock_step(clock, device, driver)
        with driver, progress_bar(f"{plan.move.name}", enabled=None if not args.json else False) as update:
            if not args.json:
                print(f"{plan.move.name}: {plan.trajectory.duration_s:.2f} s at {plan.rate_hz} Hz on {driver.url}"
                      + (f" at {args.override:g} %" if args.override != 100 else ""))

            def monitor(streamer) -> None:
                interrupt(streamer)
                frame = min(int(streamer.run_time * fps), plan.report.frames - 1)
                update(f"{streamer.state.value}  frame {frame}  {plan.move.timecode_at(frame)}",
                       streamer.run_time / max(plan.trajectory.duration_s, 1e-9))

            def on_state(state, message) -> None:
                if not args.json:
                    print(f"  {state.value}" + (f": {message}" if message else ""))

            source = None
            if args.timecode:
                from motionctl.runtime.chase import timecode_source
                source = timecode_source(args.timecode, plan.move.rate, plan.move.start,
                                         clock=clock.now_ns if clock is not None else None)
            publisher = _vcam_publisher(args, scene, driver)
            from dataclasses import replace
            from motionctl.runtime.states import StreamerOptions
            result = run_take(plan, driver, takes_dir=args.takes, speed=args.override / 100.0, interrupt=monitor,
                              on_state=on_state, timecode=source, vcam=publisher, clock=clock,
                              options=replace(StreamerOptions(), host_stall=host_stall),
                              meta={"move_sha256": digest})
    finally:
        signal.signal(signal.SIGINT, previous)
        if stop_sim is not None:
            stop_sim()
    if args.json:
        import json
        print(json.dumps({"state": result.state.value, "take": str(result.take) if result.take else None,
                          "start_error": result.start_error, **result.summary}, default=str))
        return _exit_code(result.state, interrupts)
    print(render_summary(result, plan))
    return _exit_code(result.state, interrupts)


def _exit_code(state, interrupts: dict) -> int:
    """0 the take ran to its end; 130 it was stopped by Ctrl-C as asked; 4 it faulted, was E-stopped, or
    stopped for any other reason."""
    from motionctl.runtime.states import RunState
    if state is RunState.DONE:
        return EXIT_OK
    if state is RunState.STOPPED and interrupts.get("stopped") and not interrupts.get("estopped"):
        return EXIT_INTERRUPTED
    return EXIT_FAULT


def destination(text: str | None, default_port: int):
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``HOST`` -> (host, port); host defaults to loopback."""
    if text is None:
        return None
    host, _, port = text.rpartition(":") if ":" in text else ("", "", text) if text.isdigit() else (text, "", "")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise InputError(f'"{text}" is not HOST:PORT') from None
    if not 0 < number < 65536:
        raise InputError(f'"{text}": port must be within 1..65535')
    return (host or "127.0.0.1", number)


def _vcam_publisher(args, scene, driver):
    if not (args.freed or args.otrk):
        return None
    from motionctl.runtime.vcam_out import VcamPublisher

    return VcamPublisher(vcam_sender(args), scene.rig, scene.stage, driver.axis_names)


def vcam_sender(args):
    """A VcamSender for --freed/--otrk/--vcam-bind; bad addresses are one-line input errors."""
    from motionctl.vcam import FREED_DEFAULT_PORT, OPENTRACKIO_PORT, VcamSender

    freed, otrk = destination(args.freed, FREED_DEFAULT_PORT), destination(args.otrk, OPENTRACKIO_PORT)
    try:
        return VcamSender(freed, otrk, bind=args.vcam_bind)
    except (ValueError, OSError) as exc:
        # The library names its keyword arguments; on the command line they are flags.
        words = str(exc).replace("pass bind= the address", "pass --vcam-bind the address").replace(
            "pass multicast=True", "multicast is not supported on the command line")
        raise InputError(f"vcam output: {words}") from None


def render_summary(result, plan) -> str:
    summary = result.summary
    rig = plan.rig
    lines = [f"Run: {result.state.value}" + (f" - {summary['faults'][0]}" if summary["faults"] else "")]
    if summary.get("start_error_ticks") is not None:
        lines.append(f"  timecode: frame 0 started {summary['start_error_ticks']:+.2f} servo ticks from "
                     f"{plan.move.start.label}; max sync error {summary['max_sync_error_ticks']:.2f} ticks")
    if result.start_error is not None:
        worst = max(abs(v) for v in result.start_error)
        lines.append(f"  start error (measured - plan) max {worst:.2e} (m/rad) when armed")
    if summary.get("scheduling"):
        lines.append(f"  scheduling: {summary['scheduling']}")
    lines.append(f"  {summary['ticks']} servo ticks; loop jitter p50 {summary['p50_late_us']:.0f} us, "
                 f"p99 {summary['p99_late_us']:.0f} us, max {summary['max_late_us']:.0f} us; "
                 f"{summary['overruns']} missed deadlines")
    link = summary["link"]
    dropped = sum(link["dropped"].values()) if link.get("dropped") else 0
    lines.append(f"  link: {link['sent']} sent, {link['received']} received, {dropped} dropped"
                 + (f" ({', '.join(f'{k} {v}' for k, v in link['dropped'].items())})" if dropped else "")
                 + (f"; longest gap between cycles while enabled {link['longest_gap_ms']:.1f} ms"
                    if link.get("longest_gap_ms") else ""))
    for name, group in link.get("groups", {}).items():
        lines.append(f"    {name}: {group['sent']} sent, {group['received']} received; longest gap between "
                     f"cycles while enabled {group['longest_gap_ms']:.1f} ms")
    rows = []
    for name, value in summary["max_following_error"].items():
        axis = next((a for a in rig.axes if a.name == name), None)
        shown = f"{value * 1000:.3f} mm" if axis is None or axis.linear else f"{math.degrees(value):.4f} deg"
        if axis is None:
            shown = f"{value:.4f} enc"
        rows.append([name, shown])
    if rows:
        lines.append("  max following error:")
        lines += ["    " + line for line in table(["axis", "max"], rows)]
    vcam = link.get("vcam")
    if vcam:
        lines.append(f"  vcam: {vcam['samples']} samples ({vcam['freed_sent']} FreeD, {vcam['otrk_samples_sent']} "
                     f"OpenTrackIO), {vcam['send_errors']} send errors; measured -> datagram mean "
                     f"{vcam['freed_latency_mean_us']:.0f} us, max {vcam['freed_latency_max_us']:.0f} us")
    if result.take is not None:
        lines.append(f"  take: {result.take}")
    return "\n".join(lines)


def run_sim(args: argparse.Namespace) -> int:
    """``motionctl sim``: the simulator in this process (no child to outlive a Ctrl-C: a child started
    from here was left serving, holding the terminal's output open, when the Ctrl-C came while it was
    still starting on a loaded machine)."""
    from simulator.__main__ import main as simulator_main
    argv = ["--rig", args.rig, "--transport", args.transport, "--seed", str(args.seed)]
    for spec in args.fault:
        argv += ["--fault", spec]
    if args.can:
        argv += ["--can", args.can]
    return simulator_main(argv)


def list_takes_cmd(args: argparse.Namespace) -> int:
    import json

    from motionctl.runtime.takes import list_takes

    if not Path(args.dir).is_dir():
        raise InputError(f'no takes folder "{args.dir}"' + (" (it is a file)" if Path(args.dir).exists() else "")
                         + ": give the folder the runs wrote with --takes")
    takes = list_takes(args.dir)
    if args.json:
        print(json.dumps([{"path": str(t.path), "complete": t.complete, "duration_s": t.duration_s,
                           "rows": len(t.rows), **{k: t.meta.get(k) for k in ("move", "rig", "created", "summary")}}
                          for t in takes], default=str))
        return 0
    if not takes:
        print(f"no takes in {args.dir}")
        return 0
    rows = []
    for t in takes:
        summary = t.meta.get("summary") or {}
        state = summary.get("state", "cut short") if t.complete else "cut short"
        faults = "; ".join(summary.get("faults", [])) if t.complete else ""
        rows.append([t.path.name, str(t.meta.get("move", "?")), state, f"{t.duration_s:.2f}", str(len(t.rows)),
                     shorten(faults, 60, placeholder=" …") if faults else ""])
    print("\n".join(table(["take", "move", "ended", "run s", "ticks", "faults"], rows, right={3, 4})))
    return 0


def hw_info(args: argparse.Namespace) -> int:
    from motionctl.spec import load_rig
    rig = load_rig(args.rig)
    url = args.hw or (rig.hardware.transport if rig.hardware else None)
    if url is None:
        raise InputError(f'rig "{rig.name}" has no [hardware] section; give --hw URL')
    print(f"rig {rig.name}: transport {url}")
    for line in _link_report(rig, url):
        print(f"  {line}")
    return 0


def _link_report(rig, url: str) -> list[str]:
    """What the rig's wire carries, per servo rate, in words (each group's own for a rig on several)."""
    from motionctl.hal.driver import axis_scales
    from motionctl.hal.registry import TransportUrl
    parsed = TransportUrl.parse(url)
    names = ", ".join(s.name for s in axis_scales(rig))
    if parsed.scheme == "group":
        from dataclasses import replace
        lines = []
        for group in rig.hardware.groups:
            lines.append(f"group {group.name}: {group.transport}")
            lines += [f"  {line}" for line in _link_report(replace(rig, hardware=group), group.transport)]
        return lines
    if parsed.scheme == "can":
        from motionctl.hal.canopen.driver import bus_load_report
        return list(bus_load_report(rig))
    if parsed.scheme == "rsi":
        return [f"KUKA RSI over UDP: the robot sends one datagram every 4 ms and motionctl answers each (250 Hz "
                f"only); axes {names}"]
    if parsed.scheme == "rtde":
        return [f"Universal Robots RTDE over TCP: state and input registers every 2 ms (500 Hz only), the "
                f"control program over the secondary interface; joints {names}"]
    from motionctl.hal.serial import protocol as sp
    count = len(axis_scales(rig))
    baud = int(parsed.options.get("baud", 1_000_000))
    lines = []
    for rate in (250, 500, 1000):
        down = sp.wire_size(sp.MessageType.SETPOINT, count) * 10 * rate
        up = sp.wire_size(sp.MessageType.FEEDBACK, count) * 10 * rate
        lines.append(f"{count} axes at {rate} Hz: {down / 1000:.0f} kbit/s out, {up / 1000:.0f} kbit/s back: "
                     f"{100 * max(down, up) / baud:.0f} % of {baud / 1e6:g} Mbit/s")
    return lines
