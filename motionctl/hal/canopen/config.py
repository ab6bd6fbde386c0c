"""What the CAN backend writes to each CiA 402 drive, and how its process data is laid out (pure: no I/O).

Why a separate module: the configuration a master writes at start-up is the part of a CANopen
installation that decides whether a dead master stops the rig (heartbeat consumer 0x1016 + abort
connection option 0x6007), whether a jam trips the drive (following-error window 0x6065) and whether the
feedback fits on the bus (PDO mapping).  Keeping it as plain data -- one :class:`SdoWrite` per object --
lets the golden tests compare it byte for byte, lets ``motionctl hw info`` print it, and keeps
:mod:`motionctl.hal.canopen.driver` about talking to the wire.

Process data (every PDO synchronous, transmission type 1 unless noted):

* RPDO1 (master -> drive, 0x200 + node): controlword u16, target position i32 = 6 bytes.
* TPDO1 (drive -> master, 0x180 + node): statusword u16, position actual i32 = 6 bytes, every SYNC.
* TPDO2 (drive -> master, 0x280 + node): following error actual i32 = 4 bytes, every n-th SYNC
  (``following_error_every``, default 10).  Not every SYNC because 7 axes with 6-byte RPDO and TPDO at
  500 Hz already use 83 % of 1 Mbit/s (see :mod:`motionctl.hal.canopen.busload`); a third frame per axis per
  cycle would not fit.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Mapping

from motionctl.errors import InputError
from motionctl.hal.canopen import cia301, cia402
from motionctl.hal.canopen.busload import describe_bus_load
from motionctl.hal.canopen.cia402 import DriveState
from motionctl.hal.driver import AxisScale, DriveStatus, axis_scales
from motionctl.spec.rig import Rig

#: The EDS used when the rig names none (``[hardware] eds = "..."`` overrides it).
DEFAULT_EDS: Final = Path(__file__).resolve().parents[3] / "rigs" / "eds" / "generic_cia402_csp.eds"

RPDO1: Final = struct.Struct("<Hi")      #: controlword, target position
TPDO1: Final = struct.Struct("<Hi")      #: statusword, position actual value
TPDO2: Final = struct.Struct("<i")       #: following error actual value

RPDO1_MAP: Final = ((cia402.CONTROLWORD, 0, 16), (cia402.TARGET_POSITION, 0, 32))
TPDO1_MAP: Final = ((cia402.STATUSWORD, 0, 16), (cia402.POSITION_ACTUAL, 0, 32))
TPDO2_MAP: Final = ((cia402.FOLLOWING_ERROR_ACTUAL, 0, 32),)

#: Quick stop option 6: brake on the quick-stop ramp and *stay* in QUICK_STOP_ACTIVE, powered and holding.
#: Why: an arm that drops to SWITCH_ON_DISABLED after an E-stop relies on its brakes alone; staying in
#: quick stop keeps the servo holding position, and transition 16 lets a reset resume without a re-home.
QUICK_STOP_AND_HOLD: Final = int(cia402.QuickStopOption.QUICK_STOP_RAMP_STAY)


@dataclass(frozen=True)
class CanOptions:
    """Everything the CAN backend can be told, from the URL query (``?bitrate=500000``) or keywords.

    Times are milliseconds because that is what the objects hold; the defaults suit a 500 Hz rig.
    """

    bitrate: int = 1_000_000
    master_id: int = 0x7F                 #: the master's own node-ID, for its heartbeat (0x700 + id)
    heartbeat_ms: int = 50                #: master heartbeat period
    heartbeat_timeout_ms: int = 250       #: drives quick-stop when the master is silent this long (0x1016)
    drive_heartbeat_ms: int = 100         #: each drive's heartbeat period (0x1017)
    drive_timeout_ms: int = 500           #: the master calls a drive offline after this long without one
    following_error_m: float = 0.005      #: 0x6065 for linear axes
    following_error_deg: float = 2.0      #: 0x6065 for rotary axes
    following_error_lens: float = 0.05    #: 0x6065 for lens axes, as a fraction of full travel
    following_error_timeout_ms: int = 10  #: 0x6066
    following_error_every: int = 10       #: TPDO2 transmission type: every n-th SYNC
    abort_connection: int = int(cia402.AbortConnectionOption.QUICK_STOP)
    quick_stop_option: int = QUICK_STOP_AND_HOLD
    sdo_timeout_s: float = 1.0
    boot_timeout_s: float = 3.0
    rate_hz: int = 0                      #: 0: the rig's servo rate
    eds: str = ""                         #: "": the rig's EDS, else :data:`DEFAULT_EDS`
    host: str = "127.0.0.1"               #: socketcand: the daemon's address (the bus is the channel)
    port: int = 29536                     #: socketcand: its TCP port (socketcand's own default)

    @classmethod
    def parse(cls, query: Mapping[str, str], overrides: Mapping[str, object]) -> CanOptions:
        """Options from the URL query, then keyword overrides; unknown names are an :class:`InputError`."""
        values: dict[str, object] = {}
        known = cls.__dataclass_fields__
        for source in (query, overrides):
            for key, raw in source.items():
                if key not in known:
                    raise InputError(f'unknown CAN option "{key}"; known: {", ".join(sorted(known))}')
                kind = type(getattr(cls, key))
                try:
                    values[key] = kind(int(raw, 0) if kind is int and isinstance(raw, str) else raw)
                except (TypeError, ValueError):
                    raise InputError(f'CAN option {key}={raw!r} is not a valid {kind.__name__}') from None
        options = cls(**values)   # type: ignore[arg-type]
        if not 1 <= options.master_id <= 127:
            raise InputError(f"master_id {options.master_id} is out of range 1..127")
        if not 1 <= options.following_error_every <= 240:
            raise InputError("following_error_every must be 1..240 (a synchronous transmission type)")
        return options


@dataclass(frozen=True)
class SdoWrite:
    """One SDO download of the start-up configuration.  ``label`` says why, for errors and ``hw info``."""

    index: int
    subindex: int
    value: int
    label: str
    #: Only where the drive has the object (its EDS lists it): switching off a PDO the drive lacks.
    optional: bool = False

    def describe(self) -> str:
        return f"0x{self.index:04X}:{self.subindex:02X} = {self.value} ({self.label})"


def _pdo_writes(comm: int, mapping: int, cob_id: int, trans_type: int,
                entries: tuple[tuple[int, int, int], ...], name: str) -> list[SdoWrite]:
    """The CiA 301 remapping procedure: invalidate, set type, clear, map, count, validate."""
    writes = [SdoWrite(comm, 1, cob_id | cia301.PDO_COB_ID_INVALID, f"{name} off while remapping"),
              SdoWrite(comm, 2, trans_type, f"{name} transmission type"),
              SdoWrite(mapping, 0, 0, f"{name} mapping cleared")]
    writes += [SdoWrite(mapping, i, cia301.pdo_mapping_entry(*entry), f"{name} maps 0x{entry[0]:04X}")
               for i, entry in enumerate(entries, start=1)]
    writes += [SdoWrite(mapping, 0, len(entries), f"{name} mapped objects"),
               SdoWrite(comm, 1, cob_id, f"{name} on")]
    return writes


def _unused_pdos_off(node: int) -> list[SdoWrite]:
    """Switch off RPDO2-4 and TPDO3-4 (bit 31 of their COB-ID entries).

    Why: drives ship with the CiA 402 default mappings valid.  A TPDO left on loads the bus with frames
    nobody reads (and ``hw info`` would not count them); an RPDO left on is a second way into the
    controlword and target, some applied at once (transmission type 255), that motionctl never sends
    but another node might.  A drive without such a PDO (its EDS lacks it) has nothing to switch off.
    """
    writes = [SdoWrite(cia301.rpdo_communication_index(n), 1,
                       cia301.rpdo_cob_id(n, node) | cia301.PDO_COB_ID_INVALID, f"RPDO{n} off (unused)", True)
              for n in (2, 3, 4)]
    writes += [SdoWrite(cia301.tpdo_communication_index(n), 1,
                        cia301.tpdo_cob_id(n, node) | cia301.PDO_COB_ID_INVALID | cia301.PDO_COB_ID_NO_RTR,
                        f"TPDO{n} off (unused)", True)
               for n in (3, 4)]
    return writes


def following_window_counts(scale: AxisScale, linear: bool | None, options: CanOptions) -> int:
    """0x6065 in increments: ``following_error_m`` / ``_deg`` / ``_lens`` through the axis' encoder."""
    if scale.lens_calibration is not None or linear is None:
        counts = options.following_error_lens * scale.counts_per_unit
    elif linear:
        counts = options.following_error_m * scale.counts_per_unit
    else:
        counts = math.radians(options.following_error_deg) * scale.counts_per_unit
    return max(1, min(0xFFFFFFFE, int(round(counts))))


