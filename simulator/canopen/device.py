"""Simulated CiA 402 drives for every axis of a rig, on a python-can bus, with fault injection.

``SimulatedCanRig(rig, "can://virtual/<channel>")`` puts one :class:`~simulator.canopen.drive.SimulatedDrive`
per driven axis (node-ID = the rig's ``[hardware] address``) on the bus, each a canopen LocalNode built
from the rig's EDS (its ``[hardware] eds``, else :data:`DEFAULT_EDS`, the generic CiA 402 csp drive).  The
``virtual`` interface works inside one process; ``socketcan`` (e.g. vcan0) works across processes.

Threads: canopen's notifier thread runs every receive callback (NMT, SDO, SYNC, RPDO, heartbeats); one
timer thread of ours produces heartbeats, checks heartbeat consumers, lets drives brake when no SYNC
comes, sends delayed frames and fires timed faults.  It sleeps until its next deadline (at most
:data:`TICK_S`), so nothing spins.  One lock serialises both.

Faults (:mod:`simulator.faults`, clock = seconds since the first RPDO any drive received):
``drive:<axis>=<code>`` EMCY with that code and FAULT (codes 0x00xx, which mean "no error" on CAN, are sent
as 0xFFxx, manufacturer specific); ``following:<axis>`` jams the axis until its following error trips;
``heartbeat[:<axis>]`` silences heartbeats; ``busoff`` / ``unplug`` take the whole rig off the bus (the
drives lose their master and apply 0x6007; with a duration, the rig comes back and sends EMCY 0x8140);
``stall[:<axis>]`` freezes drives (no frames either way); ``drop``, ``delay``, ``corrupt`` act on TPDOs
(a corrupted frame is destroyed by the CAN CRC: receivers see an error frame, then the retransmission).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Callable

import can
import canopen

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from motionctl.errors import InputError
from motionctl.virtual_can import open_bus
from motionctl.spec.rig import Rig
from simulator.axis import AxisModel, driven_axes
from simulator.canopen.drive import SimulatedDrive
from simulator.canopen.cia301_device import EmcyCode
from simulator.faults import Fault, FaultInjector, FaultKind

TICK_S = 0.005              #: the timer's longest sleep
IDLE_S = 0.02               #: lock-step: simulated time has stood still this long, the timer serves the bus
CAN_ERR_PROT = 0x008        #: SocketCAN error class "protocol violation" (a destroyed frame)
#: The drive's electronic data sheet when the rig names none: a generic CiA 402 csp servo drive.
DEFAULT_EDS = Path(__file__).resolve().parents[2] / "rigs" / "eds" / "generic_cia402_csp.eds"
DEFAULT_BITRATE = 1_000_000


@dataclass(frozen=True)
class CanBus:
    """Where the drives sit: ``can://<interface>/<channel>?bitrate=<bit/s>`` (``docs/formats.md``), the
    interface and channel as python-can names them (``virtual``, ``socketcan``/``vcan0``...)."""

    interface: str
    channel: str
    bitrate: int = DEFAULT_BITRATE

    @classmethod
    def parse(cls, url: str) -> CanBus:
        parts = urlsplit(url)
        channel = parts.path.lstrip("/")
        if parts.scheme != "can" or not parts.netloc or not channel:
            raise InputError(f'"{url}" is not a CAN transport (can://<interface>/<channel>, e.g. '
                             'can://socketcan/can0)')
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        try:
            bitrate = int(options.get("bitrate", str(DEFAULT_BITRATE)), 0)
        except ValueError:
            raise InputError(f'"{url}": bitrate must be a whole number of bit/s') from None
        return cls(parts.netloc, channel, bitrate)


class _SimNetwork(canopen.Network):
    """A canopen network whose controller can go bus-off: it then neither sends nor receives."""

    silent = False
    heard = False            #: a frame from another node has arrived: someone is on the bus to hear ours

    def send_message(self, can_id: int, data: bytes, remote: bool = False) -> None:
        if not self.silent:
            super().send_message(can_id, data, remote)

    def notify(self, can_id: int, data: bytearray, timestamp: float) -> None:
        self.heard = True        # before any answer to it is sent: answers are counted (lock-step)
        if not self.silent:
            super().notify(can_id, data, timestamp)


class _Counter(can.Listener):
    """Counts every frame the rig's bus delivered, after canopen's listener has acted on it."""

    def __init__(self, rig: SimulatedCanRig) -> None:
        self.rig = rig

    def on_message_received(self, msg: can.Message) -> None:
        with self.rig.lock:
            self.rig.counted_in()

    def stop(self) -> None:
        pass


def _axis_models(rig: Rig, initial: list[float] | None = None) -> list[AxisModel]:
    """One model per driven axis, in the driver's order, starting at the park pose (or ``initial``) and
    the lens defaults."""
    axes = {a.name: a for a in rig.axes}
    lens = {l.name: l for l in rig.lens}
    models = []
    for driven in driven_axes(rig):
        if not driven.lens:
            axis = axes[driven.name]
            model = AxisModel(driven.name, driven.counts_per_unit, axis.vmax * 1.5, axis.amax * 3.0)
            start = rig.park if initial is None else initial
            model.position = model.target = float(start[rig.axis_index(driven.name)])
        else:
            model = AxisModel(driven.name, driven.counts_per_unit, 5.0, 50.0)   # normalised encoder units
            model.position = model.target = float(lens[driven.name].encoder(lens[driven.name].default))
        models.append(model)
    return models


class SimulatedCanRig:
    """Every drive of ``rig`` on the CAN bus ``url``.  ``start()``/``stop()`` or use as a context manager."""

    def __init__(self, rig: Rig, url: str = "can://virtual/motionctl", faults: FaultInjector | None = None,
                 *, eds: str | Path | None = None, lockstep: bool = False, initial: list[float] | None = None) -> None:
        bus = CanBus.parse(url)
        self.rig = rig
        self.url = url
        self.interface, self.channel, self.bitrate = bus.interface, bus.channel, bus.bitrate
        models = _axis_models(rig, initial)         # raises HardwareError for a rig without [hardware]
        hw = rig.hardware
        assert hw is not None
        self.eds = str(eds or hw.eds or DEFAULT_EDS)
        self.faults = faults or FaultInjector()
        #: Lock-step (simulated time): the drives' own clock is the host's tick count
        #: (:meth:`lockstep_tick`); otherwise the wall clock, like hardware.
        self.lockstep = lockstep
        self.device_tick = 0
        self.period_s = 1.0 / hw.servo_rate_hz
        self.frames_in = 0            # frames taken in from the bus (lock-step: the host says how many to expect)
        self.frames_out = 0
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self._waiting = 0        # threads in wait_until: most changes (every SYNC of every drive) have none
        nodes = [(hw.address[m.name], m) for m in models]
        self.drives = [SimulatedDrive(self, node, m, canopen.import_od(self.eds, node)) for node, m in nodes]
        self.warnings: dict[str, int] = {}        # drive -> the warning code it is showing (fault injection)
        for drive in self.drives:
            self._static_faults(drive)
        self.network: _SimNetwork | None = None
        self.unplugged = False
        self.bus_off = False
        self.tpdos_dropped = 0
        self._t0: float | None = None
        self._delayed: list[tuple[float, int, int, bytes]] = []
        self._order = itertools.count()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Lock-step: who reads the bus, the tick (:meth:`lockstep_tick`) or, between ticks, the timer.
        self._reader = threading.Lock()
        self._last_tick_wall = float("-inf")

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> SimulatedCanRig:
        """Connect, power every drive on (boot-up messages, pre-operational) and start the timer."""
        network = _SimNetwork()
        network.NOTIFIER_CYCLE = 0.1
        network.listeners.append(_Counter(self))
        network.bus = open_bus(self.interface, self.channel, bitrate=self.bitrate)
        network.connect()
        send = network.bus.send

        def counted(msg: can.Message, timeout: float | None = None) -> None:
            send(msg, timeout)
            with self.lock:
                # Frames sent before the host was on the bus (the boot-up messages) never reached it.
                self.frames_out += network.heard

        network.bus.send = counted
        self.network = network
        if self.lockstep and network.notifier is not None:
            # Why not canopen's notifier: each tick carries a SYNC and an RPDO per drive, and handing each
            # frame to a notifier thread costs a thread switch per frame under the GIL.  In lock-step the
            # tick takes its frames in on its own thread, in order; between ticks the timer does.
            network.notifier.stop()
        with self.lock:
            for drive in self.drives:
                drive.attach(network)
            for drive in self.drives:
                drive.boot(reset_application=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sim-can-{self.channel}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        network, self.network = self.network, None
        if network is not None:
            network.disconnect()

    def __enter__(self) -> SimulatedCanRig:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- for tests and the CLI ------------------------------------------------------------------------------
    def drive(self, name: str) -> SimulatedDrive:
        for drive in self.drives:
            if drive.name == name:
                return drive
        raise KeyError(f'no simulated drive for axis "{name}"')

    def inject(self, fault: Fault | str) -> None:
        """Add a fault now (its time is still measured from the first setpoint)."""
        with self.lock:
            self.faults.add(fault)
        self._wake.set()

    def clock(self) -> float:
        """The drives' own clock (s): the host's tick count in lock-step, the wall clock otherwise."""
        return self.device_tick * self.period_s if self.lockstep else time.monotonic()

    def now(self) -> float:
        """Seconds since the first setpoint (the clock of fault injection)."""
        return 0.0 if self._t0 is None else self.clock() - self._t0

    def lockstep_tick(self, tick: int, host_frames: int, timeout_s: float = 10.0) -> int:
        """One servo period of simulated time, once every frame the host sent before it has been acted on
        (SYNCs and RPDOs are handled as they arrive: one interpolation period per SYNC).  Runs the drives'
        own clock for the tick (heartbeats, consumer timeouts, timed faults, delayed frames); returns how
        many frames the drives have sent in all."""
        with self._reader, self._changed:
            self._take_in(lambda: self.frames_in >= host_frames, timeout_s)
            self.device_tick = tick
            self._clock_tick()
            self._last_tick_wall = time.monotonic()
            return self.frames_out

    def _take_in(self, enough: Callable[[], bool], timeout_s: float) -> None:
        """Read the bus and act on each frame as canopen's notifier would, until ``enough()`` (or
        ``timeout_s``).  Called with ``_reader`` held, so frames are acted on in the order they came."""
        network = self.network
        if network is None:
            return
        deadline = time.monotonic() + timeout_s
        while not enough() and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                msg = network.bus.recv(min(remaining, TICK_S))
            except (can.CanError, RuntimeError, ValueError):
                return              # the bus is closing under us (stop)
            if msg is not None:
                for listener in network.listeners:
                    listener(msg)

    def counted_in(self) -> None:
        """A frame was taken in (called by the network, with the lock)."""
        self.frames_in += 1
        self.changed()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` (evaluated under the rig's lock) holds, or ``timeout`` s pass."""
        with self._changed:
            self._waiting += 1
            try:
                return self._changed.wait_for(predicate, timeout)
            finally:
                self._waiting -= 1

    # -- services for the drives (called with the lock held) ----------------------------------------------
    def changed(self) -> None:
        if self._waiting:
            self._changed.notify_all()

    def first_setpoint(self) -> None:
        if self._t0 is None:
            self._t0 = self.clock()

    def send(self, cob_id: int, data: bytes) -> None:
        network = self.network
        if network is None:
            return
        try:
            network.send_message(cob_id, data)
        except (can.CanError, RuntimeError):
            pass                 # the bus is closing under us (stop): a real drive would not notice either

    def _mine(self, kind: FaultKind, drive: SimulatedDrive) -> list[Fault]:
        if not self.faults.faults:
            return []           # asked several times per drive and tick: the usual case is no fault at all
        return [f for f in self.faults.active(kind, self.now()) if f.axis in (None, drive.name)]

    def transmit_tpdo(self, drive: SimulatedDrive, cob_id: int, data: bytes) -> None:
        """Send a TPDO through the drop / corrupt / delay faults."""
        if any(self.faults.random.random() < f.value for f in self._mine(FaultKind.DROP, drive)):
            self.tpdos_dropped += 1
            return
        if any(self.faults.random.random() < f.value for f in self._mine(FaultKind.CORRUPT, drive)):
            bus = self.network.bus if self.network is not None else None
            if bus is not None and not self.bus_off:
                try:
                    bus.send(can.Message(is_error_frame=True, arbitration_id=CAN_ERR_PROT,
                                         is_extended_id=False, data=bytes(8)))
                except can.CanError:
                    pass
        delay = max((f.value for f in self._mine(FaultKind.DELAY, drive)), default=0.0) / 1000.0
        if delay > 0:
            heapq.heappush(self._delayed, (self.clock() + delay, next(self._order), cob_id, data))
            self._wake.set()
        else:
            drive.send(cob_id, data)

    # -- the timer ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            due = time.monotonic() + TICK_S
            if self.lockstep:
                if self._serve_between_ticks():
                    continue
            else:
                with self.lock:
                    self._clock_tick()
                    due = min(self._delayed[0][0] if self._delayed else due, due)
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()

    def _serve_between_ticks(self) -> bool:
        """Lock-step, while simulated time stands still (the host opens the link, enables the drives,
        plans): read and act on what arrives, as canopen's notifier would.  Returns whether it read."""
        if time.monotonic() - self._last_tick_wall < IDLE_S or not self._reader.acquire(blocking=False):
            return False
        try:
            with self.lock:
                before = self.frames_in
            self._take_in(lambda: self.frames_in > before, TICK_S)
        finally:
            self._reader.release()
        return True

    def _clock_tick(self) -> None:
        """What the drives do on their own clock (with the lock held)."""
        now = self.clock()
        self._timed_faults()
        for drive in self.drives:
            allowed = not self._mine(FaultKind.HEARTBEAT, drive)
            drive.tick(now, allowed)
        while self._delayed and self._delayed[0][0] <= now + 1e-9:
            _, _, cob_id, data = heapq.heappop(self._delayed)
            self.send(cob_id, data)

    def _static_faults(self, drive: SimulatedDrive) -> None:
        """Behaviour set for the whole session (mode display lag, SYNC monitoring)."""
        for fault in self.faults.faults:
            if fault.axis not in (None, drive.name):
                continue
            if fault.kind is FaultKind.MODELAG:
                drive.mode_lag_s = fault.value / 1000.0
            elif fault.kind is FaultKind.SYNCWATCH:
                drive.sync_watch = int(fault.value)
            elif fault.kind is FaultKind.REFUSE and fault.target is not None:
                drive.refused[fault.target] = int(fault.value)

    def _timed_faults(self) -> None:
        t = self.now()
        started = self._t0 is not None
        for drive in self.drives:
            stalled = bool(self._mine(FaultKind.STALL, drive))
            if stalled != drive.stalled:
                drive.stalled = stalled
                self.changed()
        if not started:
            return
        for fault in self.faults.once(FaultKind.DRIVE, t):
            code = int(fault.value)
            self.drive(fault.axis or self.drives[0].name).trip(code if code & 0xFF00 else 0xFF00 | code)
        for drive in self.drives:
            # A fault with a duration: its cause stays that long, and a fault reset meanwhile is refused.
            lasting = [f for f in self._mine(FaultKind.DRIVE, drive) if f.duration_s is not None]
            code = int(lasting[0].value) if lasting else 0
            drive.fault_cause = code if not code or code & 0xFF00 else 0xFF00 | code
            warning = next((int(f.value) for f in self._mine(FaultKind.WARNING, drive)), 0)
            if warning != self.warnings.get(drive.name, 0):
                self.warnings[drive.name] = warning
                drive.warn(warning)
        for fault in self.faults.once(FaultKind.REBOOT, t):
            self.drive(fault.axis or self.drives[0].name).boot(reset_application=True)
        for fault in self.faults.once(FaultKind.FOLLOWING, t):
            self.drive(fault.axis or self.drives[0].name).axis.blocked = True
            self.changed()
        if self.faults.once(FaultKind.UNPLUG, t):
            self.unplugged = True
        off = self.unplugged or bool(self.faults.active(FaultKind.BUSOFF, t))
        if off != self.bus_off:
            self._set_bus_off(off)

    def _set_bus_off(self, off: bool) -> None:
        self.bus_off = off
        if self.network is not None:
            self.network.silent = off
        for drive in self.drives:
            if off:
                drive.abort_connection(None)        # no frame can say so: the drive just stops
            else:
                drive.error(EmcyCode.BUS_OFF_RECOVERED)
        self.changed()
