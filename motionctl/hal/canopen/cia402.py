"""CiA 402 drive profile, as pure data and pure functions (the CiA 301 plumbing is in :mod:`.cia301`).

Why this module exists: the CAN driver (master side) and the simulated drive (device side) must agree,
bit for bit, on what a statusword means, which controlword moves the drive where, and which objects
carry what.  Keeping that knowledge here, with no I/O and no state, lets both sides
import the same table and lets the tests check the state machine exhaustively without a bus.

Sources (checked against public material):

* Statusword bits 0..6 and the mask/value pairs (0x4F/0x6F) -- CiA 402-2 (IEC 61800-7-201), as
  reproduced in python ``canopen`` 2.4 ``profiles/p402.py`` ``SW_MASK`` and in drive manuals
  (Beckhoff AX8000 object 0x6041, TI EtherCAT CiA 402 codes).
* Controlword command coding (bits 7, 3, 2, 1, 0) and transitions 0..16 with their events -- CiA 402-2,
  as reproduced in drive manuals (e.g. the MOONS' EtherCAT manual's "command codes with object 6040h"
  and transition tables) and Beckhoff object 0x6040.
* Quick-stop option codes (0x605A) and abort-connection option codes (0x6007: 0 no action, 1 fault
  signal, 2 disable voltage command, 3 quick stop command) -- CiA 402-2 object descriptions.
"""

from __future__ import annotations

from collections import deque
from enum import Enum, IntEnum, IntFlag
from fractions import Fraction
from typing import Final

from motionctl.errors import InputError, ProtocolError


# ---------------------------------------------------------------------------------------------------
# Object indices (CiA 402 drive area; the CiA 301 communication area is in cia301)
# ---------------------------------------------------------------------------------------------------

ABORT_CONNECTION_OPTION: Final = 0x6007   #: i16, see :class:`AbortConnectionOption`
ERROR_CODE: Final = 0x603F                #: u16, the last EMCY code of the drive
CONTROLWORD: Final = 0x6040               #: u16
STATUSWORD: Final = 0x6041                #: u16
QUICK_STOP_OPTION: Final = 0x605A         #: i16, see :class:`QuickStopOption`
SHUTDOWN_OPTION: Final = 0x605B
DISABLE_OPERATION_OPTION: Final = 0x605C
HALT_OPTION: Final = 0x605D
FAULT_REACTION_OPTION: Final = 0x605E
MODES_OF_OPERATION: Final = 0x6060        #: i8, see :class:`Mode`
MODES_OF_OPERATION_DISPLAY: Final = 0x6061
POSITION_ACTUAL: Final = 0x6064           #: i32, increments
FOLLOWING_ERROR_WINDOW: Final = 0x6065    #: u32, increments
FOLLOWING_ERROR_TIMEOUT: Final = 0x6066   #: u16, ms
VELOCITY_ACTUAL: Final = 0x606C           #: i32
TARGET_POSITION: Final = 0x607A           #: i32, increments (the CSP setpoint)
INTERPOLATION_TIME_PERIOD: Final = 0x60C2  #: record: sub 1 value (u8), sub 2 exponent (i8)
INTERPOLATION_TIME_VALUE_SUB: Final = 1
INTERPOLATION_TIME_INDEX_SUB: Final = 2
FOLLOWING_ERROR_ACTUAL: Final = 0x60F4    #: i32, increments
SUPPORTED_DRIVE_MODES: Final = 0x6502


# ---------------------------------------------------------------------------------------------------
# Statusword / controlword
# ---------------------------------------------------------------------------------------------------

class StatusBit(IntFlag):
    """Bits of the statusword 0x6041 (bits 12 and 13 depend on the mode of operation)."""

    READY_TO_SWITCH_ON = 1 << 0
    SWITCHED_ON = 1 << 1
    OPERATION_ENABLED = 1 << 2
    FAULT = 1 << 3
    VOLTAGE_ENABLED = 1 << 4
    QUICK_STOP = 1 << 5          #: low = quick stop active (only meaningful under mask 0x6F)
    SWITCH_ON_DISABLED = 1 << 6
    WARNING = 1 << 7
    REMOTE = 1 << 9              #: the controlword is being obeyed (drive is under bus control)
    TARGET_REACHED = 1 << 10
    INTERNAL_LIMIT_ACTIVE = 1 << 11
    OPERATION_MODE_12 = 1 << 12  #: CSP/CSV/CST: the drive follows the master's target
    OPERATION_MODE_13 = 1 << 13  #: PP/CSP: following error


