"""The simulated drive's configuration, read from its object dictionary, and the rules for changing it.

Why separate from :mod:`simulator.canopen.drive`: what a master may write and what it then means is the part a
drive vendor documents object by object (CiA 301 for the communication area, CiA 402 for the drive
area).  Here each SDO write is validated *before* canopen's LocalNode stores it -- a refused write is an
SDO abort, exactly as from a real drive -- and the values the SYNC path needs every cycle are cached, so
a 500 Hz loop never decodes the object dictionary.  The rules are the device's own reading of the
standards (:mod:`simulator.canopen.cia301_device`, :mod:`simulator.canopen.cia402_device`).
"""

from __future__ import annotations

from dataclasses import dataclass

import canopen
from canopen.objectdictionary import datatypes
from canopen.sdo import SdoAbortedError

from simulator.canopen.cia301_device import (CAN_ID_29_BIT, EMCY_COB_ID_INVALID, MAX_MAPPED_OBJECTS, MAX_PDO_BITS,
                                     PDO_PARAMETERS, SYNC_COB_ID_GENERATE, HeartbeatConsumer, MappingEntry,
                                     Od301, PdoCobId, SdoAbort, communication_index, emcy_cob_id, is_mapping,
                                     is_restricted_can_id, rpdo_synchronous, rpdo_type_allowed,
                                     tpdo_type_allowed)
from simulator.canopen.cia402_device import (AbortConnectionOption, Mode, Od402, QuickStopOption,
                                     interpolation_period_s)

Pending = dict[tuple[int, int], int]

#: The modes this drive runs: none, and cyclic synchronous position.
SUPPORTED_MODES = (Mode.NO_MODE, Mode.CYCLIC_SYNC_POSITION)


def _refuse(code: SdoAbort) -> SdoAbortedError:
    return SdoAbortedError(int(code))


@dataclass(frozen=True)
class PdoEntry:
    """One mapped object as the drive packs it: whole bytes, little-endian (CiA 301 7.2.2)."""

    index: int
    subindex: int
    size: int                  #: bytes
    signed: bool


@dataclass(frozen=True)
class Pdo:
    """One PDO as configured: COB-ID (1400h/1800h sub 1), transmission type (sub 2), mapped entries."""

    cob_id: int
    valid: bool
    trans_type: int
    entries: tuple[PdoEntry, ...]

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def synchronous(self) -> bool:
        """For an RPDO: whether it waits for the next SYNC."""
        return rpdo_synchronous(self.trans_type)


