"""CiA 301 plumbing of a CANopen drive: communication-area objects, NMT, COB-IDs and PDO parameters.

Split from :mod:`motionctl.hal.canopen.cia402` (the drive profile) for the same reason it exists: the CAN driver
(master side) and the simulated drive (device side) import one table, with no I/O and no state.

Sources: COB-IDs of the predefined connection set, NMT commands and heartbeat states -- CiA 301, as in
CANopenNode ``CO_Default_CAN_ID_t`` and python ``canopen`` ``nmt.py``; the PDO communication and mapping
parameter layouts and the 0x1005 / 0x1016 entry formats -- CiA 301 object descriptions.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from motionctl.errors import InputError, ProtocolError


# ---------------------------------------------------------------------------------------------------
# Object indices (CiA 301 communication area)
# ---------------------------------------------------------------------------------------------------

DEVICE_TYPE: Final = 0x1000
ERROR_REGISTER: Final = 0x1001            #: u8, bit meanings in :mod:`motionctl.hal.canopen.emcy`
PREDEFINED_ERROR_FIELD: Final = 0x1003    #: error history, newest first
COB_ID_SYNC: Final = 0x1005               #: u32: bit 30 = this node produces SYNC, bits 10..0 = CAN-ID
COMMUNICATION_CYCLE_PERIOD: Final = 0x1006  #: u32, SYNC period in microseconds
COB_ID_EMCY: Final = 0x1014               #: u32, this node's EMCY COB-ID
CONSUMER_HEARTBEAT: Final = 0x1016        #: array of u32: bits 23..16 node-ID, 15..0 time in ms
PRODUCER_HEARTBEAT: Final = 0x1017        #: u16, heartbeat period in ms (0 = off)
RPDO_COMMUNICATION: Final = 0x1400        #: RPDO n communication parameters at 0x1400 + n - 1
RPDO_MAPPING: Final = 0x1600              #: RPDO n mapping at 0x1600 + n - 1
TPDO_COMMUNICATION: Final = 0x1800        #: TPDO n communication parameters at 0x1800 + n - 1
TPDO_MAPPING: Final = 0x1A00              #: TPDO n mapping at 0x1A00 + n - 1


# ---------------------------------------------------------------------------------------------------
# NMT and COB-IDs (CiA 301 predefined connection set)
# ---------------------------------------------------------------------------------------------------

class NmtCommand(IntEnum):
    """NMT command specifiers, byte 0 of a frame on COB-ID 0x000 (byte 1 is the node-ID, 0 = all)."""

    START = 0x01                  #: start remote node -> OPERATIONAL (PDOs flow)
    STOP = 0x02                   #: stop remote node -> STOPPED
    ENTER_PRE_OPERATIONAL = 0x80  #: -> PRE_OPERATIONAL (SDO only, no PDOs)
    RESET_NODE = 0x81             #: reset application and communication
    RESET_COMMUNICATION = 0x82    #: reset communication parameters only


class NmtState(IntEnum):
    """NMT states as a node reports them in its heartbeat (bit 7 is the node-guarding toggle)."""

    BOOT_UP = 0x00
    STOPPED = 0x04
    OPERATIONAL = 0x05
    PRE_OPERATIONAL = 0x7F


# COB-IDs (CAN identifiers) of the broadcast services.  Named *_COB_ID so they do not clash with the
# object indices COB_ID_SYNC (0x1005) and COB_ID_EMCY (0x1014) that configure them.
NMT_COB_ID: Final = 0x000
SYNC_COB_ID: Final = 0x080
TIME_COB_ID: Final = 0x100

_TPDO_BASE: Final = (0x180, 0x280, 0x380, 0x480)
_RPDO_BASE: Final = (0x200, 0x300, 0x400, 0x500)


def _node(node: int) -> int:
    if not isinstance(node, int) or not 1 <= node <= 127:
        raise InputError(f"CANopen node-ID {node!r} is out of range 1..127")
    return node


def _pdo(n: int) -> int:
    if not isinstance(n, int) or not 1 <= n <= 4:
        raise InputError(f"PDO number {n!r} is out of range 1..4 (predefined connection set)")
    return n


def emcy_cob_id(node: int) -> int:
    """EMCY from ``node``: 0x080 + node."""
    return 0x080 + _node(node)


def tpdo_cob_id(n: int, node: int) -> int:
    """TPDO n (1..4) from ``node``: 0x180/0x280/0x380/0x480 + node (drive -> master)."""
    return _TPDO_BASE[_pdo(n) - 1] + _node(node)


def rpdo_cob_id(n: int, node: int) -> int:
    """RPDO n (1..4) to ``node``: 0x200/0x300/0x400/0x500 + node (master -> drive)."""
    return _RPDO_BASE[_pdo(n) - 1] + _node(node)


def sdo_tx_cob_id(node: int) -> int:
    """SDO server -> client (the drive's answers): 0x580 + node."""
    return 0x580 + _node(node)


def sdo_rx_cob_id(node: int) -> int:
    """SDO client -> server (the master's requests): 0x600 + node."""
    return 0x600 + _node(node)


def heartbeat_cob_id(node: int) -> int:
    """Heartbeat and boot-up of ``node``: 0x700 + node."""
    return 0x700 + _node(node)


def decode_cob_id(cob_id: int) -> tuple[str, int | None]:
    """Name the service of a predefined-connection-set COB-ID, e.g. 0x185 -> ("TPDO1", 5).

    For bus monitors and the simulator's logs.  Unknown IDs give ("unknown", None).
    """
    if cob_id == NMT_COB_ID:
        return "NMT", None
    if cob_id == SYNC_COB_ID:
        return "SYNC", None
    if cob_id == TIME_COB_ID:
        return "TIME", None
    base, node = cob_id & 0x780, cob_id & 0x07F
    if node == 0 or not 0 <= cob_id <= 0x7FF:
        return "unknown", None
    names = {0x080: "EMCY", 0x580: "SDO tx", 0x600: "SDO rx", 0x700: "heartbeat"}
    names.update({b: f"TPDO{i + 1}" for i, b in enumerate(_TPDO_BASE)})
    names.update({b: f"RPDO{i + 1}" for i, b in enumerate(_RPDO_BASE)})
    if base in names:
        return names[base], node
    return "unknown", None


def nmt_frame(command: NmtCommand, node: int = 0) -> bytes:
    """The 2 data bytes of an NMT command (COB-ID 0x000); node 0 addresses every node."""
    if node != 0:
        _node(node)
    return bytes((int(NmtCommand(command)), node))


def heartbeat_state(data: bytes) -> NmtState:
    """The NMT state in a heartbeat frame (the toggle bit 7, used only by node guarding, is dropped)."""
    if len(data) < 1:
        raise ProtocolError("heartbeat frame has no data byte")
    try:
        return NmtState(data[0] & 0x7F)
    except ValueError:
        raise ProtocolError(f"heartbeat state 0x{data[0]:02X} is not a CiA 301 NMT state") from None


# ---------------------------------------------------------------------------------------------------
# Object-dictionary entry helpers
# ---------------------------------------------------------------------------------------------------

def rpdo_communication_index(n: int) -> int:
    """0x1400 + n - 1."""
    return RPDO_COMMUNICATION + _pdo(n) - 1


def rpdo_mapping_index(n: int) -> int:
    """0x1600 + n - 1."""
    return RPDO_MAPPING + _pdo(n) - 1


def tpdo_communication_index(n: int) -> int:
    """0x1800 + n - 1."""
    return TPDO_COMMUNICATION + _pdo(n) - 1


def tpdo_mapping_index(n: int) -> int:
    """0x1A00 + n - 1."""
    return TPDO_MAPPING + _pdo(n) - 1


PDO_COB_ID_INVALID: Final = 1 << 31   #: bit 31 of a PDO's COB-ID entry: PDO disabled (set while remapping)
PDO_COB_ID_NO_RTR: Final = 1 << 30    #: bit 30 of a TPDO's COB-ID entry: no remote request (RTR) allowed
PDO_TRANSMISSION_SYNC: Final = 1      #: transmission type 1: on every SYNC


def pdo_mapping_entry(index: int, subindex: int, bits: int) -> int:
    """A PDO mapping entry: index << 16 | subindex << 8 | length in bits (e.g. 0x607A0020)."""
    if not (0 <= index <= 0xFFFF and 0 <= subindex <= 0xFF and 1 <= bits <= 64):
        raise InputError(f"PDO mapping entry 0x{index:X}:{subindex} with {bits} bits is out of range")
    return index << 16 | subindex << 8 | bits


def consumer_heartbeat_entry(node: int, time_ms: int) -> int:
    """A 0x1016 entry: watch ``node``'s heartbeat, time out after ``time_ms`` (bits 23..16 node, 15..0 ms)."""
    if not 1 <= time_ms <= 0xFFFF:
        raise InputError(f"heartbeat consumer time {time_ms} ms is out of range 1..65535")
    return _node(node) << 16 | time_ms


def cob_id_sync_entry(producer: bool) -> int:
    """The 0x1005 value: COB-ID 0x080, with bit 30 set on the one node that produces SYNC."""
    return SYNC_COB_ID | (1 << 30 if producer else 0)
