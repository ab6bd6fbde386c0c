"""The simulated drive's configuration, read from its object dictionary, and the rules for changing it.

Why separate from :mod:`simulator.can_drive`: what a master may write and what it then means is the part a
drive vendor documents object by object (CiA 301 for the communication area, CiA 402 for the drive
area).  Here each SDO write is validated *before* canopen's LocalNode stores it -- a refused write is an
SDO abort, exactly as from a real drive -- and the values the SYNC path needs every cycle are cached, so
a 500 Hz loop never decodes the object dictionary.
"""

from __future__ import annotations

from dataclasses import dataclass

import canopen
from canopen.objectdictionary import datatypes
from canopen.sdo import SdoAbortedError

from motionctl.hal import cia301, cia402
from motionctl.hal.emcy import ErrorRegister

ABORT_UNSUPPORTED_ACCESS = 0x06010000
ABORT_NOT_MAPPABLE = 0x06040041
ABORT_PDO_LENGTH = 0x06040042
ABORT_INCOMPATIBLE = 0x06040043
ABORT_VALUE_RANGE = 0x06090030
ABORT_VALUE_TOO_HIGH = 0x06090031
ABORT_VALUE_TOO_LOW = 0x06090032

PDO_OBJECTS = range(0x1400, 0x1C00)     #: RPDO/TPDO communication and mapping parameters
_INVALID = cia301.PDO_COB_ID_INVALID

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
    """One PDO as configured: COB-ID, valid, transmission type, (index, sub, bytes, signed) entries."""

    cob_id: int
    valid: bool
    trans_type: int
    entries: tuple[tuple[int, int, int, bool], ...]

    @property
    def size(self) -> int:
        return sum(e[2] for e in self.entries)

    @property
    def synchronous(self) -> bool:
        return self.trans_type <= 240


class DriveConfig:
    """What a drive does, as its object dictionary says now (cached; refreshed by :meth:`write`)."""

    def __init__(self, local: canopen.LocalNode) -> None:
        self.local = local
        self.load()

    def get(self, index: int, subindex: int = 0) -> int:
        """A stored value (or the EDS default) as an int, through the LocalNode's own lookup."""
        var = self.local.object_dictionary.get_variable(index, subindex)
        if var is None:
            raise SdoAbortedError(0x06020000)
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
        self.mode = get(cia402.MODES_OF_OPERATION)
        self.interpolation_s = float(cia402.interpolation_seconds(get(cia402.INTERPOLATION_TIME_PERIOD, 1),
                                                                  get(cia402.INTERPOLATION_TIME_PERIOD, 2)))
        self.heartbeat_ms = get(cia301.PRODUCER_HEARTBEAT)
        consumers: dict[int, float] = {}
        for sub in range(1, get(cia301.CONSUMER_HEARTBEAT, 0) + 1):
            entry = get(cia301.CONSUMER_HEARTBEAT, sub)
            node, ms = (entry >> 16) & 0x7F, entry & 0xFFFF
            if node and ms:
                if node in consumers:          # CiA 301: one entry per watched node
                    raise SdoAbortedError(ABORT_INCOMPATIBLE)
                consumers[node] = ms / 1000.0
        self.consumers = consumers
        self.window = get(cia402.FOLLOWING_ERROR_WINDOW)
        self.following_timeout_ms = get(cia402.FOLLOWING_ERROR_TIMEOUT)
        self.quick_stop_option = get(cia402.QUICK_STOP_OPTION)
        self.abort_option = get(cia402.ABORT_CONNECTION_OPTION)
        self.sync_cob_id = get(cia301.COB_ID_SYNC) & 0x7FF
        self.rpdos = self._pdos(cia301.RPDO_COMMUNICATION, cia301.RPDO_MAPPING, pending)
        self.tpdos = self._pdos(cia301.TPDO_COMMUNICATION, cia301.TPDO_MAPPING, pending)

    def _pdos(self, comm_base: int, map_base: int, pending: Pending) -> list[Pdo]:
        od = self.local.object_dictionary
        return [self._pdo(comm_base + n, map_base + n, pending) for n in range(4)
                if comm_base + n in od and map_base + n in od]

    def _pdo(self, comm: int, mapping: int, pending: Pending) -> Pdo:
        entries = []
        for sub in range(1, self._value(mapping, 0, pending) + 1):
            entry = self._value(mapping, sub, pending)
            index, subindex, bits = entry >> 16, (entry >> 8) & 0xFF, entry & 0xFF
            var = self.local.object_dictionary.get_variable(index, subindex)
            if var is None or not var.pdo_mappable or bits % 8 or bits != len(var):
                raise SdoAbortedError(ABORT_NOT_MAPPABLE)
            entries.append((index, subindex, bits // 8, var.data_type in datatypes.SIGNED_TYPES))
        cob_id = self._value(comm, 1, pending)
        pdo = Pdo(cob_id & 0x7FF, not cob_id & _INVALID, self._value(comm, 2, pending), tuple(entries))
        if pdo.size > 8:
            raise SdoAbortedError(ABORT_PDO_LENGTH)
        return pdo

    def write(self, index: int, subindex: int, value: int) -> None:
        """Validate an SDO download (before it is stored) and take it into the cache, or abort it."""
        if index == cia402.MODES_OF_OPERATION and value not in (cia402.Mode.NO_MODE, cia402.Mode.CSP):
            raise SdoAbortedError(ABORT_VALUE_RANGE)          # this drive only does CSP
        if index == cia402.QUICK_STOP_OPTION and not 0 <= value <= 8:
            raise SdoAbortedError(ABORT_VALUE_RANGE)
        if index == cia402.ABORT_CONNECTION_OPTION and not 0 <= value <= 3:
            raise SdoAbortedError(ABORT_VALUE_RANGE)
        if index == cia402.INTERPOLATION_TIME_PERIOD and subindex == 1 and value == 0:
            raise SdoAbortedError(ABORT_VALUE_TOO_LOW)
        if index == cia301.COB_ID_SYNC and value & (1 << 30):
            raise SdoAbortedError(ABORT_VALUE_RANGE)          # a drive does not produce SYNC
        if index in PDO_OBJECTS:
            self._check_pdo_write(index, subindex, value)
        self.load({(index, subindex): value})

    def _check_pdo_write(self, index: int, subindex: int, value: int) -> None:
        """CiA 301 remapping: a valid PDO keeps its COB-ID and its mapping; the count goes to 0 first."""
        is_mapping = index & 0x0200 != 0
        comm = index & ~0x0200
        current = self.get(comm, 1)
        valid = not current & _INVALID
        if not is_mapping and subindex == 1 and valid and not value & _INVALID \
                and value & 0x7FF != current & 0x7FF:
            raise SdoAbortedError(ABORT_VALUE_RANGE)
        if is_mapping:
            if valid:
                raise SdoAbortedError(ABORT_UNSUPPORTED_ACCESS)
            if subindex == 0 and value > 8:
                raise SdoAbortedError(ABORT_VALUE_TOO_HIGH)
            if subindex > 0 and self.get(index, 0) != 0:
                raise SdoAbortedError(ABORT_UNSUPPORTED_ACCESS)