#: This drive maps whole bytes only, so at most 8 objects fit into 64 bits.
_MAX_OBJECTS = min(MAX_MAPPED_OBJECTS, MAX_PDO_BITS // 8)


class DriveConfig:
    """What a drive does, as its object dictionary says now (cached; refreshed by :meth:`write`)."""

    def __init__(self, local: canopen.LocalNode) -> None:
        self.local = local
        self.load()

    def get(self, index: int, subindex: int = 0) -> int:
        """A stored value (or the EDS default) as an int, through the LocalNode's own lookup."""
        var = self.local.object_dictionary.get_variable(index, subindex)
        if var is None:
            raise _refuse(SdoAbort.NO_OBJECT)
        return int(var.decode_raw(self.local.get_data(index, subindex)))

    def _value(self, index: int, subindex: int, pending: Pending) -> int:
        return pending[(index, subindex)] if (index, subindex) in pending else self.get(index, subindex)

    def load(self, pending: Pending | None = None) -> None:
        """Cache every value the SYNC path needs; ``pending`` is a write being validated.

        Raises :class:`SdoAbortedError` if the result would be inconsistent, which refuses the write.
        """
        pending = pending or {}

        def get(index: int, sub: int = 0) -> int:
            return self._value(index, sub, pending)
        self.mode = get(Od402.MODES_OF_OPERATION)
        self.interpolation_s = interpolation_period_s(get(Od402.INTERPOLATION_TIME_PERIOD, 1),
                                                      get(Od402.INTERPOLATION_TIME_PERIOD, 2))
        self.heartbeat_ms = get(Od301.PRODUCER_HEARTBEAT_TIME)
        consumers: dict[int, float] = {}
        for sub in range(1, get(Od301.CONSUMER_HEARTBEAT_TIME, 0) + 1):
            entry = HeartbeatConsumer.decode(get(Od301.CONSUMER_HEARTBEAT_TIME, sub))
            if entry.used:
                if entry.node in consumers:     # object 1016h: one entry per watched node
                    raise _refuse(SdoAbort.PARAMETER_INCOMPATIBLE)
                consumers[entry.node] = entry.time_ms / 1000.0
        self.consumers = consumers
        self.window = get(Od402.FOLLOWING_ERROR_WINDOW)
        self.following_timeout_ms = get(Od402.FOLLOWING_ERROR_TIMEOUT)
        self.quick_stop_option = QuickStopOption(get(Od402.QUICK_STOP_OPTION))
        self.abort_option = AbortConnectionOption(get(Od402.ABORT_CONNECTION_OPTION))
        self.sync_cob_id = get(Od301.COB_ID_SYNC) & 0x7FF
        # 1014h, where the EDS has it; a drive without it sends EMCY on the pre-defined 080h + node-ID
        emcy = get(Od301.COB_ID_EMCY) if Od301.COB_ID_EMCY in self.local.object_dictionary \
            else emcy_cob_id(self.local.id)
        self.emcy_cob_id = None if emcy & EMCY_COB_ID_INVALID else emcy & 0x7FF
        self.rpdos = self._pdos(Od301.RPDO_COMMUNICATION, Od301.RPDO_MAPPING, pending)
        self.tpdos = self._pdos(Od301.TPDO_COMMUNICATION, Od301.TPDO_MAPPING, pending)

    def _pdos(self, comm_base: int, map_base: int, pending: Pending) -> list[Pdo]:
        od = self.local.object_dictionary
        return [self._pdo(comm_base + n, map_base + n, pending) for n in range(4)
                if comm_base + n in od and map_base + n in od]

    def _pdo(self, comm: int, mapping: int, pending: Pending) -> Pdo:
        entries = []
        for sub in range(1, self._value(mapping, 0, pending) + 1):
            entry = MappingEntry.decode(self._value(mapping, sub, pending))
            var = self.local.object_dictionary.get_variable(entry.index, entry.subindex)
            if var is None or not var.pdo_mappable or entry.bits % 8 or entry.bits != len(var):
                raise _refuse(SdoAbort.NOT_MAPPABLE)
            entries.append(PdoEntry(entry.index, entry.subindex, entry.bits // 8,
                                    var.data_type in datatypes.SIGNED_TYPES))
        cob_id = PdoCobId.decode(self._value(comm, 1, pending))
        pdo = Pdo(cob_id.can_id, cob_id.valid, self._value(comm, 2, pending), tuple(entries))
        if pdo.size * 8 > MAX_PDO_BITS:
            raise _refuse(SdoAbort.PDO_LENGTH_EXCEEDED)
        return pdo

    def write(self, index: int, subindex: int, value: int) -> None:
        """Validate an SDO download (before it is stored) and take it into the cache, or abort it."""
        if index == Od402.MODES_OF_OPERATION and value not in SUPPORTED_MODES:
            raise _refuse(SdoAbort.VALUE_RANGE)
        if index == Od402.QUICK_STOP_OPTION and value not in set(QuickStopOption):
            raise _refuse(SdoAbort.VALUE_RANGE)            # no manufacturer-specific (negative) options
        if index == Od402.ABORT_CONNECTION_OPTION and value not in set(AbortConnectionOption):
            raise _refuse(SdoAbort.VALUE_RANGE)
        if index == Od402.INTERPOLATION_TIME_PERIOD and subindex == 1 and value == 0:
            raise _refuse(SdoAbort.VALUE_TOO_LOW)          # a zero period cannot pace csp
        if index == Od301.COB_ID_SYNC and value & (SYNC_COB_ID_GENERATE | CAN_ID_29_BIT):
            raise _refuse(SdoAbort.VALUE_RANGE)            # a drive consumes SYNC; 11-bit IDs only
        if index == Od301.COB_ID_EMCY:
            self._check_emcy_write(value)
        if index in PDO_PARAMETERS:
            self._check_pdo_write(index, subindex, value)
        self.load({(index, subindex): value})

    def _check_emcy_write(self, value: int) -> None:
        """1014h: 11-bit IDs only, and bits 0-29 are fixed while the EMCY object exists (bit 31 = 0)."""
        valid = not value & EMCY_COB_ID_INVALID
        if valid and (value & CAN_ID_29_BIT or is_restricted_can_id(value & 0x7FF)):
            raise _refuse(SdoAbort.VALUE_RANGE)
        if valid and self.emcy_cob_id is not None and value & 0x7FF != self.emcy_cob_id:
            raise _refuse(SdoAbort.VALUE_RANGE)

    def _check_pdo_write(self, index: int, subindex: int, value: int) -> None:
        """CiA 301 PDO (re)configuration (objects 1400h-1BFFh): a valid PDO keeps its CAN-ID and its
        mapping; a mapping changes only with the PDO invalid and its count at 0 (write 0 to sub 0, the
        entries, then the count); reserved transmission types and restricted CAN-IDs are refused."""
        comm = communication_index(index)
        current = PdoCobId.decode(self.get(comm, 1))
        if is_mapping(index):
            if current.valid:
                raise _refuse(SdoAbort.UNSUPPORTED_ACCESS)
            if subindex == 0 and value > _MAX_OBJECTS:
                raise _refuse(SdoAbort.VALUE_TOO_HIGH)
            if subindex > 0 and self.get(index, 0) != 0:
                raise _refuse(SdoAbort.UNSUPPORTED_ACCESS)
            return
        if subindex == 1:
            new = PdoCobId.decode(value)
            if new.valid and (new.extended or is_restricted_can_id(new.can_id)):
                raise _refuse(SdoAbort.VALUE_RANGE)
            if new.valid and current.valid and new.can_id != current.can_id:
                raise _refuse(SdoAbort.VALUE_RANGE)        # bits 0-29 are fixed while the PDO exists
        if subindex == 2:
            receive = comm < Od301.TPDO_COMMUNICATION
            if not (rpdo_type_allowed(value) if receive else tpdo_type_allowed(value)):
                raise _refuse(SdoAbort.VALUE_RANGE)