def node_configuration(node: int, window_counts: int, rate_hz: int, options: CanOptions) -> list[SdoWrite]:
    """Every SDO write for one drive, in order (communication first, then the drive profile).

    The PDOs are remapped while the node is pre-operational, as CiA 301 requires; the mode is written
    after the mapping so that a drive which checks its mapping against the mode sees the final one.
    """
    value, exponent = cia402.interpolation_period(1 / rate_hz)
    writes = [
        SdoWrite(cia301.PRODUCER_HEARTBEAT, 0, options.drive_heartbeat_ms, "drive heartbeat period (ms)"),
        SdoWrite(cia301.CONSUMER_HEARTBEAT, 1,
                 cia301.consumer_heartbeat_entry(options.master_id, options.heartbeat_timeout_ms),
                 "watch the master's heartbeat"),
        SdoWrite(cia301.COB_ID_SYNC, 0, cia301.cob_id_sync_entry(False), "SYNC consumer"),
        SdoWrite(cia301.COMMUNICATION_CYCLE_PERIOD, 0, round(1e6 / rate_hz), "SYNC period (us)"),
    ]
    no_rtr = cia301.PDO_COB_ID_NO_RTR       # TPDOs: motionctl never asks for one by remote request
    writes += _pdo_writes(cia301.rpdo_communication_index(1), cia301.rpdo_mapping_index(1),
                          cia301.rpdo_cob_id(1, node), cia301.PDO_TRANSMISSION_SYNC, RPDO1_MAP, "RPDO1")
    writes += _pdo_writes(cia301.tpdo_communication_index(1), cia301.tpdo_mapping_index(1),
                          cia301.tpdo_cob_id(1, node) | no_rtr, cia301.PDO_TRANSMISSION_SYNC, TPDO1_MAP, "TPDO1")
    writes += _pdo_writes(cia301.tpdo_communication_index(2), cia301.tpdo_mapping_index(2),
                          cia301.tpdo_cob_id(2, node) | no_rtr, options.following_error_every, TPDO2_MAP, "TPDO2")
    writes += _unused_pdos_off(node)
    writes += [
        SdoWrite(cia402.MODES_OF_OPERATION, 0, int(cia402.Mode.CSP), "cyclic synchronous position"),
        SdoWrite(cia402.INTERPOLATION_TIME_PERIOD, cia402.INTERPOLATION_TIME_VALUE_SUB, value,
                 "interpolation period value"),
        SdoWrite(cia402.INTERPOLATION_TIME_PERIOD, cia402.INTERPOLATION_TIME_INDEX_SUB, exponent,
                 "interpolation period exponent"),
        SdoWrite(cia402.FOLLOWING_ERROR_WINDOW, 0, window_counts, "following error window (increments)"),
        SdoWrite(cia402.FOLLOWING_ERROR_TIMEOUT, 0, options.following_error_timeout_ms,
                 "following error timeout (ms)"),
        SdoWrite(cia402.QUICK_STOP_OPTION, 0, options.quick_stop_option, "quick stop option"),
        SdoWrite(cia402.ABORT_CONNECTION_OPTION, 0, options.abort_connection,
                 "abort connection option (reaction to a lost master)"),
    ]
    return writes


