"""Golden tests of the device's CiA 402 reading (:mod:`simulator.canopen.cia402_device`), from the documents.

Every expected value here is written out from CiA 402-2 (table "command coding", table "state coding",
the FSA's transitions 0-16, objects 6007h, 605Ah, 6041h, 60C2h) and the team's protocol reference
(PROTOCOLS.md §5), not computed from the module under test; nothing comes from motionctl's host tables.
"""

from __future__ import annotations

import pytest

from simulator.canopen.cia402_device import (POWER_ON, TRANSITIONS, AbortConnectionOption, Command, DriveState, Mode,
                                     QuickStopOption, StatusInputs, csp_bits, decode_controlword,
                                     following_error_timed_out, interpolation_period_s, on_abort_connection,
                                     on_command, on_fault, on_fault_reaction_completed,
                                     on_quick_stop_completed, state_of, statusword, target_reached)

S = DriveState
C = Command
ALL_OPTIONS = list(QuickStopOption)


# -- the controlword ----------------------------------------------------------------------------------------
#: Bits 3..0 of the controlword (bit 7 = 0) -> command, row by row of "command coding".
LOW_NIBBLE = {
    # disable voltage: 0 x x 0 x
    0x0: C.DISABLE_VOLTAGE, 0x1: C.DISABLE_VOLTAGE, 0x4: C.DISABLE_VOLTAGE, 0x5: C.DISABLE_VOLTAGE,
    0x8: C.DISABLE_VOLTAGE, 0x9: C.DISABLE_VOLTAGE, 0xC: C.DISABLE_VOLTAGE, 0xD: C.DISABLE_VOLTAGE,
    # quick stop: 0 x 0 1 x
    0x2: C.QUICK_STOP, 0x3: C.QUICK_STOP, 0xA: C.QUICK_STOP, 0xB: C.QUICK_STOP,
    0x6: C.SHUTDOWN, 0xE: C.SHUTDOWN,                  # 0 x 1 1 0
    0x7: C.SWITCH_ON,                                  # 0 0 1 1 1
    0xF: C.ENABLE_OPERATION,                           # 0 1 1 1 1
}


@pytest.mark.parametrize("low", sorted(LOW_NIBBLE))
def test_every_low_nibble_is_exactly_one_command(low):
    assert decode_controlword(low, 0x00) is LOW_NIBBLE[low]
    # bits 4-6 (operation mode specific), 8 (halt) and 9-15 are not part of the command
    assert decode_controlword(low | 0x0070 | 0xFF00, 0x00) is LOW_NIBBLE[low]


def test_disable_operation_and_switch_on_are_one_bit_pattern():
    assert C.DISABLE_OPERATION is C.SWITCH_ON
    assert decode_controlword(0x07, 0x0F) is C.DISABLE_OPERATION


@pytest.mark.parametrize("word, previous", [(0x80, 0x0F), (0x80, 0x00), (0x8F, 0x0F), (0x86, 0x06),
                                            (0x82, 0x7F)])
def test_a_rising_edge_of_bit_7_is_fault_reset_whatever_bits_0_3_say(word, previous):
    assert decode_controlword(word, previous) is C.FAULT_RESET


@pytest.mark.parametrize("word, previous", [(0x80, 0x80), (0x8F, 0x80), (0x86, 0x8F)])
def test_bit_7_held_high_is_no_command(word, previous):
    """Every row of "command coding" but fault reset has bit 7 = 0; a held bit 7 is none of them."""
    assert decode_controlword(word, previous) is None


# -- the statusword -----------------------------------------------------------------------------------------
#: PROTOCOLS.md §5 / table "state coding": (mask, value) per state.
CODING = {
    S.NOT_READY_TO_SWITCH_ON: (0x4F, 0x00),
    S.SWITCH_ON_DISABLED: (0x4F, 0x40),
    S.READY_TO_SWITCH_ON: (0x6F, 0x21),
    S.SWITCHED_ON: (0x6F, 0x23),
    S.OPERATION_ENABLED: (0x6F, 0x27),
    S.QUICK_STOP_ACTIVE: (0x6F, 0x07),
    S.FAULT_REACTION_ACTIVE: (0x4F, 0x0F),
    S.FAULT: (0x4F, 0x08),
}
INPUTS = [StatusInputs(), StatusInputs(voltage_enabled=True), StatusInputs(warning=True, remote=False),
          StatusInputs(voltage_enabled=True, warning=True, target_reached=True, mode_bits=0x3000)]


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("inputs", INPUTS, ids=range(len(INPUTS)))
def test_statusword_shows_the_state_whatever_else_it_says(state, inputs):
    mask, value = CODING[state]
    word = statusword(state, inputs)
    assert word & mask == value
    assert state_of(word) is state
    assert bool(word & 0x10) is inputs.voltage_enabled        # bit 4
    assert bool(word & 0x80) is inputs.warning                # bit 7
    assert bool(word & 0x200) is inputs.remote                # bit 9
    assert bool(word & 0x400) is inputs.target_reached        # bit 10


