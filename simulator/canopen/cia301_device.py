"""CiA 301 (CANopen application layer and communication profile, v4.2) as a *device* reads it.

Written from the standard, not from motionctl's host code: the simulated drives must disagree with the
master wherever the master misreads the standard, so nothing here is shared with ``motionctl.hal``.
Each rule names where it comes from: the clause (CiA 301 v4.2.0 numbering: 7.2.2 PDO, 7.2.4 SDO,
7.2.5 SYNC, 7.2.7 EMCY, 7.2.8 NMT, 7.3 connection set and NMT state machine, 7.5.2 object entries) and
the table by its title, or the object by its index.

What is here: the pre-defined connection set (COB-IDs), the NMT slave state machine and which
communication objects each NMT state allows, the heartbeat and EMCY frame layouts, the error register,
the communication-area object indices and the bit layouts of their values (SYNC and PDO COB-IDs, PDO
transmission types and mapping entries, heartbeat consumer entries), and the SDO abort codes a device
answers with.  Pure data and pure functions; the drive in :mod:`simulator.canopen.drive` holds the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag

# -- 7.3 pre-defined connection set (table "broadcast / peer-to-peer objects of the connection set") -------
NMT_COB_ID = 0x000                 #: NMT node control, from the master, [command, node-ID]
DEFAULT_SYNC_COB_ID = 0x080        #: SYNC; the device reads the one in use from 0x1005
EMCY_BASE = 0x080                  #: EMCY = 0x080 + node-ID (same function code as SYNC, node-ID > 0)
TPDO_BASES = (0x180, 0x280, 0x380, 0x480)   #: TPDO1..4 = base + node-ID (device -> master)
RPDO_BASES = (0x200, 0x300, 0x400, 0x500)   #: RPDO1..4 = base + node-ID (master -> device)
SDO_TX_BASE = 0x580                #: SDO server -> client
SDO_RX_BASE = 0x600                #: SDO client -> server
NMT_ERROR_CONTROL_BASE = 0x700     #: heartbeat / boot-up = 0x700 + node-ID


def emcy_cob_id(node: int) -> int:
    return EMCY_BASE + node


def sdo_rx_cob_id(node: int) -> int:
    return SDO_RX_BASE + node


def sdo_tx_cob_id(node: int) -> int:
    return SDO_TX_BASE + node


def heartbeat_cob_id(node: int) -> int:
    return NMT_ERROR_CONTROL_BASE + node


def heartbeat_node(cob_id: int) -> int:
    """The node-ID whose heartbeat (or boot-up) arrived on ``cob_id``."""
    return cob_id - NMT_ERROR_CONTROL_BASE


def default_tpdo_cob_id(pdo: int, node: int) -> int:
    """TPDO ``pdo`` (1..4) of ``node`` in the pre-defined connection set."""
    return TPDO_BASES[pdo - 1] + node


def default_rpdo_cob_id(pdo: int, node: int) -> int:
    return RPDO_BASES[pdo - 1] + node


def is_restricted_can_id(can_id: int) -> bool:
    """7.3, table "restricted CAN-IDs": IDs no configurable object (e.g. a PDO) may use: NMT, the
    reserved 001h-07Fh and 101h-180h, the default SDO channels, 6E0h-6FFh, NMT error control and the
    reserved tail 780h-7FFh."""
    return (can_id == 0x000 or 0x001 <= can_id <= 0x07F or 0x101 <= can_id <= 0x180
            or 0x581 <= can_id <= 0x5FF or 0x601 <= can_id <= 0x67F or 0x6E0 <= can_id <= 0x6FF
            or 0x701 <= can_id <= 0x77F or 0x780 <= can_id <= 0x7FF)


# -- 7.2.8 NMT node control and 7.3 the NMT slave state machine ----------------------------------------------
class NmtCommand(IntEnum):
    """Command specifier, byte 0 of an NMT node-control frame (7.2.8, NMT node control protocols)."""

    START = 0x01                  #: start remote node -> operational
    STOP = 0x02                   #: stop remote node -> stopped
    ENTER_PRE_OPERATIONAL = 0x80
    RESET_NODE = 0x81             #: reset application: the whole object dictionary to power-on values
    RESET_COMMUNICATION = 0x82    #: only the communication area 0x1000-0x1FFF to power-on values


class NmtState(IntEnum):
    """NMT states, valued as the heartbeat shows them (7.2.8, heartbeat protocol: state field).

    BOOT_UP is the one frame a node sends on leaving initialisation (7.2.8, boot-up protocol), not a state
    it stays in.
    """

    BOOT_UP = 0x00
    STOPPED = 0x04
    OPERATIONAL = 0x05
    PRE_OPERATIONAL = 0x7F


def decode_nmt(data: bytes, node: int) -> NmtCommand | None:
    """The command in an NMT frame if it addresses ``node`` (node-ID 0 addresses every node), else None.

    An unknown command specifier is no command at all: the device ignores the frame (7.2.8).
    """
    if len(data) < 2 or data[1] not in (0, node):
        return None
    try:
        return NmtCommand(data[0])
    except ValueError:
        return None


#: 7.3, figure "state diagram of a CANopen device": where start, stop and enter pre-operational lead from
#: each state (numbers are the figure's).  Resets are not here: they always lead through initialisation
#: (transitions 9-14), which the drive carries out itself.
NMT_TRANSITIONS: dict[tuple[NmtState, NmtCommand], NmtState] = {
    (NmtState.PRE_OPERATIONAL, NmtCommand.START): NmtState.OPERATIONAL,               # (3)
    (NmtState.STOPPED, NmtCommand.START): NmtState.OPERATIONAL,                       # (6)
    (NmtState.OPERATIONAL, NmtCommand.ENTER_PRE_OPERATIONAL): NmtState.PRE_OPERATIONAL,   # (4)
    (NmtState.STOPPED, NmtCommand.ENTER_PRE_OPERATIONAL): NmtState.PRE_OPERATIONAL,   # (7)
    (NmtState.PRE_OPERATIONAL, NmtCommand.STOP): NmtState.STOPPED,                    # (5)
    (NmtState.OPERATIONAL, NmtCommand.STOP): NmtState.STOPPED,                        # (8)
}


def nmt_next(state: NmtState, command: NmtCommand) -> NmtState:
    """The state after ``command`` (not a reset); a command to the state one is in changes nothing."""
    return NMT_TRANSITIONS.get((state, command), state)


class Service(Enum):
    """Communication objects whose availability depends on the NMT state (7.3, table "states and
    communication objects")."""

    #: Hashed by identity, in C (see cia402_device.DriveState): asked several times per drive and SYNC.
    __hash__ = object.__hash__

    PDO = "PDO"
    SDO = "SDO"
    SYNC = "SYNC"
    EMCY = "EMCY"
    NMT = "NMT"                          #: node control
    ERROR_CONTROL = "error control"      #: heartbeat


#: Stopped keeps NMT and error control only; pre-operational everything but PDOs.
SERVICES: dict[NmtState, frozenset[Service]] = {
    NmtState.PRE_OPERATIONAL: frozenset(Service) - {Service.PDO},
    NmtState.OPERATIONAL: frozenset(Service),
    NmtState.STOPPED: frozenset({Service.NMT, Service.ERROR_CONTROL}),
    NmtState.BOOT_UP: frozenset({Service.ERROR_CONTROL}),       # initialisation: only the boot-up frame
}


def allows(state: NmtState, service: Service) -> bool:
    return service in SERVICES[state]


def heartbeat_frame(state: NmtState) -> bytes:
    """Heartbeat (and boot-up, state 0) payload: one byte, the state; bit 7 is reserved 0 (7.2.8)."""
    return bytes([int(state) & 0x7F])


# -- 7.5.2 communication-area objects ------------------------------------------------------------------------
class Od301(IntEnum):
    """The communication-profile objects the drive implements (7.5.2, one sub-clause per object)."""

    DEVICE_TYPE = 0x1000
    ERROR_REGISTER = 0x1001               #: u8
    COB_ID_SYNC = 0x1005                  #: u32
    COMMUNICATION_CYCLE_PERIOD = 0x1006   #: u32, µs
    COB_ID_EMCY = 0x1014                  #: u32; default 080h + node-ID
    CONSUMER_HEARTBEAT_TIME = 0x1016      #: array of u32
    PRODUCER_HEARTBEAT_TIME = 0x1017      #: u16, ms, 0 = off
    RPDO_COMMUNICATION = 0x1400           #: 0x1400-0x15FF
    RPDO_MAPPING = 0x1600                 #: 0x1600-0x17FF
    TPDO_COMMUNICATION = 0x1800           #: 0x1800-0x19FF
    TPDO_MAPPING = 0x1A00                 #: 0x1A00-0x1BFF


PDO_PARAMETERS = range(0x1400, 0x1C00)    #: every PDO communication and mapping object
MAPPING_FLAG = 0x0200                     #: mapping 16xxh / 1Axxh = communication 14xxh / 18xxh + this
SYNC_COB_ID_GENERATE = 1 << 30            #: 0x1005 bit 30: this device is the SYNC producer
CAN_ID_29_BIT = 1 << 29                   #: 0x1005 / PDO COB-ID bit 29: 29-bit CAN-ID (frame)
PDO_COB_ID_INVALID = 1 << 31              #: PDO COB-ID bit 31: 1 = the PDO does not exist (not valid)
PDO_COB_ID_NO_RTR = 1 << 30               #: PDO COB-ID bit 30: 1 = no RTR allowed on this PDO
EMCY_COB_ID_INVALID = 1 << 31             #: 1014h bit 31: 1 = the EMCY object does not exist (not valid)


def is_mapping(index: int) -> bool:
    return index & MAPPING_FLAG != 0


def communication_index(index: int) -> int:
    """The communication parameter (0x14xx / 0x18xx) a PDO object (either kind) belongs to."""
    return index & ~MAPPING_FLAG


@dataclass(frozen=True)
class PdoCobId:
    """PDO communication parameter sub-index 1, "COB-ID used by PDO" (objects 1400h / 1800h)."""

    can_id: int
    valid: bool
    rtr_allowed: bool
    extended: bool

    @classmethod
    def decode(cls, value: int) -> PdoCobId:
        extended = bool(value & CAN_ID_29_BIT)
        return cls(value & (0x1FFFFFFF if extended else 0x7FF), not value & PDO_COB_ID_INVALID,
                   not value & PDO_COB_ID_NO_RTR, extended)


def rpdo_synchronous(transmission_type: int) -> bool:
    """RPDO types 0-240 take effect at the next SYNC; 254/255 at once (object 1400h, transmission type)."""
    return transmission_type <= 240


def rpdo_type_allowed(transmission_type: int) -> bool:
    """241-253 are reserved for an RPDO (object 1400h, transmission type)."""
    return transmission_type <= 240 or transmission_type >= 254


def tpdo_type_allowed(transmission_type: int) -> bool:
    """241-251 are reserved for a TPDO (object 1800h, transmission type)."""
    return transmission_type <= 240 or transmission_type >= 252


def tpdo_due(transmission_type: int, sync_count: int) -> bool:
    """Whether a cyclic synchronous TPDO (type n = 1..240) goes out on the ``sync_count``-th SYNC: every
    n-th SYNC (object 1800h, transmission type).  Types 0 and 252-255 are acyclic or event-driven: this
    device has no such events, so they are never due."""
    return 1 <= transmission_type <= 240 and sync_count % transmission_type == 0


@dataclass(frozen=True)
class MappingEntry:
    """One PDO mapping entry: index (bits 31-16), sub-index (15-8), length in bits (7-0) (1600h/1A00h)."""

    index: int
    subindex: int
    bits: int

    @classmethod
    def decode(cls, value: int) -> MappingEntry:
        return cls(value >> 16, (value >> 8) & 0xFF, value & 0xFF)


MAX_PDO_BITS = 64           #: a classical CAN PDO carries at most 8 bytes (7.2.2)
MAX_MAPPED_OBJECTS = 64     #: mapping sub-index 0 range 0..64 (1600h/1A00h)


@dataclass(frozen=True)
class HeartbeatConsumer:
    """One 1016h entry: bits 31-24 reserved, 23-16 node-ID, 15-0 heartbeat time in ms."""

    node: int
    time_ms: int

    @classmethod
    def decode(cls, value: int) -> HeartbeatConsumer:
        return cls((value >> 16) & 0xFF, value & 0xFFFF)

    @property
    def used(self) -> bool:
        """An entry with time 0 or a node-ID outside 1..127 is not used (object 1016h)."""
        return self.time_ms != 0 and 1 <= self.node <= 127


# -- 7.2.7 EMCY and object 1001h, the error register ---------------------------------------------------------
class ErrorRegister(IntFlag):
    """Object 1001h, one bit per error class.  Bit 6 is reserved and always 0."""

    GENERIC = 0x01
    CURRENT = 0x02
    VOLTAGE = 0x04
    TEMPERATURE = 0x08
    COMMUNICATION = 0x10          #: overrun, error state
    DEVICE_PROFILE = 0x20
    MANUFACTURER = 0x80


class EmcyCode(IntEnum):
    """The CiA 301 emergency error codes this device sends (7.2.7, table "emergency error codes")."""

    NO_ERROR = 0x0000             #: error reset or no error
    COMMUNICATION = 0x8100        #: communication, generic
    HEARTBEAT = 0x8130            #: life guard error or heartbeat error
    BUS_OFF_RECOVERED = 0x8140
    PDO_LENGTH = 0x8210           #: PDO not processed due to length error
    PDO_LENGTH_EXCEEDED = 0x8220
    DEVICE_SPECIFIC = 0xFF00


def error_register_for(code: int) -> int:
    """The 0x1001 bits that an error with EMCY ``code`` sets.

    The generic bit goes with every error (1001h); the others follow the code's group in the EMCY table
    (2xxx current, 3xxx voltage, 4xxx temperature, 81xx/82xx communication and protocol, FFxx device
    specific), and the 8xxx groups a device profile defines (CiA 402: 83xx-8Axx) set the profile bit.
    """
    if code == EmcyCode.NO_ERROR:
        return 0
    register = ErrorRegister.GENERIC
    group, subgroup = code & 0xF000, code & 0xFF00
    register |= {0x2000: ErrorRegister.CURRENT, 0x3000: ErrorRegister.VOLTAGE,
                 0x4000: ErrorRegister.TEMPERATURE}.get(group, ErrorRegister(0))
    if subgroup in (0x8100, 0x8200):
        register |= ErrorRegister.COMMUNICATION
    elif group == 0x8000:
        register |= ErrorRegister.DEVICE_PROFILE
    if subgroup == 0xFF00:
        register |= ErrorRegister.MANUFACTURER
    return int(register)


def emcy_frame(code: int, register: int, manufacturer: bytes = bytes(5)) -> bytes:
    """An EMCY payload (7.2.7, EMCY write protocol): error code u16 little-endian, error register u8
    (1001h), five manufacturer-specific bytes."""
    if len(manufacturer) != 5:
        raise ValueError("an EMCY carries exactly 5 manufacturer-specific bytes")
    return (code & 0xFFFF).to_bytes(2, "little") + bytes([register & 0xFF]) + manufacturer


# -- 7.2.4 SDO abort transfer: the abort codes a device answers with -----------------------------------------
class SdoAbort(IntEnum):
    UNSUPPORTED_ACCESS = 0x06010000
    WRITE_READ_ONLY = 0x06010002
    NO_OBJECT = 0x06020000
    NOT_MAPPABLE = 0x06040041
    PDO_LENGTH_EXCEEDED = 0x06040042     #: the mapped objects would exceed the PDO length
    PARAMETER_INCOMPATIBLE = 0x06040043  #: general parameter incompatibility
    VALUE_RANGE = 0x06090030
    VALUE_TOO_HIGH = 0x06090031
    VALUE_TOO_LOW = 0x06090032
