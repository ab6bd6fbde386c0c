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

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import canopen
from canopen.objectdictionary import ODVariable, datatypes
from canopen.sdo import SdoAbortedError

from motionctl.hal import cia402
from motionctl.hal.cia402 import DriveState, NmtCommand, NmtState
from motionctl.hal.emcy import ErrorRegister, encode_emcy
from simulator.axis import AxisModel

if TYPE_CHECKING:
    from simulator.can_device import SimulatedCanRig

EMCY_FOLLOWING_ERROR = 0x8611
EMCY_HEARTBEAT = 0x8130
EMCY_BUS_OFF_RECOVERED = 0x8140
EMCY_PDO_LENGTH = 0x8210
EMCY_PDO_TOO_LONG = 0x8220

ABORT_UNSUPPORTED_ACCESS = 0x06010000
ABORT_NOT_MAPPABLE = 0x06040041
ABORT_PDO_LENGTH = 0x06040042
ABORT_INCOMPATIBLE = 0x06040043
ABORT_VALUE_RANGE = 0x06090030
ABORT_VALUE_TOO_HIGH = 0x06090031
ABORT_VALUE_TOO_LOW = 0x06090032

_MOVING = (DriveState.OPERATION_ENABLED, DriveState.QUICK_STOP_ACTIVE, DriveState.FAULT_REACTION_ACTIVE)
_PDO_COMM = range(0x1400, 0x1A00)
_PDO_INVALID = cia402.PDO_COB_ID_INVALID

Pending = dict[tuple[int, int], int]


def error_register_for(code: int) -> int:
    """The error register (0x1001) bits an EMCY code sets."""
    register = ErrorRegister.GENERIC
    group = code & 0xF000
    register |= {0x2000: ErrorRegister.CURRENT, 0x3000: ErrorRegister.VOLTAGE,
                 0x4000: ErrorRegister.TEMPERATURE}.get(group, ErrorRegister(0))
    if code & 0xFF00 in (0x8100, 0x8200):
        register |= ErrorRegister.COMMUNICATION
    elif group == 0x8000:
        register |= ErrorRegister.DEVICE_PROFILE
    if code & 0xFF00 == 0xFF00:
        register |= ErrorRegister.MANUFACTURER
    return int(register)


@dataclass(frozen=True)
class Pdo:
    """One PDO as currently configured: COB-ID, transmission type and (index, sub, bytes, signed) entries."""

    cob_id: int
    valid: bool
    trans_type: int
    entries: tuple[tuple[int, int, int, bool], ...]

    @property
    def size(self) -> int:
        return sum(e[2] for e in self.entries)