@dataclass(frozen=True)
class NodePlan:
    """One driven axis: its drive's node-ID, encoder scale and configuration."""

    index: int              #: position in the driver's axis order
    name: str
    node: int
    scale: AxisScale
    writes: tuple[SdoWrite, ...]


def rig_plan(rig: Rig, options: CanOptions) -> list[NodePlan]:
    """The configuration of every driven axis of ``rig`` (driver axis order: arm axes, then lens axes)."""
    hw = rig.hardware
    assert hw is not None    # axis_scales raises a HardwareError first
    rate = options.rate_hz or hw.servo_rate_hz
    linear = {a.name: a.linear for a in rig.axes}
    plans = []
    for i, scale in enumerate(axis_scales(rig)):
        node = hw.address[scale.name]
        window = following_window_counts(scale, linear.get(scale.name), options)
        plans.append(NodePlan(i, scale.name, node, scale,
                              tuple(node_configuration(node, window, rate, options))))
    return plans


_STATUS: Final[dict[DriveState, DriveStatus]] = {
    DriveState.NOT_READY_TO_SWITCH_ON: DriveStatus.DISABLED,
    DriveState.SWITCH_ON_DISABLED: DriveStatus.DISABLED,
    DriveState.READY_TO_SWITCH_ON: DriveStatus.READY,
    DriveState.SWITCHED_ON: DriveStatus.READY,
    DriveState.OPERATION_ENABLED: DriveStatus.ENABLED,
    DriveState.QUICK_STOP_ACTIVE: DriveStatus.QUICK_STOP,
    DriveState.FAULT_REACTION_ACTIVE: DriveStatus.FAULT,
    DriveState.FAULT: DriveStatus.FAULT,
}