class ControlBit(IntFlag):
    """Bits of the controlword 0x6040."""

    SWITCH_ON = 1 << 0
    ENABLE_VOLTAGE = 1 << 1
    QUICK_STOP = 1 << 2          #: low = quick stop requested
    ENABLE_OPERATION = 1 << 3
    FAULT_RESET = 1 << 7         #: acts on the rising edge only
    HALT = 1 << 8


class DriveState(Enum):
    """The states of the CiA 402 power drive system finite state automaton (PDS FSA)."""

    NOT_READY_TO_SWITCH_ON = "not ready to switch on"
    SWITCH_ON_DISABLED = "switch on disabled"
    READY_TO_SWITCH_ON = "ready to switch on"
    SWITCHED_ON = "switched on"
    OPERATION_ENABLED = "operation enabled"
    QUICK_STOP_ACTIVE = "quick stop active"
    FAULT_REACTION_ACTIVE = "fault reaction active"
    FAULT = "fault"

    def __str__(self) -> str:
        return self.value


#: (mask, value) of the statusword for each state.  States where bit 5 (quick stop) carries no meaning
#: use the narrow mask 0x4F; the others need bit 5 to tell OPERATION_ENABLED from QUICK_STOP_ACTIVE.
STATE_PATTERNS: Final[dict[DriveState, tuple[int, int]]] = {
    DriveState.NOT_READY_TO_SWITCH_ON: (0x4F, 0x00),
    DriveState.SWITCH_ON_DISABLED: (0x4F, 0x40),
    DriveState.READY_TO_SWITCH_ON: (0x6F, 0x21),
    DriveState.SWITCHED_ON: (0x6F, 0x23),
    DriveState.OPERATION_ENABLED: (0x6F, 0x27),
    DriveState.QUICK_STOP_ACTIVE: (0x6F, 0x07),
    DriveState.FAULT_REACTION_ACTIVE: (0x4F, 0x0F),
    DriveState.FAULT: (0x4F, 0x08),
}


class Command(Enum):
    """Device-control commands a master writes to the controlword (CiA 402-2 command coding).

    Each member carries the controlword a master sends (:attr:`controlword`) and the (mask, value)
    a drive uses to recognise it (:attr:`mask`, :attr:`pattern`).  SWITCH_ON and DISABLE_OPERATION share
    the same coding (0x07); which one it is depends on the state the drive is in, so the member values
    carry a label to keep them distinct.  FAULT_RESET is recognised on the rising edge of bit 7 only,
    which :func:`next_state` handles (its mask/pattern describe the level, not the edge).
    """

    SHUTDOWN = ("shutdown", 0x06, 0x87, 0x06)
    SWITCH_ON = ("switch on", 0x07, 0x8F, 0x07)
    ENABLE_OPERATION = ("enable operation", 0x0F, 0x8F, 0x0F)
    DISABLE_VOLTAGE = ("disable voltage", 0x00, 0x82, 0x00)
    QUICK_STOP = ("quick stop", 0x02, 0x86, 0x02)
    DISABLE_OPERATION = ("disable operation", 0x07, 0x8F, 0x07)
    FAULT_RESET = ("fault reset", 0x80, 0x80, 0x80)

    def __init__(self, label: str, controlword: int, mask: int, pattern: int) -> None:
        self.label = label
        self.controlword = controlword
        self.mask = mask
        self.pattern = pattern

    def __str__(self) -> str:
        return self.label


_S = DriveState
_C = Command