class SimulatedDrive:
    """A CiA 402 drive at ``node_id`` moving ``axis``; owned by a :class:`~simulator.can_device.SimulatedCanRig`."""

    def __init__(self, rig: SimulatedCanRig, node_id: int, axis: AxisModel, od: canopen.ObjectDictionary) -> None:
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
        self._rpdo_latched: bytes | None = None
        self._just_enabled = False
        self._following_over_s = 0.0
        self._sync_count = 0
        self._last_step = time.monotonic()
        self._heartbeat_next: float | None = None
        self._seen: dict[int, float] = {}
        self._lost: set[int] = set()
        self._length_error = False
        self._subscribed: list[tuple[int, Callable[[int, bytearray, float], None]]] = []
        self._load_configuration()

    # -- wiring ---------------------------------------------------------------------------------------------
    def attach(self, network: canopen.Network) -> None:
        """Join ``network`` with this drive's own NMT and SDO handlers in place of the LocalNode's."""
        network[self.node_id] = self.local
        network.unsubscribe(self.local.sdo.rx_cobid, self.local.sdo.on_request)
        network.unsubscribe(cia402.NMT_COB_ID, self.local.nmt.on_command)
        network.subscribe(cia402.NMT_COB_ID, self._locked(self.on_nmt))
        network.subscribe(cia402.sdo_rx_cob_id(self.node_id), self._locked(self.on_sdo))
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
        wanted = [(self.sync_cob_id, self._locked(self.on_sync))]
        wanted += [(p.cob_id, self._locked(self.on_rpdo)) for p in self.rpdos_config if p.valid]
        wanted += [(cia402.heartbeat_cob_id(node), self._locked(self.on_heartbeat)) for node in self.consumers]
        for cob_id, callback in wanted:
            network.subscribe(cob_id, callback)
        self._subscribed = wanted

    # -- object dictionary --------------------------------------------------------------------------------
    def _get(self, index: int, subindex: int = 0) -> int:
        var = self.local._find_object(index, subindex)
        return int(var.decode_raw(self.local.get_data(index, subindex)))

    def _has(self, index: int) -> bool:
        return index in self.local.object_dictionary

    def _value(self, index: int, subindex: int, pending: Pending) -> int:
        """A stored value, or the one being written (``pending``) while a write is validated."""
        if (index, subindex) in pending:
            return pending[(index, subindex)]
        return self._get(index, subindex)

    def _pdo(self, comm: int, mapping: int, pending: Pending) -> Pdo:
        def get(index: int, sub: int) -> int:
            return self._value(index, sub, pending)
        entries = []
        for sub in range(1, get(mapping, 0) + 1):
            entry = get(mapping, sub)
            index, subindex, bits = entry >> 16, (entry >> 8) & 0xFF, entry & 0xFF
            var = self.local.object_dictionary.get_variable(index, subindex)
            if var is None or not var.pdo_mappable or bits % 8 or bits != len(var):
                raise SdoAbortedError(ABORT_NOT_MAPPABLE)
            entries.append((index, subindex, bits // 8, var.data_type in datatypes.SIGNED_TYPES))
        pdo = Pdo(get(comm, 1) & 0x7FF, not get(comm, 1) & _PDO_INVALID, get(comm, 2), tuple(entries))
        if pdo.size > 8:
            raise SdoAbortedError(ABORT_PDO_LENGTH)
        return pdo

    def _pdos(self, comm_base: int, map_base: int, pending: Pending) -> list[Pdo]:
        return [self._pdo(comm_base + n, map_base + n, pending) for n in range(4)
                if self._has(comm_base + n) and self._has(map_base + n)]

    def _load_configuration(self, pending: Pending | None = None) -> None:
        """Cache what the SYNC path needs, from the object dictionary (plus a write being validated).

        Raises :class:`SdoAbortedError` if the result would be inconsistent, which refuses the write.
        """
        pending = pending or {}

        def get(index: int, sub: int = 0) -> int:
            return self._value(index, sub, pending)
        self.mode = get(cia402.MODES_OF_OPERATION)
        period = cia402.interpolation_seconds(get(cia402.INTERPOLATION_TIME_PERIOD, 1),
                                              get(cia402.INTERPOLATION_TIME_PERIOD, 2))
        self.interpolation_s = float(period)
        self.heartbeat_ms = get(cia402.PRODUCER_HEARTBEAT)
        consumers: dict[int, float] = {}
        for sub in range(1, get(cia402.CONSUMER_HEARTBEAT, 0) + 1):
            entry = get(cia402.CONSUMER_HEARTBEAT, sub)
            node, ms = (entry >> 16) & 0x7F, entry & 0xFFFF
            if node and ms:
                if node in consumers:
                    raise SdoAbortedError(ABORT_INCOMPATIBLE)
                consumers[node] = ms / 1000.0
        self.consumers = consumers
        self.window = get(cia402.FOLLOWING_ERROR_WINDOW)
        self.following_timeout_ms = get(cia402.FOLLOWING_ERROR_TIMEOUT)
        self.quick_stop_option = get(cia402.QUICK_STOP_OPTION)
        self.abort_option = get(cia402.ABORT_CONNECTION_OPTION)
        self.sync_cob_id = get(cia402.COB_ID_SYNC) & 0x7FF
        self.rpdos_config = self._pdos(cia402.RPDO_COMMUNICATION, cia402.RPDO_MAPPING, pending)
        self.tpdos_config = self._pdos(cia402.TPDO_COMMUNICATION, cia402.TPDO_MAPPING, pending)

    def _on_write(self, index: int, subindex: int, od: ODVariable, data: bytes) -> None:
        """An SDO download, before it is stored: refuse what a drive would refuse, apply the rest."""
        value = int(od.decode_raw(data))
        if index == cia402.MODES_OF_OPERATION and value not in (cia402.Mode.NO_MODE, cia402.Mode.CSP):
            raise SdoAbortedError(ABORT_VALUE_RANGE)          # this drive only does CSP
        if index == cia402.QUICK_STOP_OPTION and not 0 <= value <= 8:
            raise SdoAbortedError(ABORT_VALUE_RANGE)
        if index == cia402.ABORT_CONNECTION_OPTION and not 0 <= value <= 3:
            raise SdoAbortedError(ABORT_VALUE_RANGE)
        if index == cia402.INTERPOLATION_TIME_PERIOD and subindex == 1 and value == 0:
            raise SdoAbortedError(ABORT_VALUE_TOO_LOW)
        if index == cia402.COB_ID_SYNC and value & (1 << 30):
            raise SdoAbortedError(ABORT_VALUE_RANGE)          # a drive does not produce SYNC
        if index in _PDO_COMM:
            self._check_pdo_write(index, subindex, value)
        self._load_configuration({(index, subindex): value})
        if index == cia402.PRODUCER_HEARTBEAT:
            self._heartbeat_next = time.monotonic() + value / 1000.0 if value else None
        if index in (cia402.COB_ID_SYNC, cia402.CONSUMER_HEARTBEAT) or index in _PDO_COMM:
            self._seen = {n: t for n, t in self._seen.items() if n in self.consumers}
            self._lost &= set(self.consumers)
            self._resubscribe()

    def _check_pdo_write(self, index: int, subindex: int, value: int) -> None:
        """CiA 301 remapping rules: a valid PDO keeps its COB-ID and mapping; count first to 0."""
        is_mapping = index & 0x0200 != 0
        comm = index & ~0x0200
        valid = not self._get(comm, 1) & _PDO_INVALID
        if not is_mapping and subindex == 1 and valid and not value & _PDO_INVALID \
                and (value & 0x7FF) != (self._get(comm, 1) & 0x7FF):
            raise SdoAbortedError(ABORT_VALUE_RANGE)
        if is_mapping:
            if valid:
                raise SdoAbortedError(ABORT_UNSUPPORTED_ACCESS)
            if subindex == 0 and value > 8:
                raise SdoAbortedError(ABORT_VALUE_TOO_HIGH)
            if subindex > 0 and self._get(index, 0) != 0:
                raise SdoAbortedError(ABORT_UNSUPPORTED_ACCESS)

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
            return self.mode
        if index == cia402.ERROR_CODE:
            return self.error_code
        if index == cia402.ERROR_REGISTER:
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
            drive_follows=enabled and self.mode == cia402.Mode.CSP,
            voltage_enabled=self.state not in (DriveState.SWITCH_ON_DISABLED, DriveState.NOT_READY_TO_SWITCH_ON))

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
        self._load_configuration()
        self._seen.clear()
        self._lost.clear()
        self._rpdo_latched = None
        self._resubscribe()
        self.send(cia402.heartbeat_cob_id(self.node_id), bytes([NmtState.BOOT_UP]))
        self.nmt = NmtState.PRE_OPERATIONAL
        self._heartbeat_next = time.monotonic() + self.heartbeat_ms / 1000.0 if self.heartbeat_ms else None
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
        pdo = next((p for p in self.rpdos_config if p.cob_id == can_id and p.valid), None)
        if pdo is None:
            return
        if pdo.trans_type <= 240:
            self._rpdo_latched = data        # synchronous: takes effect on the next SYNC
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
        latched, self._rpdo_latched = self._rpdo_latched, None
        if latched is not None:
            pdo = next((p for p in self.rpdos_config if p.valid and p.trans_type <= 240), None)
            if pdo is not None:
                self._apply_rpdo(pdo, latched)
        self.step(self.interpolation_s, new_target=latched is not None)
        for pdo in self.tpdos_config:
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

    # -- the power drive system -------------------------------------------------------------------------------
    def _controlword(self, word: int) -> None:
        new = cia402.next_state(self.state, word, self.controlword, quick_stop_option=self.quick_stop_option)
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
        self._last_step = time.monotonic()
        if self.state is DriveState.OPERATION_ENABLED:
            if self.mode == cia402.Mode.CSP and new_target and not self._just_enabled:
                self.axis.set_target(self.target_counts / self.axis.counts_per_unit, dt)
            elif not new_target:
                self.axis.target_velocity = 0.0          # no setpoint this period: hold the last one
            self._just_enabled = False
            self.axis.step(dt)
            if self.window != 0xFFFFFFFF and abs(self.axis.following_error_counts) > self.window:
                self._following_over_s += dt
                if self._following_over_s * 1000.0 >= self.following_timeout_ms:
                    self.trip(EMCY_FOLLOWING_ERROR)
            else:
                self._following_over_s = 0.0
        elif self.state is DriveState.QUICK_STOP_ACTIVE:
            if self.axis.brake(dt, self.axis.amax):
                self._enter(cia402.quick_stop_completed(self.state, self.quick_stop_option))
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
        if self.abort_option == cia402.AbortConnectionOption.FAULT_SIGNAL:
            self.trip(code or EMCY_HEARTBEAT)
            return
        if code is not None:
            self.error_code, self.error_register = code, error_register_for(code)
            self.emcy(code)
        self._enter(cia402.on_abort_connection(self.state, self.abort_option,
                                               quick_stop_option=self.quick_stop_option))

    def emcy(self, code: int) -> None:
        register = self.error_register if code else 0
        self.send(cia402.emcy_cob_id(self.node_id), encode_emcy(code, register))

    def send(self, cob_id: int, data: bytes) -> None:
        if not self.stalled:
            self.rig.send(cob_id, data)

    # -- heartbeat --------------------------------------------------------------------------------------------
    def on_heartbeat(self, can_id: int, data: bytes) -> None:
        node = can_id - 0x700
        self._seen[node] = time.monotonic()
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
                self.send(cia402.heartbeat_cob_id(self.node_id), bytes([self.nmt]))
            period = self.heartbeat_ms / 1000.0
            self._heartbeat_next = max(self._heartbeat_next + period, now + period / 2)
        for node, timeout in self.consumers.items():
            seen = self._seen.get(node)       # monitoring starts with the first heartbeat (CiA 301)
            if seen is not None and node not in self._lost and now - seen > timeout:
                self._lost.add(node)
                self.abort_connection(EMCY_HEARTBEAT)
        idle = now - self._last_step
        if self.state in _MOVING and idle > max(5 * self.interpolation_s, 0.02):
            self.step(idle, new_target=False)   # no SYNC: the drive's own loop keeps braking or holding