def drive_status(state: DriveState) -> DriveStatus:
    """The operator's view of a CiA 402 state (a fault reaction already counts as a fault)."""
    return _STATUS[state]


#: SocketCAN error-frame classes (linux/can/error.h), in the identifier of an error frame.
CAN_ERR_BUSOFF: Final = 0x040
CAN_ERR_CRTL: Final = 0x004
CAN_ERR_RESTARTED: Final = 0x100


def describe_error_frame(arbitration_id: int) -> tuple[bool, str]:
    """(is bus-off, plain words) for a received error frame."""
    if arbitration_id & CAN_ERR_BUSOFF:
        return True, ("the CAN controller went bus-off (too many transmission errors): check the cabling, "
                      "the 120 ohm termination at both ends and that every node uses the same bitrate")
    if arbitration_id & CAN_ERR_RESTARTED:
        return False, "the CAN controller restarted after bus-off"
    if arbitration_id & CAN_ERR_CRTL:
        return False, "the CAN controller reports error-passive or an overrun"
    return False, "a frame was destroyed on the bus (CRC, stuffing or form error) and sent again"


def bus_load_report(rig: Rig, rate_hz: float | None = None, *, bitrate: int | None = None,
                    options: CanOptions | None = None) -> list[str]:
    """Lines for ``motionctl hw info``: will this rig's CSP traffic fit on its bus?

    Uses the real PDO sizes (RPDO1 6 bytes, TPDO1 6 bytes per axis and SYNC); TPDO2 (following error,
    every n-th SYNC) and the heartbeats of the drives and the master are counted as extra 8-byte frames.
    """
    options = options or CanOptions()
    hw = rig.hardware
    axes = len(axis_scales(rig))
    rate = float(rate_hz or options.rate_hz or (hw.servo_rate_hz if hw else 500))
    bits = bitrate or options.bitrate
    extra = axes * rate / options.following_error_every
    extra += axes * 1000.0 / options.drive_heartbeat_ms + 1000.0 / options.heartbeat_ms
    lines = describe_bus_load(axes, rate, RPDO1.size, TPDO1.size, bits, True, extra)
    lines.append(f"TPDO2 (following error, {TPDO2.size} bytes) every {options.following_error_every} SYNC, "
                 f"heartbeats every {options.drive_heartbeat_ms} ms (drives) and {options.heartbeat_ms} ms "
                 "(master) are in the other frames")
    return lines