#: The device-control transitions a master triggers, (state, command) -> next state.  Transitions 0, 1,
#: 13 and 14 are not caused by a command (see :data:`AUTOMATIC_TRANSITIONS` and :func:`fault_occurred`).
#: Transition 16 applies only when the quick-stop option code (0x605A) is 5..8; :func:`next_state`
#: checks that.  Any (state, command) pair not listed is ignored by the drive.
TRANSITIONS: Final[dict[tuple[DriveState, Command], DriveState]] = {
    (_S.SWITCH_ON_DISABLED, _C.SHUTDOWN): _S.READY_TO_SWITCH_ON,            # 2
    (_S.READY_TO_SWITCH_ON, _C.SWITCH_ON): _S.SWITCHED_ON,                  # 3
    (_S.SWITCHED_ON, _C.ENABLE_OPERATION): _S.OPERATION_ENABLED,            # 4
    (_S.OPERATION_ENABLED, _C.DISABLE_OPERATION): _S.SWITCHED_ON,           # 5
    (_S.SWITCHED_ON, _C.SHUTDOWN): _S.READY_TO_SWITCH_ON,                   # 6
    (_S.READY_TO_SWITCH_ON, _C.DISABLE_VOLTAGE): _S.SWITCH_ON_DISABLED,     # 7
    (_S.READY_TO_SWITCH_ON, _C.QUICK_STOP): _S.SWITCH_ON_DISABLED,          # 7
    (_S.OPERATION_ENABLED, _C.SHUTDOWN): _S.READY_TO_SWITCH_ON,             # 8
    (_S.OPERATION_ENABLED, _C.DISABLE_VOLTAGE): _S.SWITCH_ON_DISABLED,      # 9
    (_S.SWITCHED_ON, _C.DISABLE_VOLTAGE): _S.SWITCH_ON_DISABLED,            # 10
    (_S.SWITCHED_ON, _C.QUICK_STOP): _S.SWITCH_ON_DISABLED,                 # 10
    (_S.OPERATION_ENABLED, _C.QUICK_STOP): _S.QUICK_STOP_ACTIVE,            # 11
    (_S.QUICK_STOP_ACTIVE, _C.DISABLE_VOLTAGE): _S.SWITCH_ON_DISABLED,      # 12
    (_S.FAULT, _C.FAULT_RESET): _S.SWITCH_ON_DISABLED,                      # 15
    (_S.QUICK_STOP_ACTIVE, _C.ENABLE_OPERATION): _S.OPERATION_ENABLED,      # 16 (option 5..8 only)
}

#: The CiA 402 transition number of each entry of :data:`TRANSITIONS`, for logs ("transition 15").
TRANSITION_NUMBERS: Final[dict[tuple[DriveState, Command], int]] = {
    (_S.SWITCH_ON_DISABLED, _C.SHUTDOWN): 2,
    (_S.READY_TO_SWITCH_ON, _C.SWITCH_ON): 3,
    (_S.SWITCHED_ON, _C.ENABLE_OPERATION): 4,
    (_S.OPERATION_ENABLED, _C.DISABLE_OPERATION): 5,
    (_S.SWITCHED_ON, _C.SHUTDOWN): 6,
    (_S.READY_TO_SWITCH_ON, _C.DISABLE_VOLTAGE): 7,
    (_S.READY_TO_SWITCH_ON, _C.QUICK_STOP): 7,
    (_S.OPERATION_ENABLED, _C.SHUTDOWN): 8,
    (_S.OPERATION_ENABLED, _C.DISABLE_VOLTAGE): 9,
    (_S.SWITCHED_ON, _C.DISABLE_VOLTAGE): 10,
    (_S.SWITCHED_ON, _C.QUICK_STOP): 10,
    (_S.OPERATION_ENABLED, _C.QUICK_STOP): 11,
    (_S.QUICK_STOP_ACTIVE, _C.DISABLE_VOLTAGE): 12,
    (_S.FAULT, _C.FAULT_RESET): 15,
    (_S.QUICK_STOP_ACTIVE, _C.ENABLE_OPERATION): 16,
}

#: CiA 402-2 also codes "switch on + enable operation" (0x0F in READY_TO_SWITCH_ON = transitions 3 + 4).
#: The simulated drive honours it, but :func:`path_to` never relies on it: drives built to the older
#: DSP 402 ignore it, and stepping one transition at a time works on every drive.
SWITCH_ON_AND_ENABLE: Final[dict[tuple[DriveState, Command], DriveState]] = {
    (_S.READY_TO_SWITCH_ON, _C.ENABLE_OPERATION): _S.OPERATION_ENABLED,     # 3 + 4
}

