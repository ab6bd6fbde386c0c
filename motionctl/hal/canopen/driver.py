"""CAN backend: CiA 402 drives in cyclic synchronous position over CANopen (python-can + canopen).

The host is the SYNC producer.  Every ``write_setpoints`` sends one RPDO1 per drive (controlword + target)
and then one SYNC; each drive applies its RPDO on that SYNC and answers with TPDO1 (statusword + position
actual) and, every n-th SYNC, TPDO2 (following error).  :class:`~motionctl.hal.canopen.feedback.Feedback`
keeps the newest of those per drive; ``read_state`` assembles them.  SDO is used only at ``open`` (see
:mod:`motionctl.hal.canopen.config` for what is written and why).

The controlword is latched per drive and resent every cycle.  Only ``enable`` writes ENABLE OPERATION:
a drive that stops on its own (quick stop after a lost heartbeat, a fault) is latched to QUICK STOP here,
because with quick-stop option 6 a drive in QUICK_STOP_ACTIVE that keeps receiving 0x0F would resume
(transition 16) and chase the setpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import can
import canopen
from canopen.sdo import SdoAbortedError, SdoCommunicationError, SdoVariable

from motionctl.errors import HardwareError, InputError
from motionctl.hal.canopen import cia301, cia402
from motionctl.hal.canopen.config import (DEFAULT_EDS, RPDO1, CanOptions, NodePlan, SdoWrite, bus_load_report,
                                      describe_error_frame, rig_plan)
from motionctl.hal.canopen.feedback import Feedback
from motionctl.hal.canopen.cia402 import Command, DriveState
from motionctl.hal.driver import Driver, RigState
from motionctl.hal.canopen.emcy import Emcy
from motionctl.virtual_can import open_bus
from motionctl.hal.registry import TransportUrl
from motionctl.spec.rig import Rig

__all__ = ["CanDriver", "bus_load_report"]

log = logging.getLogger(__name__)

_FAULTED = (DriveState.FAULT, DriveState.FAULT_REACTION_ACTIVE)
#: Closing: how long a quick-stopped axis may take to come to rest before the drives are disabled.
CLOSE_REST_S = 3.0
#: CiA 402 0x6502 supported drive modes: bit 7 is cyclic synchronous position.  Read where the EDS has it.
CSP_SUPPORTED = 1 << 7
#: Opening: how long a drive may take to show the mode it was asked for (0x6061), asked every MODE_POLL_S.
MODE_SWITCH_S = 1.0
MODE_POLL_S = 0.01
REST_COUNTS = 2           #: encoder counts per cycle that still count as standing still
_I32 = (-(1 << 31), (1 << 31) - 1)
_ENABLE = Command.ENABLE_OPERATION.controlword


class _BusWatch(can.Listener):
    """Sees what canopen's listener drops: error frames (bus-off) and a receive thread that died."""

    def __init__(self, driver: CanDriver) -> None:
        self.driver = driver

    def on_message_received(self, msg: can.Message) -> None:
        if msg.is_error_frame:
            self.driver._on_error_frame(msg.arbitration_id)
        self.driver._took_in(1)          # after canopen's listener has acted on it (listeners run in order)

    def on_error(self, exc: Exception) -> None:
        self.driver._bus_problem = f"the CAN interface stopped receiving ({exc})"

    def stop(self) -> None:
        pass


def _first_words(exc: BaseException) -> str:
    """What an interface's exception says, without the traceback python-can puts in some messages."""
    said = str(exc).split("  Traceback", 1)[0].strip().splitlines()
    return said[0] if said else type(exc).__name__


