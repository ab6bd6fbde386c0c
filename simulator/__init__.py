"""Simulated servo drives: the device side of motionctl's serial and CAN wires.

``simulator.serial_device.SerialDevice`` speaks the serial protocol on a pseudo-terminal;
``simulator.can_device.SimulatedCanRig`` speaks CANopen CiA 402 on a python-can bus.  Both model every
axis with :class:`simulator.axis.AxisModel` and inject the faults of :mod:`simulator.faults`.
``simulator.kuka_rsi.KukaRsiController`` is a KUKA robot controller sending RSI datagrams over UDP.

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
    from simulator.can_device import SimulatedCanRig

    return SimulatedCanRig(rig, url, faults or FaultInjector(), lockstep=lockstep, initial=initial).start()


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing uses now (for motionctl to listen on, opposite a simulator)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_rsi(rig: Any, url: str, faults: FaultInjector | None = None, *, lockstep: bool = False,
               initial: Any = None) -> tuple[Any, str]:
    """A simulated KUKA controller sending RSI datagrams to motionctl on 127.0.0.1.

    The port of ``url`` is not used: two dry runs at once (a test suite on several cores) must not meet on
    one port, so motionctl gets a free one.  (A real controller sends to the port of its Ethernet
    configuration; ``--hw rsi://ADDRESS:PORT`` names it.)
    """
    from urllib.parse import urlsplit

    from simulator.kuka_rsi import KukaRsiController

    port = free_udp_port()
    query = urlsplit(url).query
    controller = KukaRsiController(rig, ("127.0.0.1", port), faults or FaultInjector(), lockstep=lockstep,
                                   initial=initial)
    controller.start()
    return controller, f"rsi://127.0.0.1:{port}" + (f"?{query}" if query else "")


def launch(rig: Any, url: str | None, faults: FaultInjector | None = None, *, lockstep: bool = False,
           initial: Any = None) -> tuple[Any, str]:
    """Start a simulator for ``rig`` in this process; returns (the simulator, the URL motionctl should open).

    Serial rigs get a pseudo-terminal (the URL names its slave end); CAN rigs get drives on the bus the
    URL names.  ``lockstep``: the drives keep simulated time (``motionctl.runtime.simtime``) instead of
    their own clock.  ``initial``: joint positions to start at instead of the park pose.
    """
    target = url or (rig.hardware.transport if rig.hardware else "serial://")
    if target.startswith("rsi://"):
        return launch_rsi(rig, target, faults, lockstep=lockstep, initial=initial)
    if target.startswith("can://"):
        return launch_can(rig, target, faults, lockstep=lockstep, initial=initial), target
    from simulator.serial_device import SerialDevice

    device = SerialDevice(rig, faults, lockstep=lockstep, initial=initial).start()
    return device, f"serial://{device.path}?baud=1000000"
