"""``python -m simulator`` (also ``motionctl sim``): simulated drives for a rig, on a real wire.

Serial: opens a pseudo-terminal pair, prints ``simulator: serial device ready at /dev/pts/N`` and serves
until interrupted; connect with ``--hw serial:///dev/pts/N``.  KUKA RSI: a robot controller that sends its
datagrams to ``--send-to HOST:PORT`` (default: the rig's ``rsi://`` address), where motionctl listens.  CAN: serves on a python-can bus
(``--can can://socketcan/vcan0`` across processes where the kernel has vcan), or ``--can socketcand``:
the drives on a bus of this process, served over TCP on 127.0.0.1 as a socketcand daemon would serve a
real bus (prints ``ready at can://socketcand/sim0?host=127.0.0.1&port=N``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from motionctl.errors import InputError, MotionctlError
from motionctl.spec import load_rig
from simulator.faults import FaultInjector, parse_fault


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simulator", description="Simulated servo drives for a motionctl rig.")
    parser.add_argument("--rig", required=True, help="rig file (.toml)")
    parser.add_argument("--transport", choices=("serial", "can", "rsi", "rtde"), default="serial")
    parser.add_argument("--group", default=None, metavar="NAME",
                        help="for a rig on several controllers: simulate this [[hardware.group]]'s controller")
    parser.add_argument("--can", default=None, help="CAN bus URL for --transport can, e.g. can://socketcan/vcan0, "
                        "or socketcand: serve the drives over TCP on 127.0.0.1")
    parser.add_argument("--send-to", default=None, metavar="HOST:PORT",
                        help="for --transport rsi: where motionctl listens (default: the rig's rsi:// address)")
    parser.add_argument("--ipo-ms", type=int, choices=(4, 12), default=None,
                        help="for --transport rsi: the robot's cycle, 4 (#IPO_FAST) or 12 ms (#IPO); default: the "
                        "rig's rsi:// URL's ipo_ms, else 4")
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help="inject a fault (repeatable), e.g. drop=0.02, stall@3+0.5, drive:wrist_1@2=0x0010, "
                        "following:track@4, heartbeat@5, unplug@6, busoff@6")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random faults (runs repeat)")
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="end with this process (default: the process that started us)")
    return parser


def main(argv: list[str] | None = None) -> int:
    # Whoever started us, taken before anything slow: a parent that is gone before we look would leave us
    # reading init's pid as our parent and serving forever (seen on a loaded machine: a Ctrl-C that reached
    # `motionctl sim` while the simulator was still starting).
    parent = os.getppid()
    stop = {"now": False}

    def finish(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    args = build_parser().parse_args(argv)
    parent = args.parent_pid or parent
    from motionctl.runtime.clock import realtime_process
    realtime_process()        # the device loop outranks busy processes at normal priority, where allowed
    try:
        rig = load_rig(args.rig)
        if args.group:
            groups = {g.name: g for g in (rig.hardware.groups if rig.hardware else ())}
            if args.group not in groups:
                raise InputError(f'rig "{rig.name}" has no [[hardware.group]] named "{args.group}"'
                                 + (f" (it has {', '.join(groups)})" if groups else ""))
            from dataclasses import replace
            rig = replace(rig, hardware=groups[args.group])
        faults = FaultInjector(seed=args.seed)
        for spec in args.fault:
            faults.add(parse_fault(spec))
        if args.transport == "serial":
            from simulator.serial.device import SerialDevice
            device = SerialDevice(rig, faults, log=lambda m: print(f"simulator: {m}", file=sys.stderr, flush=True))
            print(f"simulator: serial device ready at {device.path}", flush=True)
        elif args.transport == "rsi":
            from urllib.parse import urlsplit

            from simulator.rsi.controller import KukaRsiController
            target = urlsplit(f"//{args.send_to}" if args.send_to else
                              (rig.hardware.transport if rig.hardware else "rsi://127.0.0.1:49152"))
            from simulator import rsi_cycle_ms
            device = KukaRsiController(rig, (target.hostname or "127.0.0.1", target.port or 49152), faults,
                                       log=lambda m: print(f"simulator: {m}", file=sys.stderr, flush=True),
                                       ipo_ms=args.ipo_ms or rsi_cycle_ms(rig.hardware.transport if rig.hardware
                                                                           else ""))
            print(f"simulator: KUKA RSI controller sending to {device.host_address[0]}:{device.host_address[1]}",
                  flush=True)
        elif args.transport == "rtde":
            from simulator.rtde.controller import UrController
            device = UrController(rig, faults, powered=True,
                                  log=lambda m: print(f"simulator: {m}", file=sys.stderr, flush=True))
        else:
            from simulator import launch_can, virtual_can_url
            url = args.can or (rig.hardware.transport if rig.hardware else "")
            served = url == "socketcand"
            if served:       # the drives on a bus of this process, served to motionctl over TCP
                url = virtual_can_url(args.group)
            try:
                device = launch_can(rig, url, faults)
                if served:
                    import can

                    from simulator.canopen.socketcand import SocketcandServer
                    bridge = can.Bus(interface="virtual", channel=url.split("/", 3)[3])
                    server = SocketcandServer(bridge, "sim0").start()
                    stop_drives = device.stop

                    def stop_both() -> None:
                        server.stop()
                        bridge.shutdown()
                        stop_drives()
                    device.stop = stop_both
            except (OSError, ValueError, ImportError) as exc:    # python-can: no such interface or channel
                raise InputError(f'cannot open the CAN bus "{url}": {exc}') from None
            where = f"ready at {server.url}" if served else f"on {url}"
            print(f"simulator: {len(device.drives)} CAN drives {where}", flush=True)
    except MotionctlError as exc:
        print(f"simulator: error: {exc}", file=sys.stderr)
        return 2
    if args.transport in ("serial", "rsi", "rtde"):
        device.start()
    if args.transport == "rtde":
        ports = device.ports
        print(f"simulator: UR controller ready rtde://127.0.0.1?rtde_port={ports.rtde}&script_port={ports.secondary}"
              f" (dashboard on port {ports.dashboard})", flush=True)
    while not stop["now"] and not getattr(device, "unplugged", False):
        time.sleep(0.1)
        if os.getppid() != parent:      # whoever started us is gone: do not linger as an orphan
            time.sleep(1.0)             # (after the drives' own watchdog has stopped the axes)
            break
    device.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
