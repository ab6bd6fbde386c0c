"""Simulated servo drives: the device side of motionctl's serial and CAN wires.

``simulator.serial.device.SerialDevice`` speaks the serial protocol on a pseudo-terminal;
``simulator.canopen.device.SimulatedCanRig`` speaks CANopen CiA 402 on a python-can bus.  Both model every
axis with :class:`simulator.axis.AxisModel` and inject the faults of :mod:`simulator.faults`.
``simulator.rsi.controller.KukaRsiController`` is a KUKA robot controller sending RSI datagrams over UDP.

motionctl itself never imports this package's internals: it reaches the simulator through a transport
URL, exactly like hardware.  The one touch point is :func:`launch`, which ``motionctl run --sim`` uses to
start a simulator next to the run (a pty for serial rigs; the in-process bus for ``can://virtual``).
"""

from __future__ import annotations

from typing import Any

from simulator.faults import FaultInjector


def launch_can(rig: Any, url: str, faults: FaultInjector | None = None, *, lockstep: bool = False,
               initial: Any = None) -> Any:
    """Start simulated CiA 402 drives for ``rig`` on the bus ``url`` (``can://<interface>/<channel>``)."""
    from simulator.canopen.device import SimulatedCanRig

    return SimulatedCanRig(rig, url, faults or FaultInjector(), lockstep=lockstep, initial=initial).start()


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing uses now (for motionctl to listen on, opposite a simulator)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rsi_cycle_ms(url: str) -> int:
    """The simulated KUKA controller's cycle: the URL's ``ipo_ms`` (4 unless it says 12), standing for what
    the robot's KRL program says (``#IPO_FAST`` or ``#IPO``)."""
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(url).query).get("ipo_ms")
    return int(values[-1]) if values and values[-1].isdigit() else 4


def launch_rsi(rig: Any, url: str, faults: FaultInjector | None = None, *, lockstep: bool = False,
               initial: Any = None) -> tuple[Any, str]:
    """A simulated KUKA controller sending RSI datagrams to motionctl on 127.0.0.1.

    The port of ``url`` is not used: two dry runs at once (a test suite on several cores) must not meet on
    one port, so motionctl gets a free one.  (A real controller sends to the port of its Ethernet
    configuration; ``--hw rsi://ADDRESS:PORT`` names it.)
    """
    from urllib.parse import urlsplit

    from simulator.rsi.controller import KukaRsiController

    port = free_udp_port()
    query = urlsplit(url).query
    controller = KukaRsiController(rig, ("127.0.0.1", port), faults or FaultInjector(), lockstep=lockstep,
                                   initial=initial, ipo_ms=rsi_cycle_ms(url))
    controller.start()
    return controller, f"rsi://127.0.0.1:{port}" + (f"?{query}" if query else "")


def launch_ur(rig: Any, faults: FaultInjector | None = None, *, lockstep: bool = False,
              initial: Any = None) -> tuple[Any, str]:
    """A simulated UR e-Series controller on 127.0.0.1 (RTDE, secondary interface, dashboard; free ports).
    It starts powered on with its brakes released: the operator's steps on the pendant, taken as done."""
    from simulator.rtde.controller import UrController

    controller = UrController(rig, faults or FaultInjector(), lockstep=lockstep, initial=initial,
                              powered=True).start()
    ports = controller.ports
    return controller, f"rtde://127.0.0.1?rtde_port={ports.rtde}&script_port={ports.secondary}"


class GroupDevices:
    """The simulated controllers of a rig on several controllers, one per group, in the groups' order."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts

    def stop(self) -> None:
        for part in self.parts:
            part.stop()


def virtual_can_url(group: str | None = None) -> str:
    """The virtual CAN bus a simulated CAN rig (or one group of a rig) lives on: named after this process,
    so two motionctl processes never share one, and after the group, so two groups never do."""
    import os

    return f"can://virtual/motionctl-sim-{os.getpid()}" + (f"-{group}" if group else "")


def launch_groups(rig: Any, faults: FaultInjector | None = None, *, lockstep: bool = False,
                  initial: Any = None) -> tuple[Any, str]:
    """A simulated controller for each ``[[hardware.group]]`` (a CAN group on a virtual bus of its own, a
    serial group on a pty); returns them and a ``group://`` URL that names each one's wire.  A fault that
    names an axis goes to the controller of that axis; one that names none (``drop=``, ``unplug@``,
    ``protective@``...) to every controller, each acting on the kinds it has."""
    from dataclasses import replace
    from urllib.parse import urlencode

    parts, urls = [], {}
    for group in rig.hardware.groups:
        view = replace(rig, hardware=group)
        wire = group.transport
        if wire.startswith("can://"):
            wire = virtual_can_url(group.name)
        elif wire.startswith("serial://"):
            wire = "serial://"
        own = FaultInjector([f for f in (faults.faults if faults else []) if f.concerns(group.address)],
                            seed=faults.seed if faults else 1)
        device, urls[group.name] = launch(view, wire, own, lockstep=lockstep, initial=initial)
        parts.append(device)
    return GroupDevices(parts), f"{rig.hardware.transport}?{urlencode(urls)}"


def launch(rig: Any, url: str | None, faults: FaultInjector | None = None, *, lockstep: bool = False,
           initial: Any = None) -> tuple[Any, str]:
    """Start a simulator for ``rig`` in this process; returns (the simulator, the URL motionctl should open).

    Serial rigs get a pseudo-terminal (the URL names its slave end); CAN rigs get drives on the bus the
    URL names.  ``lockstep``: the drives keep simulated time (``motionctl.runtime.simtime``) instead of
    their own clock.  ``initial``: joint positions to start at instead of the park pose.
    """
    target = url or (rig.hardware.transport if rig.hardware else "serial://")
    if target.startswith("group://"):
        return launch_groups(rig, faults, lockstep=lockstep, initial=initial)
    if target.startswith("rsi://"):
        return launch_rsi(rig, target, faults, lockstep=lockstep, initial=initial)
    if target.startswith("rtde://"):
        return launch_ur(rig, faults, lockstep=lockstep, initial=initial)
    if target.startswith("can://"):
        return launch_can(rig, target, faults, lockstep=lockstep, initial=initial), target
    from simulator.serial.device import SerialDevice

    device = SerialDevice(rig, faults, lockstep=lockstep, initial=initial).start()
    return device, f"serial://{device.path}?baud=1000000"