@pytest.mark.parametrize("word, state", [
    (0x0240, S.SWITCH_ON_DISABLED), (0x0231, S.READY_TO_SWITCH_ON), (0x0233, S.SWITCHED_ON),
    (0x1237, S.OPERATION_ENABLED), (0x0217, S.QUICK_STOP_ACTIVE), (0x0617, S.QUICK_STOP_ACTIVE),
    (0x0218, S.FAULT), (0x021F, S.FAULT_REACTION_ACTIVE), (0x0000, S.NOT_READY_TO_SWITCH_ON),
    (0x0297, S.QUICK_STOP_ACTIVE),            # with a warning
])
def test_golden_statuswords_read_back(word, state):
    assert state_of(word) is state


def test_statuswords_of_this_drive_on_the_wire():
    """Remote always; voltage from ready to switch on on; csp bit 12 while it follows the target."""
    assert statusword(S.SWITCH_ON_DISABLED) == 0x0240
    assert statusword(S.READY_TO_SWITCH_ON, StatusInputs(voltage_enabled=True)) == 0x0231
    assert statusword(S.SWITCHED_ON, StatusInputs(voltage_enabled=True)) == 0x0233
    enabled = csp_bits(S.OPERATION_ENABLED, Mode.CYCLIC_SYNC_POSITION, following_error=False)
    assert statusword(S.OPERATION_ENABLED, StatusInputs(voltage_enabled=True, mode_bits=enabled)) == 0x1237
    assert statusword(S.QUICK_STOP_ACTIVE, StatusInputs(voltage_enabled=True)) == 0x0217
    assert statusword(S.QUICK_STOP_ACTIVE, StatusInputs(voltage_enabled=True, target_reached=True)) == 0x0617
    assert statusword(S.FAULT, StatusInputs(voltage_enabled=True)) == 0x0218


def test_csp_bits_12_and_13():
    assert csp_bits(S.OPERATION_ENABLED, Mode.CYCLIC_SYNC_POSITION, False) == 0x1000
    assert csp_bits(S.OPERATION_ENABLED, Mode.CYCLIC_SYNC_POSITION, True) == 0x3000
    assert csp_bits(S.SWITCHED_ON, Mode.CYCLIC_SYNC_POSITION, False) == 0      # target ignored
    assert csp_bits(S.OPERATION_ENABLED, Mode.NO_MODE, True) == 0              # not csp's bits


def test_following_error_bit_needs_the_timeout():
    """6066h: the following error is one outside the window for longer than the time out."""
    assert not following_error_timed_out(0.009, 10)
    assert following_error_timed_out(0.010, 10)
    assert following_error_timed_out(0.0, 0)


@pytest.mark.parametrize("option", ALL_OPTIONS)
def test_target_reached_in_quick_stop_only_once_halted_with_options_5_to_8(option):
    assert target_reached(S.QUICK_STOP_ACTIVE, option, halted=True) is (option >= 5)
    assert not target_reached(S.QUICK_STOP_ACTIVE, option, halted=False)
    assert not target_reached(S.OPERATION_ENABLED, option, halted=True)      # csp: bit 10 reserved