#: Transitions the drive makes on its own: 1 (initialisation done) and 14 (fault reaction done).
AUTOMATIC_TRANSITIONS: Final[dict[DriveState, DriveState]] = {
    _S.NOT_READY_TO_SWITCH_ON: _S.SWITCH_ON_DISABLED,
    _S.FAULT_REACTION_ACTIVE: _S.FAULT,
}

_CONDITIONAL: Final = frozenset({(_S.QUICK_STOP_ACTIVE, _C.ENABLE_OPERATION)})


class QuickStopOption(IntEnum):
    """Quick stop option code 0x605A: what QUICK_STOP does, and whether the drive stays in QUICK_STOP_ACTIVE.

    0..4 end in SWITCH_ON_DISABLED once stopped (transition 12, automatic); 5..8 stay in
    QUICK_STOP_ACTIVE, from where ENABLE_OPERATION resumes (transition 16).  Negative values are
    manufacturer specific.  The CiA 402 default is 2.
    """

    DISABLE_DRIVE_FUNCTION = 0
    SLOW_DOWN_RAMP = 1
    QUICK_STOP_RAMP = 2
    CURRENT_LIMIT = 3
    VOLTAGE_LIMIT = 4
    SLOW_DOWN_RAMP_STAY = 5
    QUICK_STOP_RAMP_STAY = 6
    CURRENT_LIMIT_STAY = 7
    VOLTAGE_LIMIT_STAY = 8


class AbortConnectionOption(IntEnum):
    """Abort connection option code 0x6007: the drive's own reaction when it loses its master.

    Why it matters: without it (and a heartbeat consumer in 0x1016) a drive in CSP keeps holding, or
    chasing, the last setpoint of a master that is gone.
    """

    NO_ACTION = 0
    FAULT_SIGNAL = 1
    DISABLE_VOLTAGE = 2
    QUICK_STOP = 3


def state_from_statusword(sw: int) -> DriveState:
    """Decode the drive state from a statusword, ignoring every bit outside the state's mask.

    Raises :class:`~motionctl.errors.ProtocolError` for a statusword that matches no state (e.g. 0x0001):
    a drive sending one is broken or not a CiA 402 drive, and guessing would be unsafe.
    """
    if not 0 <= sw <= 0xFFFF:
        raise ProtocolError(f"statusword {sw!r} is not a 16-bit value")
    for state, (mask, value) in STATE_PATTERNS.items():
        if sw & mask == value:
            return state
    raise ProtocolError(f"statusword 0x{sw:04X} matches no CiA 402 drive state")


def statusword_for(state: DriveState, *, warning: bool = False, target_reached: bool = False,
                   following_error: bool = False, internal_limit: bool = False,
                   voltage_enabled: bool = True, remote: bool = True,
                   drive_follows: bool = False) -> int:
    """The statusword a simulated drive reports in ``state``.

    Bit 5 (quick stop) is set in READY_TO_SWITCH_ON, SWITCHED_ON and OPERATION_ENABLED, clear in
    QUICK_STOP_ACTIVE, and left clear where it carries no meaning.  ``following_error`` is bit 13 and
    ``drive_follows`` bit 12 (in CSP: "the drive follows the master's target position").
    """
    word = STATE_PATTERNS[state][1]
    flags = ((warning, StatusBit.WARNING), (target_reached, StatusBit.TARGET_REACHED),
             (following_error, StatusBit.OPERATION_MODE_13),
             (internal_limit, StatusBit.INTERNAL_LIMIT_ACTIVE),
             (voltage_enabled, StatusBit.VOLTAGE_ENABLED), (remote, StatusBit.REMOTE),
             (drive_follows, StatusBit.OPERATION_MODE_12))
    for on, bit in flags:
        if on:
            word |= int(bit)
    return word


def commands_in(controlword: int, previous_controlword: int) -> frozenset[Command]:
    """Every command the controlword codes, given the word before it (for the fault-reset edge).

    With bit 7 high the word codes FAULT_RESET on the rising edge and nothing at all while bit 7 stays
    high: every other command requires bit 7 low.  0x07 codes both SWITCH_ON and DISABLE_OPERATION; the
    state decides which one applies.
    """
    if controlword & ControlBit.FAULT_RESET:
        rising = not previous_controlword & ControlBit.FAULT_RESET
        return frozenset({Command.FAULT_RESET}) if rising else frozenset()
    return frozenset(c for c in Command
                     if c is not Command.FAULT_RESET and controlword & c.mask == c.pattern)


