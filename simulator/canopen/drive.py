"""One simulated CiA 402 servo drive on CANopen: what canopen's LocalNode leaves to the application.

canopen's :class:`~canopen.LocalNode` gives a drive its object dictionary and an SDO server, nothing else:
it does not apply received RPDOs, does not react to SYNC, and its NMT slave neither boots after a reset
nor lets a test silence its heartbeat.  This class adds exactly that, as a real drive firmware would:

* NMT (boot-up, pre-operational / operational / stopped, reset node / communication), each state
  allowing only the communication objects CiA 301 allows in it;
* on every SYNC: apply the latched RPDO (controlword through the CiA 402 FSA, target position),
  step the :class:`~simulator.axis.AxisModel` by one interpolation period (0x60C2), check the
  following-error window (0x6065 for 0x6066 ms -> fault, EMCY 0x8611) and send the TPDOs as mapped;
* configuration written over SDO takes effect: mode (0x6060, only CSP moves), heartbeat producer
  (0x1017) and consumer (0x1016), abort-connection option (0x6007), quick-stop option (0x605A), SYNC
  COB-ID (0x1005) and the PDO communication and mapping objects, validated as CiA 301 requires;
* a lost connection (a master whose heartbeat stops, bus-off, NMT stopped, NMT resets) is answered as
  0x6007 says (EMCY 0x8130 for the heartbeat), and the master's return by an error reset.

Protocol knowledge comes from :mod:`simulator.canopen.cia301_device` and :mod:`simulator.canopen.cia402_device`, the
device's own reading of the standards; nothing is shared with motionctl's host driver.
All methods run with the owning rig's lock held (the rig takes it in every callback and in its timer).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

import canopen
from canopen.objectdictionary import ODVariable
from canopen.sdo import SdoAbortedError

from simulator.axis import AxisModel
from simulator.canopen.od import DriveConfig, Pdo
from simulator.canopen.cia301_device import (NMT_COB_ID, PDO_PARAMETERS, EmcyCode, NmtCommand, NmtState, Od301,
                                     Service, allows, decode_nmt, emcy_frame, error_register_for,
                                     heartbeat_cob_id, heartbeat_frame, heartbeat_node, nmt_next,
                                     sdo_rx_cob_id, tpdo_due)
from simulator.canopen.cia402_device import (EMCY_FOLLOWING_ERROR, FOLLOWING_WINDOW_OFF, POWER_ON,
                                     AbortConnectionOption, Command, DriveState, Mode, Od402, StatusInputs,
                                     Transition,
                                     csp_bits, decode_controlword, following_error_timed_out,
                                     on_abort_connection, on_command, on_fault, on_fault_reaction_completed,
                                     on_quick_stop_completed, statusword, target_reached)

if TYPE_CHECKING:
    from simulator.canopen.device import SimulatedCanRig

#: States in which the motor is still under power and may be moving (the drive's own loop runs).
#: CiA 402 error code class 87xx, sync controller: the drive lost step with the master's SYNC.
EMCY_SYNC = 0x8700

_MOVING = (DriveState.OPERATION_ENABLED, DriveState.QUICK_STOP_ACTIVE, DriveState.FAULT_REACTION_ACTIVE)
_FAULTED = (DriveState.FAULT_REACTION_ACTIVE, DriveState.FAULT)
_POWER_DISABLED = (DriveState.NOT_READY_TO_SWITCH_ON, DriveState.SWITCH_ON_DISABLED)


class SimulatedDrive:
    """A CiA 402 drive at ``node_id`` moving ``axis`` (part of a SimulatedCanRig)."""

    def __init__(self, rig: SimulatedCanRig, node_id: int, axis: AxisModel,
                 od: canopen.ObjectDictionary) -> None:
        self.rig = rig
        self.node_id = node_id
        self.name = axis.name
        self.axis = axis
        self.local = canopen.LocalNode(node_id, od)
        # The NMT slave would start its own periodic heartbeat on a 0x1017 write; this drive produces its
        # heartbeat itself so that fault injection (heartbeat loss, bus-off, stall) can silence it.
        self.local._write_callbacks.remove(self.local.nmt.on_write)
        self.local.add_write_callback(self._on_write)
        self.local.add_read_callback(self._on_read)
        self.nmt = NmtState.BOOT_UP
        self.state = DriveState.NOT_READY_TO_SWITCH_ON
        self.controlword = 0
        self.target_counts = axis.position_counts
        self.error_code = 0
        self.error_register = 0
        self.stalled = False
        self.syncs = self.rpdos = self.tpdos = 0
        self._latched: dict[int, tuple[Pdo, bytes]] = {}     # synchronous RPDOs, by COB-ID
        self._just_enabled = False
        self._following_over_s = 0.0
        self._sync_count = 0
        self._last_step = self.rig.clock()
        self._heartbeat_next: float | None = None
        self._seen: dict[int, float] = {}
        self._lost: set[int] = set()
        self._length_error = 0             # the EMCY code of the RPDO length error going on, if any
        self._subscribed: list[tuple[int, Callable[[int, bytearray, float], None]]] = []
        self.config = DriveConfig(self.local)
        # Behaviour real drives have, switched on per drive by the rig's fault injection (--fault):
        self.mode_lag_s = 0.0              #: 0x6061 shows a newly requested mode this long after (wall time)
        self._mode_shown = Mode.NO_MODE
        self._mode_asked_at = float("-inf")
        self.sync_watch = 0                #: fault after this many SYNC periods without one (0: not watched)
        self._sync_period_s = 0.0          #: 0x1006 as written
        self._last_sync: float | None = None
        self.fault_cause = 0               #: a fault's cause still present: fault reset is refused meanwhile
        self.refused: dict[int, int] = {}  #: object index -> the SDO abort code its writes get

    # -- wiring ---------------------------------------------------------------------------------------------
    def attach(self, network: canopen.Network) -> None:
        """Join ``network`` with this drive's own NMT and SDO handlers in place of the LocalNode's."""
        network[self.node_id] = self.local
        network.unsubscribe(self.local.sdo.rx_cobid, self.local.sdo.on_request)
        network.unsubscribe(NMT_COB_ID, self.local.nmt.on_command)
        network.subscribe(NMT_COB_ID, self._locked(self.on_nmt))
        network.subscribe(sdo_rx_cob_id(self.node_id), self._locked(self.on_sdo))
        self._resubscribe()

    def _locked(self, handler: Callable[[int, bytes], None]) -> Callable[[int, bytearray, float], None]:
        """A bus callback that takes the rig's lock and ignores everything while the drive is stalled."""
        def call(can_id: int, data: bytearray, timestamp: float) -> None:
            with self.rig.lock:
                if not self.stalled:
                    handler(can_id, bytes(data))
        return call

    def _resubscribe(self) -> None:
        """Listen to the SYNC, RPDO and watched-heartbeat COB-IDs the object dictionary names now."""
        network = self.local.network
        for cob_id, callback in self._subscribed:
            network.unsubscribe(cob_id, callback)
        wanted = [(self.config.sync_cob_id, self._locked(self.on_sync))]
        wanted += [(p.cob_id, self._locked(self.on_rpdo)) for p in self.config.rpdos if p.valid]
        wanted += [(heartbeat_cob_id(node), self._locked(self.on_heartbeat))
                   for node in self.config.consumers]
        for cob_id, callback in wanted:
            network.subscribe(cob_id, callback)
        self._subscribed = wanted

    # -- object dictionary --------------------------------------------------------------------------------
    def _on_write(self, index: int, subindex: int, od: ODVariable, data: bytes) -> None:
        """An SDO download, before it is stored: :class:`DriveConfig` refuses or takes it; react to it."""
        value = int(od.decode_raw(data))
        if index in self.refused:
            raise SdoAbortedError(self.refused[index])   # as this drive's firmware would, for its reasons
        before = self.config.mode
        self.config.write(index, subindex, value)
        if index == Od402.MODES_OF_OPERATION and value != before:
            self._mode_shown, self._mode_asked_at = before, time.monotonic()
        if index == Od301.COMMUNICATION_CYCLE_PERIOD:
            self._sync_period_s = value / 1e6
        if index == Od301.PRODUCER_HEARTBEAT_TIME:
            self._heartbeat_next = self.rig.clock() + value / 1000.0 if value else None
        if index in (Od301.COB_ID_SYNC, Od301.CONSUMER_HEARTBEAT_TIME) or index in PDO_PARAMETERS:
            # the drive now listens to other COB-IDs (SYNC, RPDOs, watched heartbeats)
            self._seen = {n: t for n, t in self._seen.items() if n in self.config.consumers}
            self._lost &= set(self.config.consumers)
            self._resubscribe()

    def _on_read(self, index: int, subindex: int, od: ODVariable) -> int | None:
        return self.live_value(index)

    def live_value(self, index: int) -> int | None:
        """The process values a drive computes rather than stores (SDO reads and TPDOs both use this)."""
        if index == Od402.STATUSWORD:
            return self.statusword
        if index == Od402.POSITION_ACTUAL:
            return self.axis.position_counts
        if index == Od402.FOLLOWING_ERROR_ACTUAL:
            return self.axis.following_error_counts if self.state is DriveState.OPERATION_ENABLED else 0
        if index == Od402.VELOCITY_ACTUAL:
            return self.axis.velocity_counts
        if index == Od402.MODES_OF_OPERATION_DISPLAY:
            if time.monotonic() - self._mode_asked_at < self.mode_lag_s:
                return self._mode_shown          # the display lags the request (CiA 402 sets no bound)
            return self.config.mode
        if index == Od402.ERROR_CODE:
            return self.error_code
        if index == Od301.ERROR_REGISTER:
            return self.error_register
        if index == Od402.CONTROLWORD:
            return self.controlword
        if index == Od402.TARGET_POSITION:
            return self.target_counts
        return None

    @property
    def warning(self) -> bool:
        """Statusword bit 7: an error is pending (0x603F) that has not put the drive into fault -- a lost
        master with 0x6007 = 0, say, or one the drive reacted to only by stopping."""
        return self.error_code != 0 and self.state not in _FAULTED

    @property
    def statusword(self) -> int:
        config = self.config
        timed_out = (config.window != FOLLOWING_WINDOW_OFF
                     and following_error_timed_out(self._following_over_s, config.following_timeout_ms))
        halted = self.axis.velocity == 0.0
        return statusword(self.state, StatusInputs(
            voltage_enabled=self.state not in _POWER_DISABLED, warning=self.warning,
            target_reached=target_reached(self.state, config.quick_stop_option, halted),
            mode_bits=csp_bits(self.state, config.mode, timed_out)))

    # -- NMT ------------------------------------------------------------------------------------------------
    def boot(self, reset_application: bool = False) -> None:
        """Power-on, reset node or reset communication: defaults back, boot-up message, pre-operational.

        Reset application puts the whole object dictionary back and the FSA through its power-on
        transitions 0 and 1; reset communication only the communication area 0x1000-0x1FFF (CiA 301).
        """
        if reset_application:
            self.local.data_store.clear()
            for transition in POWER_ON:         # 0: start -> not ready; 1: self test done -> disabled
                self.state = transition.target
            self.controlword = 0
            self.error_code = self.error_register = 0
            self.axis.velocity = 0.0
            self.axis.hold()
            self.target_counts = self.axis.position_counts
        else:
            for index in [i for i in self.local.data_store if 0x1000 <= i <= 0x1FFF]:
                del self.local.data_store[index]
        self.config.load()
        self._sync_period_s, self._last_sync = 0.0, None     # 0x1006 is communication area: back to default
        self._seen.clear()
        self._lost.clear()
        self._latched.clear()
        self._resubscribe()
        self.nmt = NmtState.BOOT_UP
        self.send(heartbeat_cob_id(self.node_id), heartbeat_frame(NmtState.BOOT_UP))
        self.nmt = NmtState.PRE_OPERATIONAL     # initialisation ends there on its own (CiA 301)
        period = self.config.heartbeat_ms / 1000.0
        self._heartbeat_next = self.rig.clock() + period if period else None
        self.rig.changed()

    def on_nmt(self, can_id: int, data: bytes) -> None:
        command = decode_nmt(data, self.node_id)
        if command is None:
            return
        if command in (NmtCommand.RESET_NODE, NmtCommand.RESET_COMMUNICATION):
            self.abort_connection(None)          # 0x6007 events: reset application / communication
            self.boot(reset_application=command is NmtCommand.RESET_NODE)
        else:
            before, self.nmt = self.nmt, nmt_next(self.nmt, command)
            if self.nmt is NmtState.STOPPED and before is not NmtState.STOPPED:
                self.abort_connection(None)      # 0x6007 event: NMT stopped state entered
        self.rig.changed()

    def on_sdo(self, can_id: int, data: bytes) -> None:
        if allows(self.nmt, Service.SDO):
            self.local.sdo.on_request(can_id, data, 0.0)

    # -- process data ---------------------------------------------------------------------------------------
    def on_rpdo(self, can_id: int, data: bytes) -> None:
        if not allows(self.nmt, Service.PDO):
            return
        self.rpdos += 1
        self.rig.first_setpoint()
        self.rig.changed()
        pdo = next((p for p in self.config.rpdos if p.cob_id == can_id and p.valid), None)
        if pdo is None:
            return
        if pdo.synchronous:
            self._latched[can_id] = (pdo, data)      # takes effect on the next SYNC
        else:
            self._apply_rpdo(pdo, data)

    def _apply_rpdo(self, pdo: Pdo, data: bytes) -> None:
        """Write a received PDO into the application.  CiA 301 (7.2.2): fewer bytes than mapped -> not
        processed, EMCY 0x8210; more -> the mapped bytes are used, EMCY 0x8220.  One EMCY per kind of
        error, until a PDO of the right length ends it."""
        if len(data) != pdo.size:
            code = EmcyCode.PDO_LENGTH if len(data) < pdo.size else EmcyCode.PDO_LENGTH_EXCEEDED
            if self._length_error != code:
                self._length_error = code
                self.emcy(code, self.error_register | error_register_for(code))
            if len(data) < pdo.size:
                return
        else:
            self._length_error = 0
        offset, command = 0, None
        for entry in pdo.entries:
            raw = data[offset:offset + entry.size]
            value = int.from_bytes(raw, "little", signed=entry.signed)
            if entry.index == Od402.CONTROLWORD:
                command = value
            elif entry.index == Od402.TARGET_POSITION:
                self.target_counts = value
            else:
                self.local.data_store.setdefault(entry.index, {})[entry.subindex] = raw
            offset += entry.size
        if command is not None:
            self._controlword(command)

    def on_sync(self, can_id: int, data: bytes) -> None:
        """A SYNC: the drive's interpolation clock.  PDOs (latched RPDOs in, TPDOs out) only in
        operational; pre-operational still consumes SYNC (CiA 301, states and communication objects)."""
        if not allows(self.nmt, Service.SYNC):
            return
        self.syncs += 1
        self._last_sync = self.rig.clock()
        latched: dict[int, tuple[Pdo, bytes]] = {}
        if allows(self.nmt, Service.PDO):
            self._sync_count += 1
            latched, self._latched = self._latched, {}
            for pdo, payload in latched.values():
                self._apply_rpdo(pdo, payload)
        self.step(self.config.interpolation_s, new_target=bool(latched))
        if allows(self.nmt, Service.PDO):
            for pdo in self.config.tpdos:
                if pdo.valid and tpdo_due(pdo.trans_type, self._sync_count):
                    self.rig.transmit_tpdo(self, pdo.cob_id, self._encode(pdo))
                    self.tpdos += 1
        self.rig.changed()

    def _encode(self, pdo: Pdo) -> bytes:
        out = bytearray()
        for entry in pdo.entries:
            value = self.live_value(entry.index)
            if value is None:
                out += self.local.get_data(entry.index, entry.subindex)[:entry.size].ljust(entry.size, b"\0")
            else:
                out += (value & ((1 << (8 * entry.size)) - 1)).to_bytes(entry.size, "little")
        return bytes(out)

    # -- the power drive system ------------------------------------------------------------------------------
    def _controlword(self, word: int) -> None:
        command = decode_controlword(word, self.controlword)
        self.controlword = word
        if command is Command.FAULT_RESET and self.state is DriveState.FAULT and self.fault_cause:
            self.error(self.fault_cause)         # the cause is still there: stay in fault and say so again
            return
        self._take(on_command(self.state, command, self.config.quick_stop_option))

    def _take(self, transition: Transition | None) -> None:
        if transition is not None:
            self._enter(transition.target)

    def _enter(self, new: DriveState) -> None:
        old, self.state = self.state, new
        if new is old:
            return
        if new is DriveState.OPERATION_ENABLED:
            self.axis.hold()
            self._just_enabled = True
            self._following_over_s = 0.0
        elif new not in _MOVING:
            self.axis.velocity = 0.0
            self.axis.hold()
        if old is DriveState.FAULT and new is DriveState.SWITCH_ON_DISABLED:
            self.error_code = self.error_register = 0
            self.emcy(EmcyCode.NO_ERROR, 0)      # error reset
        if new is DriveState.QUICK_STOP_ACTIVE and not self.config.quick_stop_option.brakes:
            self.axis.velocity = 0.0             # option 0: torque off at once, nothing left to ramp
            self.axis.hold()
            self._take(on_quick_stop_completed(new, self.config.quick_stop_option))
        self.rig.changed()

    def step(self, dt: float, new_target: bool = True) -> None:
        """Advance the drive by ``dt`` (one interpolation period on SYNC, elapsed time when free-running).

        Every braking quick stop option (1-8) and the fault reaction brake at the axis' own deceleration
        limit: this drive does not apply 0x6084 / 0x6085 (profile / quick stop deceleration)."""
        self._last_step = self.rig.clock()
        if self.state is DriveState.OPERATION_ENABLED:
            if self.config.mode == Mode.CYCLIC_SYNC_POSITION and new_target and not self._just_enabled:
                self.axis.set_target(self.target_counts / self.axis.counts_per_unit, dt)
            elif not new_target:
                self.axis.target_velocity = 0.0          # no setpoint this period: hold the last one
            self._just_enabled = False
            self.axis.step(dt)
            window = self.config.window
            if window != FOLLOWING_WINDOW_OFF and abs(self.axis.following_error_counts) > window:
                self._following_over_s += dt
                if following_error_timed_out(self._following_over_s, self.config.following_timeout_ms):
                    self.trip(EMCY_FOLLOWING_ERROR)      # the reaction is the manufacturer's: a fault
            else:
                self._following_over_s = 0.0
        elif self.state is DriveState.QUICK_STOP_ACTIVE:
            if self.axis.brake(dt, self.axis.amax):
                self._take(on_quick_stop_completed(self.state, self.config.quick_stop_option))
        elif self.state is DriveState.FAULT_REACTION_ACTIVE:
            if self.axis.brake(dt, self.axis.amax):
                self._take(on_fault_reaction_completed(self.state))

    def trip(self, code: int) -> None:
        """A drive fault: EMCY, fault reaction (transition 13: brake on the quick-stop ramp), then fault
        (transition 14) once at rest."""
        transition = on_fault(self.state)
        if transition is None:
            return                               # already reacting to a fault, or in fault
        self.error(code)
        self._enter(transition.target)
        if self.axis.velocity == 0.0:
            self._take(on_fault_reaction_completed(self.state))

    def error(self, code: int) -> None:
        """An error: 0x603F and 0x1001 show it and its EMCY goes out (what it does to the FSA is the
        caller's business)."""
        self.error_code, self.error_register = code, error_register_for(code)
        self.emcy(code, self.error_register)

    def warn(self, code: int) -> None:
        """A warning (``code``) or its end (0): 0x603F and the EMCY say so, statusword bit 7 shows it, and
        the FSA does not change (CiA 402: warnings are not faults)."""
        if code:
            self.error(code)
        elif self.state not in _FAULTED:
            self.error_code = self.error_register = 0
            self.emcy(EmcyCode.NO_ERROR, 0)

    def abort_connection(self, code: int | None) -> None:
        """The connection to the master is lost (heartbeat timeout, bus-off, NMT stopped or reset): react
        as 0x6007 says (CiA 402, object 6007h), when the drive is in Operation enabled.

        Why only there: the object lists the events but not the states; drives as vendors ship them
        (e.g. maxon's EPOS firmware) take the reaction only while the power stage drives the motor, which
        is what a lost master endangers.  A disabled drive that faulted on every reset communication would
        fault on every master's start-up.  Elsewhere the event is still reported (0x603F, EMCY, warning).

        ``code`` is the EMCY the event is reported with (0x8130 for a heartbeat timeout); None where no
        EMCY says so (bus-off: nothing can be sent; NMT: the master did it itself).  A fault signal with
        no code of its own is a generic communication error, 0x8100.
        """
        option = self.config.abort_option
        if self.state is not DriveState.OPERATION_ENABLED:
            if code is not None:
                self.error(code)
            return
        if option is AbortConnectionOption.FAULT_SIGNAL:
            self.trip(EmcyCode.COMMUNICATION if code is None else code)
            return
        if code is not None:
            self.error(code)
        self._take(on_abort_connection(self.state, option, self.config.quick_stop_option))

    def emcy(self, code: int, register: int) -> None:
        """Send an EMCY on the COB-ID of 0x1014, if that is valid and the NMT state allows EMCY (not in
        stopped, CiA 301)."""
        if self.config.emcy_cob_id is not None and allows(self.nmt, Service.EMCY):
            self.send(self.config.emcy_cob_id, emcy_frame(code, register))

    def send(self, cob_id: int, data: bytes) -> None:
        if not self.stalled:
            self.rig.send(cob_id, data)

    # -- heartbeat -------------------------------------------------------------------------------------------
    @property
    def heard(self) -> set[int]:
        """The watched nodes whose heartbeat this drive has heard (its consumer monitors only those)."""
        return set(self._seen)

    def on_heartbeat(self, can_id: int, data: bytes) -> None:
        node = heartbeat_node(can_id)
        self._seen[node] = self.rig.clock()
        self.rig.changed()
        if node in self._lost:
            self._lost.discard(node)
            if self.error_code == EmcyCode.HEARTBEAT and self.state not in _FAULTED:
                self.error_code = self.error_register = 0
                self.emcy(EmcyCode.NO_ERROR, 0)

    def tick(self, now: float, heartbeat_allowed: bool) -> None:
        """The drive's own clock (called by the rig's timer): heartbeats, consumer timeouts, free-running."""
        if self.stalled:
            return
        if self._heartbeat_next is not None and now >= self._heartbeat_next:
            if heartbeat_allowed:
                self.send(heartbeat_cob_id(self.node_id), heartbeat_frame(self.nmt))
            period = self.config.heartbeat_ms / 1000.0
            self._heartbeat_next = max(self._heartbeat_next + period, now + period / 2)
        for node, timeout in self.config.consumers.items():
            seen = self._seen.get(node)       # monitoring starts with the first heartbeat (CiA 301)
            if seen is not None and node not in self._lost and now - seen > timeout:
                self._lost.add(node)
                self.abort_connection(EmcyCode.HEARTBEAT)
        period = self._sync_period_s or self.config.interpolation_s
        if (self.sync_watch and self.state is DriveState.OPERATION_ENABLED and self._last_sync is not None
                and now - self._last_sync > self.sync_watch * period + 1e-9):
            self.trip(EMCY_SYNC)                 # SYNC monitoring: the drive lost step with its master
        idle = now - self._last_step
        if self.state in _MOVING and idle > max(5 * self.config.interpolation_s, 0.02):
            self.step(idle, new_target=False)   # no SYNC: the drive's own loop keeps braking or holding