# -- the FSA ------------------------------------------------------------------------------------------------
#: (state, controlword, quick stop option) -> (transition numbers, target); controlword after 0x00.
GOLDEN_TRANSITIONS = [
    (S.SWITCH_ON_DISABLED, 0x06, 2, (2,), S.READY_TO_SWITCH_ON),
    (S.READY_TO_SWITCH_ON, 0x07, 2, (3,), S.SWITCHED_ON),
    (S.READY_TO_SWITCH_ON, 0x0F, 2, (3, 4), S.OPERATION_ENABLED),       # switch on + enable operation
    (S.SWITCHED_ON, 0x0F, 2, (4,), S.OPERATION_ENABLED),
    (S.OPERATION_ENABLED, 0x07, 2, (5,), S.SWITCHED_ON),                # disable operation
    (S.SWITCHED_ON, 0x06, 2, (6,), S.READY_TO_SWITCH_ON),
    (S.READY_TO_SWITCH_ON, 0x00, 2, (7,), S.SWITCH_ON_DISABLED),
    (S.READY_TO_SWITCH_ON, 0x02, 2, (7,), S.SWITCH_ON_DISABLED),
    (S.OPERATION_ENABLED, 0x06, 2, (8,), S.READY_TO_SWITCH_ON),
    (S.OPERATION_ENABLED, 0x00, 2, (9,), S.SWITCH_ON_DISABLED),
    (S.SWITCHED_ON, 0x00, 2, (10,), S.SWITCH_ON_DISABLED),
    (S.SWITCHED_ON, 0x02, 2, (10,), S.SWITCH_ON_DISABLED),
    (S.OPERATION_ENABLED, 0x02, 2, (11,), S.QUICK_STOP_ACTIVE),
    (S.QUICK_STOP_ACTIVE, 0x00, 2, (12,), S.SWITCH_ON_DISABLED),
    (S.QUICK_STOP_ACTIVE, 0x00, 6, (12,), S.SWITCH_ON_DISABLED),        # the way out with 5-8
    (S.FAULT, 0x80, 2, (15,), S.SWITCH_ON_DISABLED),
    (S.QUICK_STOP_ACTIVE, 0x0F, 5, (16,), S.OPERATION_ENABLED),
    (S.QUICK_STOP_ACTIVE, 0x0F, 6, (16,), S.OPERATION_ENABLED),
    (S.QUICK_STOP_ACTIVE, 0x0F, 7, (16,), S.OPERATION_ENABLED),
    (S.QUICK_STOP_ACTIVE, 0x0F, 8, (16,), S.OPERATION_ENABLED),
]


@pytest.mark.parametrize("state, word, option, numbers, target", GOLDEN_TRANSITIONS)
def test_commanded_transitions(state, word, option, numbers, target):
    transition = on_command(state, decode_controlword(word, 0x00), QuickStopOption(option))
    assert transition is not None and (transition.numbers, transition.target) == (numbers, target)


#: Commands a state ignores (no transition): a sample across the table.
IGNORED = [
    (S.SWITCH_ON_DISABLED, 0x0F, 2), (S.SWITCH_ON_DISABLED, 0x07, 2), (S.SWITCH_ON_DISABLED, 0x02, 2),
    (S.SWITCH_ON_DISABLED, 0x00, 2), (S.READY_TO_SWITCH_ON, 0x06, 2), (S.SWITCHED_ON, 0x07, 2),
    (S.OPERATION_ENABLED, 0x0F, 2), (S.QUICK_STOP_ACTIVE, 0x02, 6), (S.QUICK_STOP_ACTIVE, 0x06, 6),
    (S.QUICK_STOP_ACTIVE, 0x07, 6), (S.FAULT, 0x06, 2), (S.FAULT, 0x0F, 2), (S.FAULT, 0x00, 2),
    (S.FAULT_REACTION_ACTIVE, 0x80, 2), (S.FAULT_REACTION_ACTIVE, 0x00, 2),
    (S.NOT_READY_TO_SWITCH_ON, 0x06, 2),
] + [(S.QUICK_STOP_ACTIVE, 0x0F, option) for option in range(0, 5)]          # 16 only with options 5-8


@pytest.mark.parametrize("state, word, option", IGNORED)
def test_ignored_commands(state, word, option):
    assert on_command(state, decode_controlword(word, 0x00), QuickStopOption(option)) is None


def test_the_table_has_exactly_the_commanded_transitions():
    numbers = sorted({n for t in TRANSITIONS.values() for n in t.numbers})
    assert numbers == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16]      # 0, 1, 13, 14 happen on their own


@pytest.mark.parametrize("state", [S.OPERATION_ENABLED, S.SWITCHED_ON, S.READY_TO_SWITCH_ON,
                                   S.QUICK_STOP_ACTIVE])