class CanDriver(Driver):
    """CiA 402 drives on one CAN bus: ``can://<python-can interface>/<channel>?bitrate=1000000``.

    Options (URL query or keywords): see :class:`~motionctl.hal.canopen.config.CanOptions`.
    """

    schemes = ("can",)

    def __init__(self, rig: Rig, url: str, **options: object) -> None:
        super().__init__(rig, url, **options)
        parsed = TransportUrl.parse(url)
        if parsed.scheme != "can":
            raise InputError(f'"{url}" is not a CAN transport (can://<interface>/<channel>)')
        self.interface, self.channel = parsed.host, parsed.path
        self.can_options = CanOptions.parse(parsed.options, {k: v for k, v in options.items() if k not in ("lockstep", "now_ns")})
        hw = rig.hardware
        assert hw is not None       # Driver.__init__ raised otherwise
        self.rate_hz = self.can_options.rate_hz or hw.servo_rate_hz
        self.period_s = 1.0 / self.rate_hz
        self.eds = self.can_options.eds or hw.eds or str(DEFAULT_EDS)
        self.plan: list[NodePlan] = rig_plan(rig, self.can_options)
        self.feedback = Feedback(self.plan, self.period_s, self.can_options, self.stats,
                                 clock=lambda: self.now_ns() / 1e9)
        #: Lock-step (simulated time): the master heartbeat is sent on the run's clock by the servo
        #: cycle, not by a wall-clock timer thread.
        self.lockstep = bool(options.get("lockstep", False))
        self._next_heartbeat_ns = 0
        self.feedback.on_stopped = self._stopped_on_its_own
        self.events = self.feedback.events
        self.network: canopen.Network | None = None
        self.nodes: list[canopen.RemoteNode] = []
        self._cond = self.feedback.cond          # also guards the latched controlwords and targets
        self._cycle_lock = threading.Lock()
        self._controlword = [Command.DISABLE_VOLTAGE.controlword] * len(self.plan)
        self._target = [0] * len(self.plan)
        self._bus_problem: str | None = None
        self._heartbeat_task: canopen.network.PeriodicMessageTask | None = None
        self._walking = False
        self._estops = 0
        self._quick_stop_failed = ""

    # -- public extras ------------------------------------------------------------------------------------
    def bus_load(self) -> list[str]:
        """``motionctl hw info``: this rig's traffic at this driver's rate and bitrate."""
        return bus_load_report(self.rig, self.rate_hz, options=self.can_options)

    def configuration(self) -> dict[str, list[SdoWrite]]:
        """What ``open`` writes to each drive, per axis (for ``motionctl hw info`` and logs)."""
        return {p.name: list(p.writes) for p in self.plan}

    @property
    def active_emcy(self) -> dict[str, Emcy]:
        """The latest uncleared EMCY of each axis that has one."""
        with self._cond:
            return {p.name: e for p, e in zip(self.plan, self.feedback.emcy) if e is not None}

    @property
    def link_broken(self) -> bool:
        return bool(self._bus_problem)

    def _count_sent(self, bus: can.BusABC) -> None:
        """Count every frame this end puts on the bus (canopen's, periodic tasks' and ours)."""
        send = bus.send

        def counted(msg: can.Message, timeout: float | None = None) -> None:
            try:
                send(msg, timeout)
            except OSError as exc:
                # The interface's own link is gone (socketcand's TCP connection closed): said once, in
                # words, by the next cycle (_send, _check_bus), not by a traceback from python-can's
                # periodic heartbeat thread, which would die of it.
                self._bus_problem = self._bus_problem or f"the link to the CAN interface closed ({exc})"
                return
            with self._wire:
                self.wire_sent += 1

        bus.send = counted

    def start_heartbeat(self) -> None:
        """Produce the master heartbeat (0x700 + master id) that the drives' 0x1016 watches."""
        if self.network is None or self._heartbeat_task is not None or self.lockstep:
            return
        self._heartbeat_task = self.network.send_periodic(
            cia301.heartbeat_cob_id(self.can_options.master_id), bytes([cia301.NmtState.OPERATIONAL]),
            self.can_options.heartbeat_ms / 1000.0)

    def stop_heartbeat(self) -> None:
        """Stop the master heartbeat: the drives will quick-stop on their own after their consumer time."""
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.stop()

    # -- wire ---------------------------------------------------------------------------------------------
    def _check_bus(self) -> None:
        if self._bus_problem is None and self.network is not None:
            try:
                self.network.check()
            except Exception as exc:   # the notifier re-raises whatever killed its thread
                self._bus_problem = f"the CAN interface stopped receiving ({_first_words(exc)})"
        if self._bus_problem:
            raise HardwareError(f"CAN bus {self.interface}/{self.channel}: {self._bus_problem}")

    def _send(self, cob_id: int, data: bytes) -> None:
        network = self.network
        if network is None:
            raise HardwareError(f"the link {self.url} is not open")
        try:
            network.send_message(cob_id, data)
        except (can.CanError, OSError, RuntimeError) as exc:
            self._bus_problem = (f"the CAN interface refused a frame ({_first_words(exc)}): check that it is up, cabled "
                                 "and terminated, and that some other node acknowledges frames")
            raise HardwareError(f"CAN bus {self.interface}/{self.channel}: {self._bus_problem}") from None
        if self._bus_problem:
            raise HardwareError(f"CAN bus {self.interface}/{self.channel}: {self._bus_problem}")

    def _on_error_frame(self, arbitration_id: int) -> None:
        bus_off, words = describe_error_frame(arbitration_id)
        if bus_off:
            self._bus_problem = words
        else:
            self.stats.drop("CAN error frame")
        self.events.append(words)

    def _stopped_on_its_own(self, i: int) -> None:
        """Never re-enable by cyclic traffic a drive that stopped or faulted by itself (``_cond`` held)."""
        if self._controlword[i] == _ENABLE and getattr(self, "enabled", False) and not self._walking:
            self._controlword[i] = Command.QUICK_STOP.controlword

    # -- open / close -------------------------------------------------------------------------------------
    def _do_open(self) -> None:
        opts = self.can_options
        network = canopen.Network()
        network.NOTIFIER_CYCLE = 0.1          # how long close() waits for the receive thread
        network.listeners.append(_BusWatch(self))
        try:
            extra: dict[str, object] = {}
            if self.interface == "socketcand":
                # A CAN bus served over TCP (socketcand); low-latency TCP, or Nagle holds a SYNC back.
                extra = {"host": opts.host, "port": opts.port, "tcp_tune": True}
            network.bus = open_bus(self.interface, self.channel, bitrate=opts.bitrate, **extra)
            network.connect()
        except Exception as exc:              # python-can raises many kinds for a missing interface
            raise HardwareError(f"cannot open CAN interface '{self.interface}' channel '{self.channel}': "
                                f"{exc}") from None
        self.network = network
        self._count_sent(network.bus)
        self._bus_problem = None
        self.feedback.reset()
        with self._cond:
            self._controlword = [Command.DISABLE_VOLTAGE.controlword] * len(self.plan)
        try:
            self.nodes = [self._add_node(network, p) for p in self.plan]
            self.start_heartbeat()
            self._boot()
            for plan, node in zip(self.plan, self.nodes):
                self._configure(plan, node)
            for plan in self.plan:
                self._send(cia301.NMT_COB_ID, cia301.nmt_frame(cia301.NmtCommand.START, plan.node))
            self._arm_heartbeat_consumers()
            with self._cond:
                self.feedback.opened_at = self.feedback.clock()
                self.feedback.configured = True
        except BaseException:
            self._shutdown_network()
            raise

    def _add_node(self, network: canopen.Network, plan: NodePlan) -> canopen.RemoteNode:
        try:
            od = canopen.import_od(self.eds, plan.node)
        except Exception as exc:             # configparser, OSError, ValueError: all mean a bad file
            raise HardwareError(f'cannot read the EDS file "{self.eds}": {exc}') from None
        for write in plan.writes:
            if od.get_variable(write.index, write.subindex) is None and not write.optional:
                raise HardwareError(f'the EDS "{self.eds}" has no object 0x{write.index:04X}:'
                                    f"{write.subindex:02X}, which motionctl writes for {write.label}")
        node = canopen.RemoteNode(plan.node, od)
        node.sdo.RESPONSE_TIMEOUT = self.can_options.sdo_timeout_s
        network.add_node(node)
        self.feedback.subscribe(network, plan)
        return node

    def _boot(self) -> None:
        """Reset communication of every drive (back to its EDS defaults, pre-operational) and wait boot-up."""
        for plan in self.plan:
            self._send(cia301.NMT_COB_ID, cia301.nmt_frame(cia301.NmtCommand.RESET_COMMUNICATION, plan.node))
        booted = self.feedback.booted
        with self._cond:
            self._cond.wait_for(lambda: len(booted) == len(self.plan), self.can_options.boot_timeout_s)
            missing = [p for p in self.plan if p.index not in booted]
        if missing:
            names = ", ".join(f"{p.name} (node {p.node})" for p in missing)
            raise HardwareError(f"no boot-up message from {names} after a communication reset: check that "
                                f"the drive is powered and wired, set to that node-ID and to "
                                f"{self.can_options.bitrate} bit/s")

    def _sdo(self, plan: NodePlan, node: canopen.RemoteNode, index: int, subindex: int,
             what: str, value: int | None = None) -> int:
        entry = node.sdo[index]
        var = entry if isinstance(entry, SdoVariable) else entry[subindex]
        where = f"{plan.name} (node {plan.node})"
        try:
            if value is None:
                return int(var.raw)
            var.raw = value
            return value
        except SdoAbortedError as exc:
            verb = "reading" if value is None else f"writing {value} to"
            raise HardwareError(f"{where} refused {verb} {what} (0x{index:04X}:{subindex:02X}): "
                                f"{exc}") from None
        except SdoCommunicationError:
            raise HardwareError(f"{where} did not answer an SDO request ({what}) within "
                                f"{self.can_options.sdo_timeout_s:.1f} s") from None
        except (can.CanError, OSError) as exc:
            raise HardwareError(f"CAN bus failed while configuring {where}: {exc}") from None

    def _configure(self, plan: NodePlan, node: canopen.RemoteNode) -> None:
        device_type = self._sdo(plan, node, cia301.DEVICE_TYPE, 0, "device type")
        if device_type & 0xFFFF != 402:
            raise HardwareError(f"{plan.name} (node {plan.node}) is not a CiA 402 drive (device type "
                                f"0x{device_type:08X}); check the node-ID in the rig's [hardware] address")
        if node.object_dictionary.get_variable(cia402.SUPPORTED_DRIVE_MODES, 0) is not None:
            modes = self._sdo(plan, node, cia402.SUPPORTED_DRIVE_MODES, 0, "supported drive modes")
            if not modes & CSP_SUPPORTED:
                raise HardwareError(f"{plan.name} (node {plan.node}) does not support cyclic synchronous position "
                                    f"(supported drive modes 0x6502 = 0x{modes:08X}, bit 7 clear)")
        for write in plan.writes:
            if write.optional and node.object_dictionary.get_variable(write.index, write.subindex) is None:
                continue                  # the drive has no such object (its EDS says): nothing to switch off
            self._sdo(plan, node, write.index, write.subindex, write.label, write.value)
        # The display (0x6061) follows the request (0x6060) when the drive has switched, which may take a
        # while (CiA 402 sets no bound; canopen's BaseNode402 polls it too): ask until it agrees.
        deadline = time.monotonic() + MODE_SWITCH_S
        while True:
            mode = self._sdo(plan, node, cia402.MODES_OF_OPERATION_DISPLAY, 0, "mode of operation display")
            if mode == cia402.Mode.CSP:
                break
            if time.monotonic() > deadline:
                raise HardwareError(f"{plan.name} (node {plan.node}) did not switch to cyclic synchronous "
                                    f"position within {MODE_SWITCH_S:g} s (it still reports mode {mode})")
            time.sleep(MODE_POLL_S)
        position = self._sdo(plan, node, cia402.POSITION_ACTUAL, 0, "position actual value")
        with self._cond:
            self.feedback.position[plan.index] = self._target[plan.index] = position

    def _do_close(self) -> None:
        """Leave every drive de-energised: quick stop what still runs, let it come to rest on its own ramp,
        then "disable voltage" (Switch on disabled), then NMT pre-operational.

        Why not stop at the quick stop: a drive left in Quick stop active stays energised and holding, with
        nobody streaming to it, for as long as the program is gone.  Why wait for rest first: disabling
        voltage while the quick stop ramp still runs lets the axis coast.  A drive still moving after
        ``CLOSE_REST_S`` is left in quick stop (holding), and the log says so.
        """
        try:
            try:
                with self._cond:
                    moving = any(self.feedback.state(i) is DriveState.OPERATION_ENABLED
                                 for i in range(len(self.plan)))
                if moving:
                    self._do_quick_stop()
                if self._wait_at_rest(CLOSE_REST_S):
                    self._do_disable()
                else:
                    log.warning("closing: an axis was still moving %.1f s after the quick stop; the drives "
                                "are left in quick stop, energised", CLOSE_REST_S)
            except HardwareError as exc:
                log.warning("closing: the drives could not be disabled: %s", exc)
            try:
                for plan in self.plan:
                    self._send(cia301.NMT_COB_ID,
                               cia301.nmt_frame(cia301.NmtCommand.ENTER_PRE_OPERATIONAL, plan.node))
            except HardwareError:
                pass                          # closing a dead bus: nothing more to tell it
        finally:
            self._shutdown_network()

    def _wait_at_rest(self, timeout_s: float) -> bool:
        """Send holding cycles until no drive moves (every axis's position unchanged over three
        consecutive answers, within ``REST_COUNTS``: a drive holding still jitters by a count) or
        ``timeout_s`` passes."""
        still = 0
        last: list[int] | None = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_bus()
            self._cycle_and_wait(0.25, hold=False)
            with self._cond:
                now = list(self.feedback.position)
            steady = last is not None and all(abs(a - b) <= REST_COUNTS for a, b in zip(now, last))
            still = still + 1 if steady else 0
            if still >= 3:
                return True
            last = now
        return False

    def _cycle_and_wait(self, timeout_s: float, *, hold: bool) -> None:
        """One cycle (``hold``: with every target where its drive is), then wait up to ``timeout_s`` for
        every drive to answer it (or the bus to fail)."""
        with self._cycle_lock:
            if hold:
                with self._cond:
                    self._target = list(self.feedback.position)
            number = self._cycle()
        with self._cond:
            self._cond.wait_for(lambda: min(self.feedback.answered) >= number or bool(self._bus_problem),
                                timeout_s)

    def _shutdown_network(self) -> None:
        self.stop_heartbeat()
        network, self.network = self.network, None
        if network is not None:
            try:
                network.disconnect()
            except Exception as exc:      # a failed interface may fail to shut down too: already reported
                log.debug("CAN disconnect: %s", exc)

    # -- cyclic -------------------------------------------------------------------------------------------
    def _cycle(self) -> int:
        """One RPDO per drive (latched controlword, target), then SYNC; returns the SYNC's number."""
        with self._cond:
            frames = [(cia301.rpdo_cob_id(1, p.node), RPDO1.pack(self._controlword[i], self._target[i]))
                      for i, p in enumerate(self.plan)]
        for cob_id, data in frames:
            self._send(cob_id, data)
        with self._cond:
            number = self.feedback.sync_going_out(self._sequence)
        self._send(cia301.SYNC_COB_ID, b"")
        self._cycle_out()
        return number

    def _lockstep_heartbeat(self) -> None:
        """Simulated time: the master heartbeat, due by the run's clock, sent with the cycle."""
        now = self.now_ns()
        if self.lockstep and now >= self._next_heartbeat_ns:
            self._next_heartbeat_ns = now + self.can_options.heartbeat_ms * 1_000_000
            self._send(cia301.heartbeat_cob_id(self.can_options.master_id), bytes([cia301.NmtState.OPERATIONAL]))

    def _do_write(self, sequence: int, counts: list[int], tick: int) -> None:
        self._check_bus()
        self._lockstep_heartbeat()
        for plan, value in zip(self.plan, counts):
            if not _I32[0] <= value <= _I32[1]:
                raise HardwareError(f"setpoint for {plan.name} ({value} increments) is beyond the drive's "
                                    "32-bit position range")
        with self._cycle_lock:
            with self._cond:
                self._target = list(counts)
            self._cycle()

    def _do_probe(self) -> None:
        """A cycle that holds every drive where it is (disabled drives ignore the target anyway)."""
        self._check_bus()
        with self._cycle_lock:
            with self._cond:
                self._target = list(self.feedback.position)
            self._cycle()

    def _do_read(self, timeout_s: float) -> RigState | None:
        self._check_bus()
        state = self.feedback.take(timeout_s, lambda: bool(self._bus_problem))
        self._check_bus()
        return state

    # -- state machine ------------------------------------------------------------------------------------
    def _walk(self, done: Callable[[int, DriveState], bool],
              choose: Callable[[int, DriveState], Command | None], timeout_s: float, goal: str) -> None:
        """Send cycles, one command per drive per observed state, until ``done`` holds for every drive."""
        deadline = time.monotonic() + timeout_s
        estops = self._estops
        feedback = self.feedback
        self._walking = True
        try:
            while True:
                self._check_bus()
                if self._estops != estops:
                    raise HardwareError(f"quick stop while {goal}: stopped")
                with self._cond:
                    states = [feedback.state(i) for i in range(len(self.plan))]
                    if all(s is not None and done(i, s) for i, s in enumerate(states)):
                        return
                    if time.monotonic() > deadline:
                        raise HardwareError(self._stuck(states, done, goal, timeout_s))
                    for i, state in enumerate(states):
                        if state is not None and not done(i, state):
                            command = choose(i, state)
                            if command is not None:
                                self._controlword[i] = cia402.controlword_for(command, self._controlword[i])
                self._cycle_and_wait(min(0.25, max(0.0, deadline - time.monotonic())), hold=True)
        finally:
            self._walking = False

    def _stuck(self, states: list[DriveState | None], done: Callable[[int, DriveState], bool], goal: str,
               timeout_s: float) -> str:
        parts = []
        for plan, state, emcy in zip(self.plan, states, self.feedback.emcy):
            if state is None:
                parts.append(f"{plan.name} (node {plan.node}) sent no status")
            elif not done(plan.index, state):
                parts.append(f"{plan.name} (node {plan.node}) stays in {state}"
                             + (f": {emcy.text}" if emcy is not None else ""))
        return f"the drives did not finish {goal} within {timeout_s:.1f} s: " + "; ".join(parts)

    def _toward_enabled(self, i: int, state: DriveState) -> Command | None:
        """The next command toward OPERATION_ENABLED.  A fault is refused: resetting is for the operator."""
        if state in _FAULTED:
            plan, emcy = self.plan[i], self.feedback.emcy[i]
            raise HardwareError(f"{plan.name} (node {plan.node}) is in fault"
                                + (f" ({emcy.text})" if emcy is not None else "")
                                + "; reset the fault before enabling")
        path = cia402.path_to(state, DriveState.OPERATION_ENABLED,
                              quick_stop_option=self.can_options.quick_stop_option)
        return path[0] if path else None

    def _do_enable(self, timeout_s: float) -> None:
        with self._cond:
            rebooted = [self.plan[i] for i in sorted(self.feedback.rebooted)]
        if rebooted:
            names = ", ".join(f"{p.name} (node {p.node})" for p in rebooted)
            raise HardwareError(f"{names} rebooted and lost its configuration: reset before enabling")
        self._walk(lambda i, s: s is DriveState.OPERATION_ENABLED, self._toward_enabled, timeout_s,
                   "enabling")

    def _do_disable(self) -> None:
        off = (DriveState.SWITCH_ON_DISABLED, DriveState.NOT_READY_TO_SWITCH_ON, DriveState.FAULT)
        self._walk(lambda i, s: s in off,
                   lambda i, s: None if s is DriveState.FAULT_REACTION_ACTIVE else Command.DISABLE_VOLTAGE,
                   2.0, "disabling")

    def _arm_heartbeat_consumers(self) -> None:
        """A heartbeat consumer starts watching at the first heartbeat it hears (CiA 301): send one now, so
        that every (re)started drive is armed at once, not up to one period later."""
        self._send(cia301.heartbeat_cob_id(self.can_options.master_id), bytes([cia301.NmtState.OPERATIONAL]))

    def _reconfigure_rebooted(self) -> None:
        """Configure again every drive that rebooted since open (same SDO writes), start it and arm its
        heartbeat consumer: it is back as it was opened, disabled."""
        with self._cond:
            rebooted = sorted(self.feedback.rebooted)
        for i in rebooted:
            plan, node = self.plan[i], self.nodes[i]
            self._configure(plan, node)
            self._send(cia301.NMT_COB_ID, cia301.nmt_frame(cia301.NmtCommand.START, plan.node))
            with self._cond:
                self.feedback.rebooted.discard(i)
                self.feedback.statusword[i] = None      # judge it on what it says from now on
                self._controlword[i] = Command.DISABLE_VOLTAGE.controlword
            self.events.append(f"{plan.name} (node {plan.node}) configured again after its reboot")
        if rebooted:
            self._arm_heartbeat_consumers()

    def _do_fault_reset(self) -> None:
        self._reconfigure_rebooted()
        self._walk(lambda i, s: True, lambda i, s: None, 1.0, "reading the drive states")
        with self._cond:
            faulted = {i for i in range(len(self.plan)) if self.feedback.state(i) in _FAULTED}
        # One rising edge of bit 7 per drive (0x00 first if its last word had bit 7 high), then 0x80 held
        # while the drive leaves FAULT.  Why not an edge every other cycle until it gives in: CiA 402 resets
        # on the edge; a fault whose cause is still present refuses it, and hammering it (about 125 edges a
        # second at 250 Hz) only floods the drive's fault log.  The operator resets again once the cause
        # is gone.
        edged: set[int] = set()

        def one_edge(i: int, state: DriveState) -> Command | None:
            if state is not DriveState.FAULT or i in edged:
                return None
            if not self._controlword[i] & cia402.ControlBit.FAULT_RESET:
                edged.add(i)            # this cycle's 0x80 is the edge
            return Command.FAULT_RESET
        try:
            self._walk(lambda i, s: i not in faulted or s not in _FAULTED, one_edge, 2.0,
                       "resetting faults (the cause may still be present)")
        finally:
            with self._cond:
                for i in faulted:
                    self._controlword[i] = Command.DISABLE_VOLTAGE.controlword
        with self._cond:
            for i in faulted:
                self.feedback.emcy[i] = None

    def _do_quick_stop(self) -> None:
        """Latch QUICK STOP for every drive and send it with a SYNC now.  Never raises: this is the E-stop."""
        self._estops += 1
        try:
            with self._cond:
                self._controlword = [Command.QUICK_STOP.controlword] * len(self.plan)
            locked = self._cycle_lock.acquire(timeout=0.05)
            try:
                self._cycle()
            finally:
                if locked:
                    self._cycle_lock.release()
        except Exception as exc:          # a dead bus must not stop the caller's own reaction
            if str(exc) != self._quick_stop_failed:      # said once, not at every repeat of the E-stop
                self._quick_stop_failed = str(exc)
                log.warning("quick stop could not be sent: %s", exc)
