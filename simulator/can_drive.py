"""One simulated CiA 402 servo drive on CANopen: what canopen's LocalNode leaves to the application.

canopen's :class:`~canopen.LocalNode` gives a drive its object dictionary and an SDO server, nothing else:
it does not apply received RPDOs, does not react to SYNC, and its NMT slave neither boots after a reset
nor lets a test silence its heartbeat.  This class adds exactly that, as a real drive firmware would:

* NMT (boot-up, pre-operational / operational / stopped, reset node / communication);
* on every SYNC: apply the latched RPDO (controlword through :func:`cia402.next_state`, target position),
  step the :class:`~simulator.axis.AxisModel` by one interpolation period (0x60C2), check the
  following-error window (0x6065 for 0x6066 ms -> FAULT, EMCY 0x8611) and send the TPDOs as mapped;
* configuration written over SDO takes effect: mode (0x6060, only CSP moves), heartbeat producer
  (0x1017) and consumer (0x1016), abort-connection option (0x6007), quick-stop option (0x605A), SYNC
  COB-ID (0x1005) and the PDO communication and mapping objects, validated as CiA 301 requires;
* a master whose heartbeat stops is answered by 0x6007 (EMCY 0x8130), and its return by an error reset.

All methods run with the owning rig's lock held (the rig takes it in every callback and in its timer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import canopen
from canopen.objectdictionary import ODVariable

from motionctl.hal import cia301, cia402
from motionctl.hal.cia301 import NmtCommand, NmtState
from motionctl.hal.cia402 import DriveState
from motionctl.hal.emcy import encode_emcy
from simulator.axis import AxisModel
from simulator.can_od import PDO_OBJECTS, DriveConfig, Pdo, error_register_for

if TYPE_CHECKING:
    from simulator.can_device import SimulatedCanRig

EMCY_FOLLOWING_ERROR = 0x8611
EMCY_HEARTBEAT = 0x8130
EMCY_BUS_OFF_RECOVERED = 0x8140
EMCY_PDO_LENGTH = 0x8210
EMCY_PDO_TOO_LONG = 0x8220

_MOVING = (DriveState.OPERATION_ENABLED, DriveState.QUICK_STOP_ACTIVE, DriveState.FAULT_REACTION_ACTIVE)


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
        self._length_error = False
        self._subscribed: list[tuple[int, Callable[[int, bytearray, float], None]]] = []
        self.config = DriveConfig(self.local)

    # -- wiring ---------------------------------------------------------------------------------------------
    def attach(self, network: canopen.Network) -> None:
        """Join ``network`` with this drive's own NMT and SDO handlers in place of the LocalNode's."""
        network[self.node_id] = self.local
        network.unsubscribe(self.local.sdo.rx_cobid, self.local.sdo.on_request)
        network.unsubscribe(cia301.NMT_COB_ID, self.local.nmt.on_command)
        network.subscribe(cia301.NMT_COB_ID, self._locked(self.on_nmt))
        network.subscribe(cia301.sdo_rx_cob_id(self.node_id), self._locked(self.on_sdo))
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
        wanted += [(cia301.heartbeat_cob_id(node), self._locked(self.on_heartbeat))
                   for node in self.config.consumers]
        for cob_id, callback in wanted:
            network.subscribe(cob_id, callback)
        self._subscribed = wanted

    # -- object dictionary --------------------------------------------------------------------------------
    def _on_write(self, index: int, subindex: int, od: ODVariable, data: bytes) -> None:
        """An SDO download, before it is stored: :class:`DriveConfig` refuses or takes it; react to it."""
        value = int(od.decode_raw(data))
        self.config.write(index, subindex, value)
        if index == cia301.PRODUCER_HEARTBEAT:
            self._heartbeat_next = self.rig.clock() + value / 1000.0 if value else None
        if index in (cia301.COB_ID_SYNC, cia301.CONSUMER_HEARTBEAT) or index in PDO_OBJECTS:
            # the drive now listens to other COB-IDs (SYNC, RPDOs, watched heartbeats)
            self._seen = {n: t for n, t in self._seen.items() if n in self.config.consumers}
            self._lost &= set(self.config.consumers)
            self._resubscribe()

    def _on_read(self, index: int, subindex: int, od: ODVariable) -> int | None:
        return self.live_value(index)

    def live_value(self, index: int) -> int | None:
        """The process values a drive computes rather than stores (SDO reads and TPDOs both use this)."""
        if index == cia402.STATUSWORD:
            return self.statusword
        if index == cia402.POSITION_ACTUAL:
            return self.axis.position_counts
        if index == cia402.FOLLOWING_ERROR_ACTUAL:
            return self.axis.following_error_counts if self.state is DriveState.OPERATION_ENABLED else 0
        if index == cia402.VELOCITY_ACTUAL:
            return self.axis.velocity_counts
        if index == cia402.MODES_OF_OPERATION_DISPLAY:
            return self.config.mode
        if index == cia402.ERROR_CODE:
            return self.error_code
        if index == cia301.ERROR_REGISTER:
            return self.error_register
        if index == cia402.CONTROLWORD:
            return self.controlword
        if index == cia402.TARGET_POSITION:
            return self.target_counts
        return None

    @property
    def statusword(self) -> int:
        enabled = self.state is DriveState.OPERATION_ENABLED
        return cia402.statusword_for(
            self.state, following_error=enabled and self._following_over_s > 0,
            drive_follows=enabled and self.config.mode == cia402.Mode.CSP,
            voltage_enabled=self.state not in (DriveState.SWITCH_ON_DISABLED,
                                               DriveState.NOT_READY_TO_SWITCH_ON))

    # -- NMT ------------------------------------------------------------------------------------------------
    def boot(self, reset_application: bool = False) -> None:
        """Power-on, reset node or reset communication: defaults back, boot-up message, pre-operational."""
        if reset_application:
            self.local.data_store.clear()
            self.state = cia402.after_automatic(DriveState.NOT_READY_TO_SWITCH_ON)
            self.error_code = self.error_register = 0
            self.axis.velocity = 0.0
            self.axis.hold()
        else:
            for index in [i for i in self.local.data_store if 0x1000 <= i <= 0x1FFF]:
                del self.local.data_store[index]
        self.state = cia402.after_automatic(self.state)
        self.config.load()
        self._seen.clear()
        self._lost.clear()
        self._latched.clear()
        self._resubscribe()
        self.send(cia301.heartbeat_cob_id(self.node_id), bytes([NmtState.BOOT_UP]))
        self.nmt = NmtState.PRE_OPERATIONAL
        period = self.config.heartbeat_ms / 1000.0
        self._heartbeat_next = self.rig.clock() + period if period else None
        self.rig.changed()

    def on_nmt(self, can_id: int, data: bytes) -> None:
        if len(data) < 2 or data[1] not in (0, self.node_id):
            return
        command = data[0]
        if command in (NmtCommand.STOP, NmtCommand.ENTER_PRE_OPERATIONAL, NmtCommand.RESET_NODE,
                       NmtCommand.RESET_COMMUNICATION) and self.nmt is NmtState.OPERATIONAL:
            self.abort_connection(None)      # CiA 402: leaving OPERATIONAL is a lost connection
        if command == NmtCommand.START and self.nmt in (NmtState.PRE_OPERATIONAL, NmtState.STOPPED):
            self.nmt = NmtState.OPERATIONAL
        elif command == NmtCommand.STOP:
            self.nmt = NmtState.STOPPED
        elif command == NmtCommand.ENTER_PRE_OPERATIONAL:
            self.nmt = NmtState.PRE_OPERATIONAL
        elif command in (NmtCommand.RESET_NODE, NmtCommand.RESET_COMMUNICATION):
            self.boot(reset_application=command == NmtCommand.RESET_NODE)
        self.rig.changed()

    def on_sdo(self, can_id: int, data: bytes) -> None:
        if self.nmt is not NmtState.STOPPED:
            self.local.sdo.on_request(can_id, data, 0.0)

    # -- process data ---------------------------------------------------------------------------------------
    def on_rpdo(self, can_id: int, data: bytes) -> None:
        if self.nmt is not NmtState.OPERATIONAL:
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
        if len(data) != pdo.size:
            if not self._length_error:
                self._length_error = True
                self.emcy(EMCY_PDO_LENGTH if len(data) < pdo.size else EMCY_PDO_TOO_LONG)
            return
        self._length_error = False
        offset, command = 0, None
        for index, subindex, size, signed in pdo.entries:
            value = int.from_bytes(data[offset:offset + size], "little", signed=signed)
            if index == cia402.CONTROLWORD:
                command = value
            elif index == cia402.TARGET_POSITION:
                self.target_counts = value
            else:
                self.local.data_store.setdefault(index, {})[subindex] = data[offset:offset + size]
            offset += size
        if command is not None:
            self._controlword(command)

    def on_sync(self, can_id: int, data: bytes) -> None:
        if self.nmt is not NmtState.OPERATIONAL:
            return
        self.syncs += 1
        self._sync_count += 1
        latched, self._latched = self._latched, {}
        for pdo, data in latched.values():
            self._apply_rpdo(pdo, data)
        self.step(self.config.interpolation_s, new_target=bool(latched))
        for pdo in self.config.tpdos:
            if pdo.valid and 1 <= pdo.trans_type <= 240 and self._sync_count % pdo.trans_type == 0:
                self.rig.transmit_tpdo(self, pdo.cob_id, self._encode(pdo))
                self.tpdos += 1
        self.rig.changed()

    def _encode(self, pdo: Pdo) -> bytes:
        out = bytearray()
        for index, subindex, size, signed in pdo.entries:
            value = self.live_value(index)
            if value is None:
                out += self.local.get_data(index, subindex)[:size].ljust(size, b"\0")
            else:
                out += (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return bytes(out)

    # -- the power drive system ------------------------------------------------------------------------------
    def _controlword(self, word: int) -> None:
        new = cia402.next_state(self.state, word, self.controlword,
                                quick_stop_option=self.config.quick_stop_option)
        self.controlword = word
        self._enter(new)

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
            self.emcy(0)                     # error reset
        self.rig.changed()

    def step(self, dt: float, new_target: bool = True) -> None:
        """Advance the drive by ``dt`` (one interpolation period on SYNC, elapsed time when free-running)."""
        self._last_step = self.rig.clock()
        if self.state is DriveState.OPERATION_ENABLED:
            if self.config.mode == cia402.Mode.CSP and new_target and not self._just_enabled:
                self.axis.set_target(self.target_counts / self.axis.counts_per_unit, dt)
            elif not new_target:
                self.axis.target_velocity = 0.0          # no setpoint this period: hold the last one
            self._just_enabled = False
            self.axis.step(dt)
            window = self.config.window           # 0xFFFFFFFF: following-error monitoring off
            if window != 0xFFFFFFFF and abs(self.axis.following_error_counts) > window:
                self._following_over_s += dt
                if self._following_over_s * 1000.0 >= self.config.following_timeout_ms:
                    self.trip(EMCY_FOLLOWING_ERROR)
            else:
                self._following_over_s = 0.0
        elif self.state is DriveState.QUICK_STOP_ACTIVE:
            if self.axis.brake(dt, self.axis.amax):
                self._enter(cia402.quick_stop_completed(self.state, self.config.quick_stop_option))
        elif self.state is DriveState.FAULT_REACTION_ACTIVE:
            if self.axis.brake(dt, self.axis.amax):
                self._enter(cia402.after_automatic(self.state))

    def trip(self, code: int) -> None:
        """A drive fault: EMCY, fault reaction (brake on the quick-stop ramp), then FAULT."""
        if self.state in (DriveState.FAULT, DriveState.FAULT_REACTION_ACTIVE):
            return
        self.error_code, self.error_register = code, error_register_for(code)
        self.emcy(code)
        self._enter(cia402.fault_occurred(self.state))
        if self.axis.velocity == 0.0:
            self._enter(cia402.after_automatic(self.state))

    def abort_connection(self, code: int | None) -> None:
        """The master is gone (heartbeat timeout, bus-off, NMT): react as 0x6007 says.

        Only a drive in OPERATION_ENABLED reacts (a disabled drive has nothing to stop); the EMCY is sent
        either way, because the lost connection is an error the master should hear about.
        """
        if self.state is not DriveState.OPERATION_ENABLED:
            if code is not None:
                self.error_code, self.error_register = code, error_register_for(code)
                self.emcy(code)
            return
        if self.config.abort_option == cia402.AbortConnectionOption.FAULT_SIGNAL:
            self.trip(code or EMCY_HEARTBEAT)
            return
        if code is not None:
            self.error_code, self.error_register = code, error_register_for(code)
            self.emcy(code)
        self._enter(cia402.on_abort_connection(self.state, self.config.abort_option,
                                               quick_stop_option=self.config.quick_stop_option))

    def emcy(self, code: int) -> None:
        register = self.error_register if code else 0
        self.send(cia301.emcy_cob_id(self.node_id), encode_emcy(code, register))

    def send(self, cob_id: int, data: bytes) -> None:
        if not self.stalled:
            self.rig.send(cob_id, data)

    # -- heartbeat -------------------------------------------------------------------------------------------
    @property
    def heard(self) -> set[int]:
        """The watched nodes whose heartbeat this drive has heard (its consumer monitors only those)."""
        return set(self._seen)

    def on_heartbeat(self, can_id: int, data: bytes) -> None:
        node = can_id - 0x700
        self._seen[node] = self.rig.clock()
        self.rig.changed()
        if node in self._lost:
            self._lost.discard(node)
            if self.error_code == EMCY_HEARTBEAT and self.state not in (DriveState.FAULT,
                                                                        DriveState.FAULT_REACTION_ACTIVE):
                self.error_code = self.error_register = 0
                self.emcy(0)

    def tick(self, now: float, heartbeat_allowed: bool) -> None:
        """The drive's own clock (called by the rig's timer): heartbeats, consumer timeouts, free-running."""
        if self.stalled:
            return
        if self._heartbeat_next is not None and now >= self._heartbeat_next:
            if heartbeat_allowed:
                self.send(cia301.heartbeat_cob_id(self.node_id), bytes([self.nmt]))
            period = self.config.heartbeat_ms / 1000.0
            self._heartbeat_next = max(self._heartbeat_next + period, now + period / 2)
        for node, timeout in self.config.consumers.items():
            seen = self._seen.get(node)       # monitoring starts with the first heartbeat (CiA 301)
            if seen is not None and node not in self._lost and now - seen > timeout:
                self._lost.add(node)
                self.abort_connection(EMCY_HEARTBEAT)
        idle = now - self._last_step
        if self.state in _MOVING and idle > max(5 * self.config.interpolation_s, 0.02):
            self.step(idle, new_target=False)   # no SYNC: the drive's own loop keeps braking or holding