def test_fault_reset_outside_fault_does_nothing(state):
    assert on_command(state, decode_controlword(0x80, 0x0F), QuickStopOption.QUICK_STOP_RAMP) is None


def test_fault_reset_only_on_a_rising_edge():
    """A master that holds bit 7 gets one reset; the next needs bit 7 to fall and rise again."""
    option = QuickStopOption.QUICK_STOP_RAMP
    assert on_command(S.FAULT, decode_controlword(0x80, 0x80), option) is None      # held
    assert on_command(S.FAULT, decode_controlword(0x00, 0x80), option) is None      # fell: disable voltage
    transition = on_command(S.FAULT, decode_controlword(0x80, 0x00), option)        # rose
    assert transition is not None and transition.numbers == (15,)


def test_power_on_is_transitions_0_and_1():
    assert [(t.numbers, t.target) for t in POWER_ON] == [((0,), S.NOT_READY_TO_SWITCH_ON),
                                                         ((1,), S.SWITCH_ON_DISABLED)]


@pytest.mark.parametrize("state", list(S))
def test_a_fault_is_transition_13_from_any_state_then_14(state):
    transition = on_fault(state)
    if state in (S.FAULT_REACTION_ACTIVE, S.FAULT):
        assert transition is None
    else:
        assert transition is not None
        assert (transition.numbers, transition.target) == ((13,), S.FAULT_REACTION_ACTIVE)
    done = on_fault_reaction_completed(S.FAULT_REACTION_ACTIVE)
    assert done is not None and (done.numbers, done.target) == ((14,), S.FAULT)
    assert on_fault_reaction_completed(S.FAULT) is None


@pytest.mark.parametrize("option", ALL_OPTIONS)
def test_quick_stop_completed_is_transition_12_unless_the_option_stays(option):
    transition = on_quick_stop_completed(S.QUICK_STOP_ACTIVE, option)
    if option in (5, 6, 7, 8):
        assert transition is None
    else:
        assert transition is not None
        assert (transition.numbers, transition.target) == ((12,), S.SWITCH_ON_DISABLED)


#: 6007h: (state, option) -> target (None: no transition).  Options 2/3 act as the commands they name.
ABORT = [
    (S.OPERATION_ENABLED, 0, None), (S.OPERATION_ENABLED, 1, S.FAULT_REACTION_ACTIVE),
    (S.OPERATION_ENABLED, 2, S.SWITCH_ON_DISABLED), (S.OPERATION_ENABLED, 3, S.QUICK_STOP_ACTIVE),
    (S.SWITCHED_ON, 2, S.SWITCH_ON_DISABLED), (S.SWITCHED_ON, 3, S.SWITCH_ON_DISABLED),
    (S.READY_TO_SWITCH_ON, 3, S.SWITCH_ON_DISABLED), (S.SWITCH_ON_DISABLED, 2, None),
    (S.SWITCH_ON_DISABLED, 3, None), (S.SWITCH_ON_DISABLED, 1, S.FAULT_REACTION_ACTIVE),
    (S.QUICK_STOP_ACTIVE, 2, S.SWITCH_ON_DISABLED), (S.QUICK_STOP_ACTIVE, 3, None), (S.FAULT, 1, None),
]


@pytest.mark.parametrize("state, option, target", ABORT)
def test_abort_connection_option_reactions(state, option, target):
    transition = on_abort_connection(state, AbortConnectionOption(option),
                                     QuickStopOption.QUICK_STOP_RAMP_STAY)
    assert (transition.target if transition else None) is target


def test_option_codes_are_the_standards_values():
    assert [int(o) for o in QuickStopOption] == list(range(9))
    assert QuickStopOption.QUICK_STOP_RAMP == 2                                 # the CiA 402 default
    assert [int(o) for o in AbortConnectionOption] == [0, 1, 2, 3]
    assert (Mode.NO_MODE, Mode.CYCLIC_SYNC_POSITION) == (0, 8)


@pytest.mark.parametrize("value, index, seconds", [(1, -3, 0.001), (2, -3, 0.002), (20, -3, 0.020),
                                                   (5, -4, 0.0005), (250, -6, 0.00025), (1, 0, 1.0)])
def test_interpolation_period_is_value_times_ten_to_the_index(value, index, seconds):
    assert interpolation_period_s(value, index) == pytest.approx(seconds)
