"""CiA 402 state machine: statusword decoding, the transition table, paths, fault-reset edge, helpers."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.errors import InputError, MotionctlError, ProtocolError
from motionctl.hal.canopen import cia402
from motionctl.hal.canopen.cia402 import (AbortConnectionOption, Command, DriveState, Mode, after_automatic, commands_in,
                                  controlword_for, fault_occurred, next_state, on_abort_connection, path_to,
                                  quick_stop_completed, state_from_statusword, statusword_for)

S = DriveState
SETTINGS = settings(derandomize=True, database=None, max_examples=200, deadline=None)
WORDS = st.integers(min_value=0, max_value=0xFFFF)


# --- statusword ----------------------------------------------------------------------------------

# The statusword values of CiA 402-2 with every don't-care bit clear (mask 0x4F or 0x6F).
EXPECTED_PATTERNS = {
    S.NOT_READY_TO_SWITCH_ON: (0x4F, 0x00),
    S.SWITCH_ON_DISABLED: (0x4F, 0x40),
    S.READY_TO_SWITCH_ON: (0x6F, 0x21),
    S.SWITCHED_ON: (0x6F, 0x23),
    S.OPERATION_ENABLED: (0x6F, 0x27),
    S.QUICK_STOP_ACTIVE: (0x6F, 0x07),
    S.FAULT_REACTION_ACTIVE: (0x4F, 0x0F),
    S.FAULT: (0x4F, 0x08),
}


def test_patterns_are_the_standard_ones() -> None:
    assert cia402.STATE_PATTERNS == EXPECTED_PATTERNS


@pytest.mark.parametrize("state", list(S))
@SETTINGS
@given(noise=WORDS)
def test_statusword_decodes_with_any_dont_care_bits(state: DriveState, noise: int) -> None:
    mask, value = EXPECTED_PATTERNS[state]
    word = (noise & ~mask & 0xFFFF) | value
    assert state_from_statusword(word) is state


@SETTINGS
@given(word=WORDS)
def test_every_statusword_decodes_to_at_most_one_state(word: int) -> None:
    matches = [s for s, (mask, value) in EXPECTED_PATTERNS.items() if word & mask == value]
    assert len(matches) <= 1
    if matches:
        assert state_from_statusword(word) is matches[0]
    else:
        with pytest.raises(ProtocolError, match="matches no CiA 402"):
            state_from_statusword(word)


def test_undefined_statusword_is_refused() -> None:
    with pytest.raises(MotionctlError):
        state_from_statusword(0x0001)      # ready-to-switch-on bit without quick stop: no state
    with pytest.raises(ProtocolError):
        state_from_statusword(0x1_0000)


@pytest.mark.parametrize("state", list(S))
def test_statusword_for_round_trips_with_all_flags(state: DriveState) -> None:
    for flags in range(1 << 7):
        kw = dict(zip(("warning", "target_reached", "following_error", "internal_limit",
                       "voltage_enabled", "remote", "drive_follows"),
                      (bool(flags >> i & 1) for i in range(7))))
        word = statusword_for(state, **kw)
        assert state_from_statusword(word) is state
        assert bool(word & 0x0080) == kw["warning"]
        assert bool(word & 0x0400) == kw["target_reached"]
        assert bool(word & 0x2000) == kw["following_error"]
        assert bool(word & 0x0800) == kw["internal_limit"]
        assert bool(word & 0x0010) == kw["voltage_enabled"]
        assert bool(word & 0x0200) == kw["remote"]
        assert bool(word & 0x1000) == kw["drive_follows"]


def test_typical_statuswords() -> None:
    # What common drives report: 0x0250 switch on disabled, 0x0237 operation enabled, 0x0218 fault.
    assert statusword_for(S.SWITCH_ON_DISABLED) == 0x0250
    assert statusword_for(S.OPERATION_ENABLED) == 0x0237
    assert statusword_for(S.FAULT) == 0x0218
    assert statusword_for(S.QUICK_STOP_ACTIVE) == 0x0217


# --- commands and the transition table ----------------------------------------------------------

def test_command_controlwords() -> None:
    assert {c: c.controlword for c in Command} == {
        Command.SHUTDOWN: 0x06, Command.SWITCH_ON: 0x07, Command.ENABLE_OPERATION: 0x0F,
        Command.DISABLE_VOLTAGE: 0x00, Command.QUICK_STOP: 0x02, Command.DISABLE_OPERATION: 0x07,
        Command.FAULT_RESET: 0x80,
    }
    # Every command's own controlword codes it (fault reset only on a rising edge).
    for c in Command:
        assert c in commands_in(c.controlword, 0x00)


def test_command_coding_ignores_dont_care_bits() -> None:
    assert commands_in(0x0E, 0) == {Command.SHUTDOWN}                # bit 3 is don't care
    assert commands_in(0x0D, 0) == {Command.DISABLE_VOLTAGE}         # bit 1 low
    assert commands_in(0x0B, 0) == {Command.QUICK_STOP}              # bit 2 low, bit 1 high
    assert commands_in(0x07, 0) == {Command.SWITCH_ON, Command.DISABLE_OPERATION}
    assert commands_in(0x010F, 0) == {Command.ENABLE_OPERATION}      # halt bit 8 is not state control
    assert commands_in(0x8F, 0x0F) == {Command.FAULT_RESET}          # rising edge
    assert commands_in(0x8F, 0x8F) == frozenset()                    # bit 7 held high: no command


def test_transition_table_is_cia402() -> None:
    table = {(s.name, c.name): t.name for (s, c), t in cia402.TRANSITIONS.items()}
    assert table == {
        ("SWITCH_ON_DISABLED", "SHUTDOWN"): "READY_TO_SWITCH_ON",        # 2
        ("READY_TO_SWITCH_ON", "SWITCH_ON"): "SWITCHED_ON",              # 3
        ("SWITCHED_ON", "ENABLE_OPERATION"): "OPERATION_ENABLED",        # 4
        ("OPERATION_ENABLED", "DISABLE_OPERATION"): "SWITCHED_ON",       # 5
        ("SWITCHED_ON", "SHUTDOWN"): "READY_TO_SWITCH_ON",               # 6
        ("READY_TO_SWITCH_ON", "DISABLE_VOLTAGE"): "SWITCH_ON_DISABLED", # 7
        ("READY_TO_SWITCH_ON", "QUICK_STOP"): "SWITCH_ON_DISABLED",      # 7
        ("OPERATION_ENABLED", "SHUTDOWN"): "READY_TO_SWITCH_ON",         # 8
        ("OPERATION_ENABLED", "DISABLE_VOLTAGE"): "SWITCH_ON_DISABLED",  # 9
        ("SWITCHED_ON", "DISABLE_VOLTAGE"): "SWITCH_ON_DISABLED",        # 10
        ("SWITCHED_ON", "QUICK_STOP"): "SWITCH_ON_DISABLED",             # 10
        ("OPERATION_ENABLED", "QUICK_STOP"): "QUICK_STOP_ACTIVE",        # 11
        ("QUICK_STOP_ACTIVE", "DISABLE_VOLTAGE"): "SWITCH_ON_DISABLED",  # 12
        ("FAULT", "FAULT_RESET"): "SWITCH_ON_DISABLED",                  # 15
        ("QUICK_STOP_ACTIVE", "ENABLE_OPERATION"): "OPERATION_ENABLED",  # 16
    }
    assert set(cia402.TRANSITION_NUMBERS) == set(cia402.TRANSITIONS)
    assert sorted(set(cia402.TRANSITION_NUMBERS.values())) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16]


@SETTINGS
@given(state=st.sampled_from(list(S)), cw=WORDS, prev=WORDS, qs=st.integers(-3, 9))
def test_next_state_only_moves_along_the_table(state: DriveState, cw: int, prev: int, qs: int) -> None:
    new = next_state(state, cw, prev, quick_stop_option=qs)
    if new is state:
        return
    legal = {t for (s, _), t in cia402.TRANSITIONS.items() if s is state}
    legal |= {t for (s, _), t in cia402.SWITCH_ON_AND_ENABLE.items() if s is state}
    assert new in legal
    # The command actually coded must be the one the table names for that move.
    coded = commands_in(cw, prev)
    assert any(cia402.TRANSITIONS.get((state, c)) is new or cia402.SWITCH_ON_AND_ENABLE.get((state, c)) is new
               for c in coded)


@SETTINGS
@given(state=st.sampled_from(list(S)), cw=WORDS, prev=WORDS)
def test_at_most_one_outcome_per_controlword(state: DriveState, cw: int, prev: int) -> None:
    # 0x07 codes SWITCH_ON and DISABLE_OPERATION; no state may have entries for both with different targets.
    table = cia402.TRANSITIONS
    targets = {table[(state, c)] for c in commands_in(cw, prev) if (state, c) in table}
    assert len(targets) <= 1


def test_transient_states_ignore_controlwords() -> None:
    for state in (S.NOT_READY_TO_SWITCH_ON, S.FAULT_REACTION_ACTIVE):
        for cw in (0x00, 0x02, 0x06, 0x07, 0x0F, 0x80):
            assert next_state(state, cw, 0x00) is state
    assert after_automatic(S.NOT_READY_TO_SWITCH_ON) is S.SWITCH_ON_DISABLED
    assert after_automatic(S.FAULT_REACTION_ACTIVE) is S.FAULT
    assert after_automatic(S.OPERATION_ENABLED) is S.OPERATION_ENABLED


def test_invalid_commands_are_ignored() -> None:
    assert next_state(S.SWITCH_ON_DISABLED, 0x0F, 0x00) is S.SWITCH_ON_DISABLED   # enable op too early
    assert next_state(S.SWITCH_ON_DISABLED, 0x07, 0x00) is S.SWITCH_ON_DISABLED   # switch on too early
    assert next_state(S.FAULT, 0x06, 0x00) is S.FAULT                             # shutdown in fault
    assert next_state(S.QUICK_STOP_ACTIVE, 0x06, 0x02) is S.QUICK_STOP_ACTIVE     # shutdown in quick stop


def test_switch_on_and_enable_operation_combined() -> None:
    # CiA 402-2: 0x0F in READY_TO_SWITCH_ON is transitions 3 + 4; path_to never relies on it.
    assert next_state(S.READY_TO_SWITCH_ON, 0x0F, 0x06) is S.OPERATION_ENABLED
    assert path_to(S.READY_TO_SWITCH_ON, S.OPERATION_ENABLED) == [Command.SWITCH_ON, Command.ENABLE_OPERATION]


def test_quick_stop_resume_depends_on_option() -> None:
    assert next_state(S.QUICK_STOP_ACTIVE, 0x0F, 0x02, quick_stop_option=2) is S.QUICK_STOP_ACTIVE
    assert next_state(S.QUICK_STOP_ACTIVE, 0x0F, 0x02, quick_stop_option=6) is S.OPERATION_ENABLED
    assert quick_stop_completed(S.QUICK_STOP_ACTIVE, 2) is S.SWITCH_ON_DISABLED
    assert quick_stop_completed(S.QUICK_STOP_ACTIVE, 6) is S.QUICK_STOP_ACTIVE
    resume = path_to(S.QUICK_STOP_ACTIVE, S.OPERATION_ENABLED, quick_stop_option=6)
    assert resume == [Command.ENABLE_OPERATION]


# --- fault reset edge ----------------------------------------------------------------------------

def test_fault_reset_only_on_rising_edge() -> None:
    assert next_state(S.FAULT, 0x80, 0x00) is S.SWITCH_ON_DISABLED      # 0 -> 1
    assert next_state(S.FAULT, 0x80, 0x0F) is S.SWITCH_ON_DISABLED      # from enable op, bit 7 low
    assert next_state(S.FAULT, 0x80, 0x80) is S.FAULT                   # held high: no edge
    assert next_state(S.FAULT, 0x8F, 0x80) is S.FAULT
    assert next_state(S.FAULT, 0x00, 0x80) is S.FAULT                   # falling edge
    assert next_state(S.FAULT_REACTION_ACTIVE, 0x80, 0x00) is S.FAULT_REACTION_ACTIVE


def test_master_holding_fault_reset_cannot_reset_twice() -> None:
    state, prev = S.FAULT, 0x00
    state = next_state(state, 0x80, prev)
    prev = 0x80
    assert state is S.SWITCH_ON_DISABLED
    state = after_automatic(fault_occurred(state))                       # the fault comes back
    assert state is S.FAULT
    assert next_state(state, 0x80, prev) is S.FAULT                     # bit 7 still high: ignored
    assert next_state(state, 0x80, 0x00) is S.SWITCH_ON_DISABLED        # after clearing it: reset


@SETTINGS
@given(words=st.lists(WORDS, min_size=1, max_size=30))
def test_fault_is_left_only_on_a_rising_edge(words: list[int]) -> None:
    state, prev = S.FAULT, 0x00
    for cw in words:
        new = next_state(state, cw, prev)
        if state is S.FAULT and new is not S.FAULT:
            assert new is S.SWITCH_ON_DISABLED
            assert cw & 0x80 and not prev & 0x80
        if state is S.FAULT and cw & 0x80 and not prev & 0x80:
            assert new is S.SWITCH_ON_DISABLED
        state, prev = new, cw


# --- paths, driving a simulated drive ------------------------------------------------------------

class SimDrive:
    """A minimal simulated drive: reacts to controlwords through the table, reports statuswords."""

    def __init__(self, state: DriveState, last_controlword: int = 0x00) -> None:
        self.state = state
        self.last = last_controlword

    def write(self, controlword: int) -> None:
        self.state = next_state(self.state, controlword, self.last)
        self.last = controlword

    def tick(self) -> None:
        self.state = after_automatic(self.state)

    @property
    def statusword(self) -> int:
        return statusword_for(self.state, warning=True, target_reached=True)


@pytest.mark.parametrize("target", [S.OPERATION_ENABLED, S.SWITCH_ON_DISABLED])
@pytest.mark.parametrize("start", list(S))
def test_path_drives_a_simulated_drive_to_target(start: DriveState, target: DriveState) -> None:
    # The master reads the statusword once, sends the whole path, one controlword per cycle.
    drive = SimDrive(start)
    plan = path_to(state_from_statusword(drive.statusword), target)
    drive.tick()
    for command in plan:
        drive.write(command.controlword)
        drive.tick()
    assert state_from_statusword(drive.statusword) is target


@pytest.mark.parametrize("target", [S.OPERATION_ENABLED, S.SWITCH_ON_DISABLED])
@pytest.mark.parametrize("start", list(S))
def test_closed_loop_master_reaches_target(start: DriveState, target: DriveState) -> None:
    # The master re-plans from the reported state every cycle, as the real driver does; the drive
    # needs a cycle to finish its automatic transitions, so commands sent meanwhile are ignored.
    # A FAULT_RESET planned while the drive is still reacting to its fault is ignored, so the master
    # sends it through controlword_for, which makes a fresh rising edge of bit 7.
    drive = SimDrive(start)
    sent: list[int] = []
    for _ in range(12):
        state = state_from_statusword(drive.statusword)
        if state is target:
            break
        plan = path_to(state, target)
        if plan:                                   # empty: the drive gets there on its own
            word = controlword_for(plan[0], drive.last)
            sent.append(word)
            drive.write(word)
        drive.tick()
    assert state_from_statusword(drive.statusword) is target
    assert len(sent) <= 6


def test_master_resends_fault_reset_as_a_new_edge() -> None:
    # The fault is still present for the first two resets: the drive leaves FAULT and faults again.
    drive = SimDrive(S.FAULT)
    persisting = 2
    words: list[int] = []
    for _ in range(20):
        state = state_from_statusword(drive.statusword)
        if state is S.OPERATION_ENABLED:
            break
        word = controlword_for(path_to(state, S.OPERATION_ENABLED)[0], drive.last)
        words.append(word)
        drive.write(word)
        if drive.state is S.SWITCH_ON_DISABLED and persisting:
            persisting -= 1
            drive.state = fault_occurred(drive.state)
        drive.tick()
    assert drive.state is S.OPERATION_ENABLED
    assert words == [0x80, 0x00, 0x80, 0x00, 0x80, 0x06, 0x07, 0x0F]
    assert controlword_for(Command.SHUTDOWN, 0x80) == 0x06


def test_path_examples() -> None:
    C = Command
    assert path_to(S.FAULT, S.OPERATION_ENABLED) == [C.FAULT_RESET, C.SHUTDOWN, C.SWITCH_ON,
                                                     C.ENABLE_OPERATION]
    assert [c.controlword for c in path_to(S.FAULT, S.OPERATION_ENABLED)] == [0x80, 0x06, 0x07, 0x0F]
    assert path_to(S.SWITCH_ON_DISABLED, S.OPERATION_ENABLED) == [C.SHUTDOWN, C.SWITCH_ON,
                                                                  C.ENABLE_OPERATION]
    assert path_to(S.NOT_READY_TO_SWITCH_ON, S.OPERATION_ENABLED) == [C.SHUTDOWN, C.SWITCH_ON,
                                                                      C.ENABLE_OPERATION]
    assert path_to(S.QUICK_STOP_ACTIVE, S.OPERATION_ENABLED) == [C.DISABLE_VOLTAGE, C.SHUTDOWN,
                                                                 C.SWITCH_ON, C.ENABLE_OPERATION]
    assert path_to(S.OPERATION_ENABLED, S.OPERATION_ENABLED) == []
    assert path_to(S.OPERATION_ENABLED, S.SWITCH_ON_DISABLED) == [C.DISABLE_VOLTAGE]
    assert path_to(S.OPERATION_ENABLED, S.SWITCHED_ON) == [C.DISABLE_OPERATION]
    assert path_to(S.READY_TO_SWITCH_ON, S.SWITCH_ON_DISABLED) == [C.DISABLE_VOLTAGE]
    assert path_to(S.FAULT, S.SWITCH_ON_DISABLED) == [C.FAULT_RESET]


def test_unreachable_target() -> None:
    with pytest.raises(InputError, match="no controlword sequence"):
        path_to(S.OPERATION_ENABLED, S.FAULT)


def test_abort_connection_reactions() -> None:
    A = AbortConnectionOption
    assert on_abort_connection(S.OPERATION_ENABLED, AbortConnectionOption.NO_ACTION) is S.OPERATION_ENABLED
    assert on_abort_connection(S.OPERATION_ENABLED, A.FAULT_SIGNAL) is S.FAULT_REACTION_ACTIVE
    assert on_abort_connection(S.OPERATION_ENABLED, A.DISABLE_VOLTAGE) is S.SWITCH_ON_DISABLED
    assert on_abort_connection(S.OPERATION_ENABLED, AbortConnectionOption.QUICK_STOP) is S.QUICK_STOP_ACTIVE
    assert on_abort_connection(S.SWITCHED_ON, AbortConnectionOption.QUICK_STOP) is S.SWITCH_ON_DISABLED
    assert fault_occurred(S.FAULT) is S.FAULT


# --- constants and helpers ------------------------------------------------------------------------

def test_object_indices_and_modes() -> None:
    assert (cia402.CONTROLWORD, cia402.STATUSWORD) == (0x6040, 0x6041)
    assert (cia402.MODES_OF_OPERATION, cia402.MODES_OF_OPERATION_DISPLAY) == (0x6060, 0x6061)
    assert cia402.TARGET_POSITION == 0x607A
    assert (cia402.POSITION_ACTUAL, cia402.VELOCITY_ACTUAL) == (0x6064, 0x606C)
    assert (cia402.FOLLOWING_ERROR_ACTUAL, cia402.FOLLOWING_ERROR_WINDOW,
            cia402.FOLLOWING_ERROR_TIMEOUT) == (0x60F4, 0x6065, 0x6066)
    assert cia402.INTERPOLATION_TIME_PERIOD == 0x60C2
    assert (cia402.QUICK_STOP_OPTION, cia402.ABORT_CONNECTION_OPTION) == (0x605A, 0x6007)
    assert cia402.ERROR_CODE == 0x603F
    assert (cia402.PP, cia402.CSP, cia402.CSV, cia402.CST) == (1, 8, 9, 10)
    assert Mode(8) is Mode.CSP


@pytest.mark.parametrize("seconds, encoded", [
    (0.002, (2, -3)), (0.001, (1, -3)), (0.004, (4, -3)), (0.0005, (5, -4)), (0.01, (1, -2)),
    (0.0025, (25, -4)), (Fraction(1, 250), (4, -3)), (1, (1, 0)), (300, (3, 2)), (0.000125, (125, -6)),
])
def test_interpolation_period(seconds: float, encoded: tuple[int, int]) -> None:
    assert cia402.interpolation_period(seconds) == encoded
    value, exponent = encoded
    exact = Fraction(repr(seconds)) if isinstance(seconds, float) else Fraction(seconds)
    assert cia402.interpolation_seconds(value, exponent) == exact


@pytest.mark.parametrize("seconds", [1 / 300, 0.256, 0.0, -0.002])
def test_interpolation_period_refuses_what_it_cannot_encode(seconds: float) -> None:
    with pytest.raises(InputError):
        cia402.interpolation_period(seconds)