def next_state(state: DriveState, controlword: int, previous_controlword: int, *,
               quick_stop_option: int = QuickStopOption.QUICK_STOP_RAMP) -> DriveState:
    """How a drive in ``state`` reacts to a controlword (the device side of the state machine).

    A command that is not valid in the current state is ignored, as CiA 402 requires.  Fault reset acts
    only on the rising edge of bit 7, so a master holding 0x80 cannot reset a fault over and over.
    Transition 16 (QUICK_STOP_ACTIVE -> OPERATION_ENABLED) needs a quick-stop option code of 5..8.
    Automatic transitions are not applied here; see :func:`after_automatic`.
    """
    for command in commands_in(controlword, previous_controlword):
        key = (state, command)
        if key in _CONDITIONAL and not 5 <= quick_stop_option <= 8:
            continue
        target = TRANSITIONS.get(key) or SWITCH_ON_AND_ENABLE.get(key)
        if target is not None:
            return target
    return state


def after_automatic(state: DriveState) -> DriveState:
    """The state once the drive has finished its automatic transitions (1: init done, 14: reaction done)."""
    while state in AUTOMATIC_TRANSITIONS:
        state = AUTOMATIC_TRANSITIONS[state]
    return state


def fault_occurred(state: DriveState) -> DriveState:
    """Transition 13: a fault in any state starts the fault reaction (a fault in FAULT stays a fault)."""
    if state in (DriveState.FAULT_REACTION_ACTIVE, DriveState.FAULT):
        return state
    return DriveState.FAULT_REACTION_ACTIVE


def quick_stop_completed(state: DriveState, quick_stop_option: int) -> DriveState:
    """Transition 12 (automatic): once the quick stop has come to rest, options 0..4 disable the drive."""
    if state is DriveState.QUICK_STOP_ACTIVE and 0 <= quick_stop_option <= 4:
        return DriveState.SWITCH_ON_DISABLED
    return state


def on_abort_connection(state: DriveState, option: int, *,
                        quick_stop_option: int = QuickStopOption.QUICK_STOP_RAMP) -> DriveState:
    """What a drive does when it loses its master (heartbeat timeout, bus off), per 0x6007.

    Used by the simulated drive, so that tests can prove a dead master stops the rig.
    """
    if option == AbortConnectionOption.FAULT_SIGNAL:
        return fault_occurred(state)
    if option == AbortConnectionOption.DISABLE_VOLTAGE:
        return next_state(state, Command.DISABLE_VOLTAGE.controlword, 0)
    if option == AbortConnectionOption.QUICK_STOP:
        return next_state(state, Command.QUICK_STOP.controlword, 0, quick_stop_option=quick_stop_option)
    return state


def path_to(state: DriveState, target: DriveState, *,
            quick_stop_option: int = QuickStopOption.QUICK_STOP_RAMP) -> list[Command]:
    """The commands a master sends, one per observed state change, to bring a drive to ``target``.

    Usually ``target`` is OPERATION_ENABLED (enable) or SWITCH_ON_DISABLED (disable); any state reachable
    by commands works.  The path is shortest, with ties broken by the order of :class:`Command` (so
    DISABLE_VOLTAGE is preferred to QUICK_STOP), and uses single transitions only.  From FAULT to
    OPERATION_ENABLED it is fault reset, shutdown, switch on, enable operation.  From the two transient
    states (NOT_READY_TO_SWITCH_ON, FAULT_REACTION_ACTIVE) the path starts where the drive will land
    on its own, so the master waits for that first; an empty list means there is nothing to send (the
    drive is at ``target``, or will get there on its own).  The word before a FAULT_RESET must have bit 7
    low; a master that re-plans every cycle sends :func:`controlword_for` to guarantee the edge.

    Raises :class:`~motionctl.errors.InputError` if no sequence of commands reaches ``target``.
    """
    start = after_automatic(state)
    if start is target:
        return []
    edges = [(key, to) for key, to in TRANSITIONS.items()
             if key not in _CONDITIONAL or 5 <= quick_stop_option <= 8]
    order = {c: i for i, c in enumerate(Command)}
    edges.sort(key=lambda e: order[e[0][1]])
    previous: dict[DriveState, tuple[DriveState, Command]] = {}
    queue: deque[DriveState] = deque([start])
    seen = {start}
    while queue:
        here = queue.popleft()
        for (source, command), to in edges:
            if source is not here or to in seen:
                continue
            seen.add(to)
            previous[to] = (here, command)
            if to is target:
                path: list[Command] = []
                node = to
                while node is not start:
                    node, step = previous[node]
                    path.append(step)
                return path[::-1]
            queue.append(to)
    raise InputError(f"no controlword sequence brings a drive from {state} to {target}")


