"""CiA 402 (IEC 61800-7-201/-301, drive profile) as a *device* reads it: the power drive system's state
machine, the controlword commands, the statusword, and the objects a cyclic-synchronous-position drive has.

Written from the standard, not from motionctl's host code (nothing here comes from ``motionctl.hal``): a
simulated drive that ran the master's own tables would agree with every misreading of them.  Citations
are to CiA 402-2 (v4): "FSA" is its power drive system finite state automaton with transitions 0-16, the
controlword and statusword are objects 6040h / 6041h, and the tables are named by their titles
("command coding", "state coding").  Pure data and pure functions; :mod:`simulator.canopen.drive` holds state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag


class Od402(IntEnum):
    """The drive-profile objects this drive implements."""

    ABORT_CONNECTION_OPTION = 0x6007      #: i16
    ERROR_CODE = 0x603F                   #: u16, the last error's EMCY code
    CONTROLWORD = 0x6040                  #: u16
    STATUSWORD = 0x6041                   #: u16
    QUICK_STOP_OPTION = 0x605A            #: i16
    MODES_OF_OPERATION = 0x6060           #: i8, what the master asks for
    MODES_OF_OPERATION_DISPLAY = 0x6061   #: i8, what the drive runs
    POSITION_ACTUAL = 0x6064              #: i32, increments
    FOLLOWING_ERROR_WINDOW = 0x6065       #: u32, increments; FFFFFFFFh switches monitoring off
    FOLLOWING_ERROR_TIMEOUT = 0x6066      #: u16, ms
    VELOCITY_ACTUAL = 0x606C              #: i32, increments/s
    TARGET_POSITION = 0x607A              #: i32, increments
    INTERPOLATION_TIME_PERIOD = 0x60C2    #: record: sub 1 value u8, sub 2 index (exponent) i8
    FOLLOWING_ERROR_ACTUAL = 0x60F4       #: i32, increments


FOLLOWING_WINDOW_OFF = 0xFFFFFFFF         #: 6065h: following-error monitoring switched off
EMCY_FOLLOWING_ERROR = 0x8611             #: CiA 402 error code: positioning controller, following error


class Mode(IntEnum):
    """Modes of operation, 6060h / 6061h."""

    NO_MODE = 0
    PROFILE_POSITION = 1
    VELOCITY = 2
    PROFILE_VELOCITY = 3
    PROFILE_TORQUE = 4
    HOMING = 6
    INTERPOLATED_POSITION = 7
    CYCLIC_SYNC_POSITION = 8
    CYCLIC_SYNC_VELOCITY = 9
    CYCLIC_SYNC_TORQUE = 10


# -- the FSA ------------------------------------------------------------------------------------------------
class DriveState(Enum):
    """The eight FSA states (CiA 402-2, figure "power drive system FSA")."""

    NOT_READY_TO_SWITCH_ON = "not ready to switch on"
    SWITCH_ON_DISABLED = "switch on disabled"
    READY_TO_SWITCH_ON = "ready to switch on"
    SWITCHED_ON = "switched on"
    OPERATION_ENABLED = "operation enabled"
    QUICK_STOP_ACTIVE = "quick stop active"
    FAULT_REACTION_ACTIVE = "fault reaction active"
    FAULT = "fault"

    #: Members are singletons compared by identity: hash them by identity, in C.  Enum's own hash is a
    #: Python call (``hash(self._name_)``), and the drive model hashes states ~10 times per drive and SYNC.
    __hash__ = object.__hash__


class Command(Enum):
    """Device control commands, as (mask, value) over controlword bits 7, 3, 2, 1, 0 (table "command
    coding"; x = the bit is not looked at):

    ============================  =====  =====  =====  =====  =====  ===================
    command                       bit 7  bit 3  bit 2  bit 1  bit 0  transitions
    ============================  =====  =====  =====  =====  =====  ===================
    shutdown                      0      x      1      1      0      2, 6, 8
    switch on                     0      0      1      1      1      3
    switch on + enable operation  0      1      1      1      1      3 + 4
    disable voltage               0      x      x      0      x      7, 9, 10, 12
    quick stop                    0      x      0      1      x      7, 10, 11
    disable operation             0      0      1      1      1      5
    enable operation              0      1      1      1      1      4, 16
    fault reset                   0->1   x      x      x      x      15
    ============================  =====  =====  =====  =====  =====  ===================

    Two pairs share a bit pattern, so they are one member each here (``DISABLE_OPERATION`` is an alias
    of ``SWITCH_ON``); the state the drive is in says which of the two the master meant.
    """

    SHUTDOWN = (0x87, 0x06)
    SWITCH_ON = (0x8F, 0x07)
    DISABLE_OPERATION = (0x8F, 0x07)
    DISABLE_VOLTAGE = (0x82, 0x00)
    QUICK_STOP = (0x86, 0x02)
    ENABLE_OPERATION = (0x8F, 0x0F)
    FAULT_RESET = (0x80, 0x80)            #: and bit 7 was 0 in the previous controlword

    __hash__ = object.__hash__            # by identity, in C (see DriveState)

    @property
    def mask(self) -> int:
        return self.value[0]

    @property
    def bits(self) -> int:
        return self.value[1]


FAULT_RESET_BIT = 0x80
_LEVEL_COMMANDS = (Command.DISABLE_VOLTAGE, Command.QUICK_STOP, Command.SHUTDOWN, Command.SWITCH_ON,
                   Command.ENABLE_OPERATION)
_LEVEL_CODES = tuple((command, command.mask, command.bits) for command in _LEVEL_COMMANDS)   # once, not per word


def decode_controlword(word: int, previous: int) -> Command | None:
    """The command in ``word``, given the controlword before it.

    Fault reset is an edge, not a level: only bit 7 going 0 -> 1 is one, whatever bits 0-3 say.  While
    bit 7 stays 1 the word matches no row of "command coding" (every other row has bit 7 = 0), so it
    commands nothing and the FSA stays where it is.
    """
    if word & FAULT_RESET_BIT and not previous & FAULT_RESET_BIT:
        return Command.FAULT_RESET
    for command, mask, bits in _LEVEL_CODES:
        if word & mask == bits:
            return command
    return None


class QuickStopOption(IntEnum):
    """605Ah: what the quick stop function does.  Negative values are manufacturer specific; this drive
    has none."""

    DISABLE_DRIVE_FUNCTION = 0
    SLOW_DOWN_RAMP = 1                    #: ... and transit into switch on disabled
    QUICK_STOP_RAMP = 2                   #: ... and transit into switch on disabled (the default)
    CURRENT_LIMIT = 3
    VOLTAGE_LIMIT = 4
    SLOW_DOWN_RAMP_STAY = 5               #: ... and stay in quick stop active
    QUICK_STOP_RAMP_STAY = 6
    CURRENT_LIMIT_STAY = 7
    VOLTAGE_LIMIT_STAY = 8

    @property
    def stays(self) -> bool:
        """Options 5-8 keep the drive in quick stop active once stopped (so transition 16 is allowed)."""
        return self >= QuickStopOption.SLOW_DOWN_RAMP_STAY

    @property
    def brakes(self) -> bool:
        """Every option but 0 brings the motor to rest under control; 0 just removes its torque."""
        return self is not QuickStopOption.DISABLE_DRIVE_FUNCTION


class AbortConnectionOption(IntEnum):
    """6007h: the reaction to a lost connection.  The events are bus-off, heartbeat or life guarding
    timeout, entering NMT stopped, reset application and reset communication (object 6007h) -- not
    entering pre-operational.  Negative values are manufacturer specific; this drive has none."""

    NO_ACTION = 0
    FAULT_SIGNAL = 1                      #: a fault: transition 13 (the EDS default)
    DISABLE_VOLTAGE = 2                   #: as if the master had sent "disable voltage"
    QUICK_STOP = 3                        #: as if the master had sent "quick stop"

    @property
    def command(self) -> Command | None:
        """The device control command the reaction stands for (options 2 and 3)."""
        return {AbortConnectionOption.DISABLE_VOLTAGE: Command.DISABLE_VOLTAGE,
                AbortConnectionOption.QUICK_STOP: Command.QUICK_STOP}.get(self)


@dataclass(frozen=True)
class Transition:
    """A step of the FSA: the standard's transition number(s) and where it leads."""

    numbers: tuple[int, ...]
    target: DriveState


S = DriveState
#: Transitions a command causes (figure "power drive system FSA" with table "command coding").  A
#: (state, command) pair that is not here is a command the state ignores.
TRANSITIONS: dict[tuple[DriveState, Command], Transition] = {
    (S.SWITCH_ON_DISABLED, Command.SHUTDOWN): Transition((2,), S.READY_TO_SWITCH_ON),
    (S.READY_TO_SWITCH_ON, Command.SWITCH_ON): Transition((3,), S.SWITCHED_ON),
    # "switch on + enable operation": 3, then 4 on its own once switched on
    (S.READY_TO_SWITCH_ON, Command.ENABLE_OPERATION): Transition((3, 4), S.OPERATION_ENABLED),
    (S.SWITCHED_ON, Command.ENABLE_OPERATION): Transition((4,), S.OPERATION_ENABLED),
    (S.OPERATION_ENABLED, Command.DISABLE_OPERATION): Transition((5,), S.SWITCHED_ON),
    (S.SWITCHED_ON, Command.SHUTDOWN): Transition((6,), S.READY_TO_SWITCH_ON),
    (S.READY_TO_SWITCH_ON, Command.DISABLE_VOLTAGE): Transition((7,), S.SWITCH_ON_DISABLED),
    (S.READY_TO_SWITCH_ON, Command.QUICK_STOP): Transition((7,), S.SWITCH_ON_DISABLED),
    (S.OPERATION_ENABLED, Command.SHUTDOWN): Transition((8,), S.READY_TO_SWITCH_ON),
    (S.OPERATION_ENABLED, Command.DISABLE_VOLTAGE): Transition((9,), S.SWITCH_ON_DISABLED),
    (S.SWITCHED_ON, Command.DISABLE_VOLTAGE): Transition((10,), S.SWITCH_ON_DISABLED),
    (S.SWITCHED_ON, Command.QUICK_STOP): Transition((10,), S.SWITCH_ON_DISABLED),
    (S.OPERATION_ENABLED, Command.QUICK_STOP): Transition((11,), S.QUICK_STOP_ACTIVE),
    (S.QUICK_STOP_ACTIVE, Command.DISABLE_VOLTAGE): Transition((12,), S.SWITCH_ON_DISABLED),
    (S.FAULT, Command.FAULT_RESET): Transition((15,), S.SWITCH_ON_DISABLED),
    # only with quick stop option 5-8: see on_command
    (S.QUICK_STOP_ACTIVE, Command.ENABLE_OPERATION): Transition((16,), S.OPERATION_ENABLED),
}


def on_command(state: DriveState, command: Command | None,
               quick_stop_option: QuickStopOption) -> Transition | None:
    """The transition ``command`` causes in ``state``, or None if the state ignores it.

    Transition 16 (quick stop active -> operation enabled) exists only for quick stop options 5-8; with
    1-4 the drive is on its way to switch on disabled and "enable operation" cannot stop that.
    """
    if command is None:
        return None
    transition = TRANSITIONS.get((state, command))
    if transition is not None and transition.numbers == (16,) and not quick_stop_option.stays:
        return None
    return transition


#: Transitions 0 and 1 at power-on: start -> not ready to switch on (initialisation, self test) ->
#: switch on disabled, both without any command.
POWER_ON = (Transition((0,), S.NOT_READY_TO_SWITCH_ON), Transition((1,), S.SWITCH_ON_DISABLED))


def on_fault(state: DriveState) -> Transition | None:
    """Transition 13: a fault in any state starts the fault reaction (not again while one runs)."""
    if state in (S.FAULT_REACTION_ACTIVE, S.FAULT):
        return None
    return Transition((13,), S.FAULT_REACTION_ACTIVE)


def on_fault_reaction_completed(state: DriveState) -> Transition | None:
    """Transition 14: the fault reaction has brought the drive to rest -> fault."""
    return Transition((14,), S.FAULT) if state is S.FAULT_REACTION_ACTIVE else None


def on_quick_stop_completed(state: DriveState, option: QuickStopOption) -> Transition | None:
    """Transition 12 once the quick stop has stopped the motor, for options that do not stay (1-4).

    Option 0 ("disable drive function") is read as completing at once: the torque is gone and there is
    nothing left to stop, and unlike 5-8 it does not say "stay in quick stop active".
    """
    if state is not S.QUICK_STOP_ACTIVE or option.stays:
        return None
    return Transition((12,), S.SWITCH_ON_DISABLED)


def on_abort_connection(state: DriveState, option: AbortConnectionOption,
                        quick_stop_option: QuickStopOption) -> Transition | None:
    """6007h: the transition a lost connection causes in ``state`` -- in whatever state the FSA is.

    Options 2 and 3 are the "disable voltage" / "quick stop" commands, so they do what those commands
    do in that state (nothing in switch on disabled, 7/10 before operation, 9/11 in operation); option 1
    is a fault (transition 13).
    """
    if option is AbortConnectionOption.FAULT_SIGNAL:
        return on_fault(state)
    return on_command(state, option.command, quick_stop_option)


# -- 6041h statusword ----------------------------------------------------------------------------------------
class StatusBit(IntFlag):
    """Statusword bits (object 6041h).  Bits 12 and 13 are operation mode specific: their cyclic
    synchronous position meanings are given."""

    READY_TO_SWITCH_ON = 1 << 0
    SWITCHED_ON = 1 << 1
    OPERATION_ENABLED = 1 << 2
    FAULT = 1 << 3
    VOLTAGE_ENABLED = 1 << 4               #: high voltage applied to the power stage
    QUICK_STOP = 1 << 5                    #: 0 = a quick stop is active (inverted sense)
    SWITCH_ON_DISABLED = 1 << 6
    WARNING = 1 << 7                       #: a warning: the FSA state does not change
    REMOTE = 1 << 9                        #: the controlword is processed
    TARGET_REACHED = 1 << 10
    INTERNAL_LIMIT_ACTIVE = 1 << 11
    CSP_DRIVE_FOLLOWS = 1 << 12            #: csp: 1 = the target position is the position loop's input
    CSP_FOLLOWING_ERROR = 1 << 13          #: csp: outside 6065h for longer than 6066h


#: Table "state coding": (mask, value) of bits 0-6 for each state; bits outside the mask are "x".
STATE_CODING: dict[DriveState, tuple[int, int]] = {
    S.NOT_READY_TO_SWITCH_ON: (0x4F, 0x00),
    S.SWITCH_ON_DISABLED: (0x4F, 0x40),
    S.READY_TO_SWITCH_ON: (0x6F, 0x21),
    S.SWITCHED_ON: (0x6F, 0x23),
    S.OPERATION_ENABLED: (0x6F, 0x27),
    S.QUICK_STOP_ACTIVE: (0x6F, 0x07),
    S.FAULT_REACTION_ACTIVE: (0x4F, 0x0F),
    S.FAULT: (0x4F, 0x08),
}


def state_of(statusword: int) -> DriveState | None:
    """The state a statusword shows (the codings are disjoint), or None for a word no state has."""
    for state, (mask, value) in STATE_CODING.items():
        if statusword & mask == value:
            return state
    return None


@dataclass(frozen=True)
class StatusInputs:
    """What besides the state goes into a statusword."""

    voltage_enabled: bool = False
    warning: bool = False
    remote: bool = True
    target_reached: bool = False
    mode_bits: int = 0                    #: bits 12-13, operation mode specific


def statusword(state: DriveState, inputs: StatusInputs = StatusInputs()) -> int:
    """Encode 6041h: the state's coding in bits 0-6 ("x" bits 0), then bits 4, 7, 9, 10 and 12-13.

    On plain ints: every drive computes this for every TPDO, and an enum flag's ``|`` costs a Python
    call each (a fifth of a simulated-time CAN run went to enum arithmetic)."""
    word = int(STATE_CODING[state][1])
    if inputs.voltage_enabled:
        word |= _VOLTAGE_ENABLED
    if inputs.warning:
        word |= _WARNING
    if inputs.remote:
        word |= _REMOTE
    if inputs.target_reached:
        word |= _TARGET_REACHED
    return word | (inputs.mode_bits & _CSP_BITS)


def target_reached(state: DriveState, quick_stop_option: QuickStopOption, halted: bool) -> bool:
    """Bit 10 as this csp drive sets it.  In csp the mode-specific "target reached" is reserved (the
    target changes every cycle), but the general rule stands: with quick stop option 5-8 the bit is 1
    once the quick stop has finished and the drive is at rest."""
    return state is S.QUICK_STOP_ACTIVE and quick_stop_option.stays and halted


def csp_bits(state: DriveState, mode: int, following_error: bool) -> int:
    """Bits 12 and 13 in cyclic synchronous position mode: 12 = the drive follows the target (only in
    operation enabled; otherwise the target position is ignored), 13 = following error (6065h exceeded
    for longer than 6066h).  Other modes' meanings are not this drive's: zero."""
    if mode != Mode.CYCLIC_SYNC_POSITION or state is not S.OPERATION_ENABLED:
        return 0
    return _CSP_BITS if following_error else _CSP_FOLLOWS


_VOLTAGE_ENABLED, _WARNING = int(StatusBit.VOLTAGE_ENABLED), int(StatusBit.WARNING)
_REMOTE, _TARGET_REACHED = int(StatusBit.REMOTE), int(StatusBit.TARGET_REACHED)
_CSP_FOLLOWS = int(StatusBit.CSP_DRIVE_FOLLOWS)
_CSP_BITS = int(StatusBit.CSP_DRIVE_FOLLOWS | StatusBit.CSP_FOLLOWING_ERROR)


def following_error_timed_out(over_window_s: float, timeout_ms: int) -> bool:
    """6066h: a following error is one that has stayed outside the 6065h window this long."""
    return over_window_s * 1000.0 >= timeout_ms


def interpolation_period_s(value: int, index: int) -> float:
    """60C2h: the interpolation time period is value (sub 1, u8) x 10^index (sub 2, i8) seconds; csp
    steps the position setpoint once per period."""
    return value * 10.0 ** index
