"""EMCY (emergency) messages in plain words, both ways.

Why: when a drive faults mid-take the operator sees a line on the console, not a hex dump.  "EMCY 0x8611"
means nothing on set; "following error: the axis fell behind its setpoint ..." says what to check.  The
simulated drive uses :func:`encode_emcy` to send the same frames a real drive would.

Frame layout (CiA 301 7.2.7): 8 data bytes = error code (u16, little-endian), error register (u8, the
drive's 0x1001), 5 manufacturer-specific bytes.  Codes 0x00xx mean "error reset / no error": the drive
has cleared the error it reported earlier.

Code table sources, checked against public material: CiA 301 table of emergency error codes (as in
openCANopen ``cia302-error-codes.h`` and python ``canopen`` ``emcy.py``), CiA 402-2 drive error codes (as
in CANopenNode ``CO_402_ErrorCodes.h``), error register bits (CiA 301 object 0x1001, as in CANopenNode
``CO_errorRegister_t``).  The sentences are ours.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag
from typing import Final

from motionctl.errors import InputError

_EMCY: Final = struct.Struct("<HB5s")


class ErrorRegister(IntFlag):
    """Bits of the error register (0x1001), copied into byte 2 of every EMCY."""

    GENERIC = 1 << 0
    CURRENT = 1 << 1
    VOLTAGE = 1 << 2
    TEMPERATURE = 1 << 3
    COMMUNICATION = 1 << 4     #: overrun, error passive, ...
    DEVICE_PROFILE = 1 << 5    #: CiA 402 specific
    RESERVED = 1 << 6          #: always 0
    MANUFACTURER = 1 << 7


ERROR_REGISTER_WORDS: Final[dict[ErrorRegister, str]] = {
    ErrorRegister.GENERIC: "generic error",
    ErrorRegister.CURRENT: "current",
    ErrorRegister.VOLTAGE: "voltage",
    ErrorRegister.TEMPERATURE: "temperature",
    ErrorRegister.COMMUNICATION: "communication",
    ErrorRegister.DEVICE_PROFILE: "drive profile (CiA 402)",
    ErrorRegister.RESERVED: "reserved bit 6",
    ErrorRegister.MANUFACTURER: "manufacturer specific",
}

#: Standard codes with their own sentence (CiA 301, and CiA 402-2 for drives).
CODES: Final[dict[int, str]] = {
    0x0000: "No error: the drive has cleared the error it reported (error reset).",
    0x1000: "Generic error: the drive reports a fault without naming it; read its display or error log.",
    # 2xxx current
    0x2110: "Short circuit or earth leakage on the drive's power input: check the supply wiring.",
    0x2120: "Earth leakage on the drive's power input: check the supply wiring and its insulation.",
    0x2130: "Short circuit between phases on the drive's power input: check the supply wiring.",
    0x2211: "Internal current fault no. 1 inside the drive.",
    0x2212: "Internal current fault no. 2 inside the drive.",
    0x2213: "Over-current during a ramp inside the drive: the move accelerates harder than the drive can.",
    0x2214: "Over-current during the motion sequence inside the drive.",
    0x2220: "Continuous over-current inside the drive.",
    0x2230: "Short circuit or earth leakage inside the drive: the drive needs service.",
    0x2240: "Earth leakage inside the drive: the drive needs service.",
    0x2250: "Short circuit inside the drive: the drive needs service.",
    0x2310: ("Continuous over-current at the motor output: the motor drew more current than allowed for "
             "too long. Check for a jam, a brake that did not release, or a move too hard for the axis."),
    0x2311: "Continuous over-current no. 1 at the motor output: check for a jam or an overloaded axis.",
    0x2312: "Continuous over-current no. 2 at the motor output: check for a jam or an overloaded axis.",
    0x2320: ("Short circuit or earth leakage on the motor side: check the motor cable and the motor's "
             "insulation before enabling again."),
    0x2330: "Earth leakage on the motor side: check the motor cable and the motor's insulation.",
    0x2340: "Short circuit on the motor side: check the motor cable and connector.",
    0x2350: "Load level fault (I2t): the motor or drive has been overloaded for too long; let it cool.",
    0x2351: "Load level warning (I2t): the motor or drive is close to its thermal overload limit.",
    # 3xxx voltage
    0x3110: "Mains over-voltage: the supply voltage to the drive is too high.",
    0x3120: "Mains under-voltage: the supply voltage to the drive is too low or has dropped out.",
    0x3130: "Mains phase failure: one phase of the drive's supply is missing.",
    0x3210: ("DC link over-voltage: braking energy drove the drive's internal bus voltage too high. Check "
             "the brake resistor or chopper, or decelerate more gently."),
    0x3220: ("DC link under-voltage: the drive's power supply sagged or is off. Check the power supply, "
             "its fuse and the emergency-stop circuit."),
    0x3230: "Load error on the drive's DC link (charging or load circuit).",
    0x3310: "Output over-voltage at the motor terminals.",
    0x3320: "Armature circuit fault: check the motor connection.",
    0x3330: "Field circuit fault: check the motor connection.",
    # 4xxx temperature
    0x4110: "Ambient temperature too high around the drive: improve cooling or ventilation.",
    0x4120: "Ambient temperature too low for the drive.",
    0x4210: "Drive over-temperature: the drive's electronics are too hot; let it cool and check its fan.",
    0x4220: "Drive temperature too low.",
    0x4310: "Excess temperature of the drive's power stage or motor: let the axis cool down.",
    0x4320: "Temperature too low in the drive's power stage or motor.",
    0x4410: "Power supply over-temperature.",
    0x4420: "Power supply temperature too low.",
    # 5xxx device hardware
    0x5100: "Internal supply fault in the drive.",
    0x5110: "Low voltage on the drive's internal (logic) supply.",
    0x5111: "The drive's +/-15 V internal supply is out of range.",
    0x5112: "The drive's 24 V supply is out of range: check the 24 V logic supply.",
    0x5113: "The drive's 5 V internal supply is out of range (often an encoder supply overload).",
    0x5200: "Control electronics fault in the drive.",
    0x5210: "Measurement circuit fault in the drive.",
    0x5220: "Computing circuit fault in the drive.",
    0x5300: "Operating unit (front panel) fault in the drive.",
    0x5400: "Power section fault in the drive.",
    0x5410: "Output stage fault in the drive: the power transistors reported an error.",
    0x5420: "Chopper fault in the drive.",
    0x5430: "Input stage fault in the drive.",
    0x5440: "Contactor or contact fault in the drive.",
    0x5450: "A fuse in the drive has blown.",
    0x5500: "Memory fault in the drive.",
    0x5510: "RAM fault in the drive.",
    0x5520: "Program memory (ROM/EPROM) fault in the drive.",
    0x5530: "Non-volatile memory (EEPROM) fault in the drive: stored parameters may be lost.",
    # 6xxx device software
    0x6010: "Software reset (watchdog): the drive's firmware restarted itself.",
    0x6100: "Internal software error in the drive's firmware.",
    0x6200: "User software error in the drive (a program running on the drive).",
    0x6300: "Data set error: a parameter set in the drive is invalid.",
    0x6310: "Loss of parameters: the drive lost its stored configuration; re-commission it.",
    0x6320: ("Parameter error: the drive rejected a configuration value. Check the values motionctl "
             "writes at start-up against the drive's limits."),
    # 7xxx additional modules
    0x7100: "Power module fault.",
    0x7110: "Brake chopper fault.",
    0x7111: "Brake chopper failure: braking energy cannot be dumped; check the brake resistor.",
    0x7112: "Brake chopper over-current: check the brake resistor and its wiring.",
    0x7113: "Brake chopper protective circuit tripped.",
    0x7120: "Motor fault.",
    0x7121: "Motor blocked: the motor is stalled; check for a jam or a holding brake that did not release.",
    0x7122: "Motor error or commutation malfunction: check the motor phases and the commutation sensor.",
    0x7123: "Motor tilted (pulled out of synchronism).",
    0x7200: "Measurement circuit fault.",
    0x7300: ("Sensor fault: the motor's position or speed sensor reports a problem. Check the encoder "
             "cable; the axis position cannot be trusted until this is cleared."),
    0x7301: "Tacho fault: check the tachometer and its cable.",
    0x7302: "Tacho has the wrong polarity: check the tachometer wiring.",
    0x7303: "Resolver 1 fault: check the resolver cable and connector.",
    0x7304: "Resolver 2 fault: check the resolver cable and connector.",
    0x7305: ("Incremental sensor 1 fault: the primary encoder signal is missing or corrupt. Check the "
             "encoder cable and connector; the axis position cannot be trusted until it is re-homed."),
    0x7306: "Incremental sensor 2 fault: the second encoder signal is missing or corrupt; check its cable.",
    0x7307: "Incremental sensor 3 fault: the third encoder signal is missing or corrupt; check its cable.",
    0x7310: "Speed sensor fault (speed measurement out of range or implausible).",
    0x7320: "Position sensor fault (position measurement out of range or implausible).",
    0x7400: "Computation circuit fault.",
    0x7500: "Communication fault in an additional module.",
    0x7510: "Serial interface no. 1 fault.",
    0x7520: "Serial interface no. 2 fault.",
    0x7600: "External data storage fault.",
    # 8xxx monitoring
    0x8100: "Communication fault.",
    0x8110: ("CAN overrun: the drive lost CAN messages because they came faster than it could read them. "
             "Check the bus load (motionctl hw info)."),
    0x8120: ("CAN error passive: the drive sees many transmission errors. Check the bus termination "
             "(120 ohm at both ends), the cabling and that every node uses the same bitrate."),
    0x8130: ("Heartbeat or life-guard error: the drive stopped hearing the master (or another node) it "
             "watches, and has applied its abort-connection reaction (0x6007)."),
    0x8140: ("Recovered from bus off: the drive dropped off the CAN bus after too many errors and is back. "
             "Setpoints sent meanwhile were lost; check cabling and termination."),
    0x8150: "CAN-ID collision: two nodes use the same CAN identifier; check the node-IDs.",
    0x8200: "CAN protocol error.",
    0x8210: ("PDO not processed due to length error: a PDO arrived shorter than its mapping. The master's "
             "and the drive's PDO mappings disagree."),
    0x8220: ("PDO length exceeded: a PDO arrived longer than its mapping. The master's and the drive's PDO "
             "mappings disagree."),
    0x8230: "Multiplexed PDO not processed: the destination object does not exist.",
    0x8240: "Unexpected SYNC data length: the SYNC producer and the drive disagree on the SYNC counter.",
    0x8250: "RPDO timeout: the drive's setpoint PDO did not arrive in time.",
    0x8300: "Torque control fault.",
    0x8311: "Excess torque: the axis needed more torque than allowed; check for a jam or collision.",
    0x8312: "Difficult start-up: the motor struggled to start moving.",
    0x8313: "Standstill torque fault.",
    0x8321: "Insufficient torque: the motor cannot produce the torque the move needs.",
    0x8331: "Torque fault.",
    0x8400: "Velocity controller fault: the speed deviates too far from its command.",
    0x8500: "Position controller fault.",
    0x8600: "Positioning controller fault.",
    0x8611: ("Following error: the axis fell further behind its commanded position than the following-error "
             "window (0x6065) allows, for longer than the timeout (0x6066). Check for a collision, a jam, "
             "a brake that did not release, or a move faster than the axis can follow."),
    0x8612: "Reference limit: the axis reached a limit switch or its software position limit.",
    0x8613: "Homing error: the axis could not find its reference position.",
    0x8700: "Sync controller fault: the drive lost step with the SYNC from the master.",
    0x8800: "Winding controller fault.",
    0x8900: "Process data monitoring fault.",
    0x8A00: "Control fault.",
    0x9000: ("External error: a device wired to the drive (for example an emergency stop or a safety input) "
             "signalled a fault."),
    0xF000: "Additional function error.",
    0xFF00: "Manufacturer-specific error: look the vendor bytes up in the drive's manual.",
}

#: Fallbacks for codes not in :data:`CODES`, most specific first: (value, mask, sentence).
CLASSES: Final[tuple[tuple[int, int, str], ...]] = (
    (0x0000, 0xFF00, "No error: the drive has cleared the error it reported (error reset)."),
    (0x1000, 0xFF00, "Generic error: the drive reports a fault without naming it."),
    (0x2100, 0xFF00, "Current fault on the drive's power input."),
    (0x2200, 0xFF00, "Current fault inside the drive."),
    (0x2300, 0xFF00, "Current fault on the motor side of the drive."),
    (0x2000, 0xF000, "Current fault."),
    (0x3100, 0xFF00, "Mains voltage fault at the drive's power input."),
    (0x3200, 0xFF00, "Voltage fault inside the drive (DC link)."),
    (0x3300, 0xFF00, "Output voltage fault at the motor terminals."),
    (0x3000, 0xF000, "Voltage fault."),
    (0x4100, 0xFF00, "Ambient temperature fault."),
    (0x4200, 0xFF00, "Drive temperature fault."),
    (0x4300, 0xFF00, "Power stage or motor temperature fault."),
    (0x4400, 0xFF00, "Power supply temperature fault."),
    (0x4000, 0xF000, "Temperature fault."),
    (0x5000, 0xF000, "Drive hardware fault."),
    (0x6100, 0xFF00, "Internal software error in the drive's firmware."),
    (0x6200, 0xFF00, "User software error in the drive."),
    (0x6300, 0xFF00, "Data set (parameter) error in the drive."),
    (0x6000, 0xF000, "Drive software error."),
    (0x7100, 0xFF00, "Power, brake or motor module fault."),
    (0x7200, 0xFF00, "Measurement circuit fault."),
    (0x7300, 0xFF00, "Sensor fault: check the encoder or resolver and its cable."),
    (0x7400, 0xFF00, "Computation circuit fault."),
    (0x7500, 0xFF00, "Communication fault in an additional module."),
    (0x7600, 0xFF00, "External data storage fault."),
    (0x7000, 0xF000, "Additional module fault."),
    (0x8100, 0xFF00, "CAN communication fault."),
    (0x8200, 0xFF00, "CAN protocol error."),
    (0x8300, 0xFF00, "Torque control fault."),
    (0x8400, 0xFF00, "Velocity controller fault."),
    (0x8500, 0xFF00, "Position controller fault."),
    (0x8600, 0xFF00, "Positioning controller fault."),
    (0x8700, 0xFF00, "Sync controller fault."),
    (0x8800, 0xFF00, "Winding controller fault."),
    (0x8000, 0xF000, "Monitoring fault."),
    (0x9000, 0xFF00, "External error: a device wired to the drive signalled a fault."),
    (0xF000, 0xFF00, "Additional function error."),
    (0xFF00, 0xFF00, "Manufacturer-specific error: look the vendor bytes up in the drive's manual."),
)


@dataclass(frozen=True)
class Emcy:
    """One decoded EMCY frame.  ``text`` is the operator-readable sentence for ``code``."""

    code: int
    register: int
    vendor: bytes
    text: str

    @property
    def is_reset(self) -> bool:
        """True for 0x00xx: the drive cleared its error (CiA 301 "error reset or no error")."""
        return self.code & 0xFF00 == 0

    def describe(self) -> str:
        """One line for the console or a log: code, sentence, error register, vendor bytes."""
        line = f"EMCY 0x{self.code:04X}: {self.text}"
        words = describe_error_register(self.register)
        if words:
            line += f" Error register 0x{self.register:02X}: {', '.join(words)}."
        if any(self.vendor):
            line += f" Vendor data {self.vendor.hex(' ').upper()}."
        return line


def emcy_text(code: int) -> str:
    """The plain-word sentence for an error code; unknown specific codes fall back to their class."""
    if not 0 <= code <= 0xFFFF:
        raise InputError(f"EMCY error code {code!r} is not a 16-bit value")
    if code in CODES:
        return CODES[code]
    for value, mask, sentence in CLASSES:
        if code & mask == value:
            return f"{sentence} (Code 0x{code:04X} is not in the CiA tables; see the drive's manual.)"
    return f"Unknown error code 0x{code:04X} (reserved in CiA 301); see the drive's manual."


def describe_error_register(register: int) -> list[str]:
    """The plain words for each bit set in an error register (0x1001), lowest bit first."""
    if not 0 <= register <= 0xFF:
        raise InputError(f"error register {register!r} is not an 8-bit value")
    return [words for bit, words in ERROR_REGISTER_WORDS.items() if register & bit]


def decode_emcy(data: bytes) -> Emcy:
    """Decode the data bytes of an EMCY frame (COB-ID 0x080 + node).

    CiA 301 EMCY frames carry 8 bytes; shorter frames (at least code and register) are accepted from
    sloppy devices, with the vendor bytes they do carry.
    """
    data = bytes(data)
    if not 3 <= len(data) <= 8:
        raise InputError(f"EMCY frame has {len(data)} data bytes; CiA 301 EMCY frames carry 8")
    code, register, vendor = _EMCY.unpack(data.ljust(8, b"\0"))
    return Emcy(code=code, register=register, vendor=vendor[: len(data) - 3], text=emcy_text(code))


def encode_emcy(code: int, register: int, vendor: bytes = b"") -> bytes:
    """The 8 data bytes of an EMCY frame, for the simulated drive (vendor bytes padded with zeros)."""
    if not 0 <= code <= 0xFFFF:
        raise InputError(f"EMCY error code {code!r} is not a 16-bit value")
    if not 0 <= register <= 0xFF:
        raise InputError(f"error register {register!r} is not an 8-bit value")
    if len(vendor) > 5:
        raise InputError(f"EMCY vendor data is {len(vendor)} bytes; at most 5 fit")
    return _EMCY.pack(code, register, bytes(vendor).ljust(5, b"\0"))