def controlword_for(command: Command, previous_controlword: int) -> int:
    """The controlword to send this cycle for ``command``, given the word sent last cycle.

    Why: fault reset acts on a rising edge of bit 7.  A master that re-plans every cycle and keeps
    sending 0x80 (because the drive was still in FAULT_REACTION_ACTIVE, or the fault was still present
    and the drive refused the reset) would never make another edge and would wait forever.  So after a
    word with bit 7 high, a FAULT_RESET is first sent as 0x00 (bit 7 low, ignored in FAULT), and as 0x80
    on the next cycle.  Every other command is sent as its own controlword.
    """
    if command is Command.FAULT_RESET and previous_controlword & ControlBit.FAULT_RESET:
        return Command.DISABLE_VOLTAGE.controlword
    return command.controlword


# ---------------------------------------------------------------------------------------------------
# Modes of operation (0x6060 / 0x6061)
# ---------------------------------------------------------------------------------------------------

class Mode(IntEnum):
    """Modes of operation.  motionctl streams Cyclic Synchronous Position (CSP)."""

    NO_MODE = 0
    PP = 1    #: profile position
    VL = 2    #: velocity
    PV = 3    #: profile velocity
    PT = 4    #: profile torque
    HM = 6    #: homing
    IP = 7    #: interpolated position
    CSP = 8   #: cyclic synchronous position
    CSV = 9   #: cyclic synchronous velocity
    CST = 10  #: cyclic synchronous torque


PP: Final = Mode.PP
VL: Final = Mode.VL
PV: Final = Mode.PV
PT: Final = Mode.PT
HM: Final = Mode.HM
IP: Final = Mode.IP
CSP: Final = Mode.CSP
CSV: Final = Mode.CSV
CST: Final = Mode.CST


# ---------------------------------------------------------------------------------------------------
# Interpolation time period (0x60C2)
# ---------------------------------------------------------------------------------------------------

def interpolation_period(seconds: float | Fraction | int) -> tuple[int, int]:
    """Encode a servo period for 0x60C2 as (value, exponent): period = value * 10**exponent s.

    Sub 1 is an UNSIGNED8 (1..255) and sub 2 an INTEGER8 exponent (-128..63).  The shortest exact
    encoding is chosen (2 ms -> (2, -3), 0.5 ms -> (5, -4)).  A period that has no exact encoding (such
    as 1/300 s) raises :class:`~motionctl.errors.InputError`: a drive interpolating over a slightly wrong
    period scales every velocity by the error.  Floats are read as the decimal they print as.
    """
    if isinstance(seconds, Fraction):
        period = seconds
    elif isinstance(seconds, int):
        period = Fraction(seconds)
    else:
        period = Fraction(repr(float(seconds)))
    if period <= 0:
        raise InputError(f"interpolation period {float(period)} s must be positive")
    for exponent in range(63, -129, -1):
        value = period / Fraction(10) ** exponent
        if value.denominator == 1:
            if value.numerator <= 255:
                return int(value.numerator), exponent
            break
    raise InputError(f"servo period {float(period) * 1e3:.6g} ms cannot be written exactly to 0x60C2 "
                     "(1..255 x 10^n s); choose a rate whose period is a short decimal, e.g. 250, 500 "
                     "or 1000 Hz")


def interpolation_seconds(value: int, exponent: int) -> Fraction:
    """Decode 0x60C2 (value, exponent) to an exact period in seconds."""
    if not (0 <= value <= 255 and -128 <= exponent <= 63):
        raise InputError(f"0x60C2 value {value} / exponent {exponent} is out of range")
    return Fraction(value) * Fraction(10) ** exponent

