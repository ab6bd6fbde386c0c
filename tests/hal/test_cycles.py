"""CycleQueue: a controller's cycles answered from the servo loop's queued setpoints (pure logic)."""

from __future__ import annotations

import pytest

from motionctl.hal.cycles import DRY, CycleQueue


def test_each_cycle_plays_the_tick_it_is_due_at_every_kth_tick_lookahead_behind():
    queue = CycleQueue(lookahead_ticks=6, ticks_per_cycle=2, amax_per_cycle=[1.0])
    queue.start([0.0])
    for tick in range(10):                          # the servo loop streams ticks 0..9 ahead
        queue.put(tick, [float(tick)], sequence=100 + tick)
    # The first cycle is tied to the newest tick less the lookahead (3), and plays k = 2 ticks later.
    assert queue.answer(50) == ([5.0], True) and queue.sequence == 105
    queue.put(10, [10.0], 110)
    queue.put(11, [11.0], 111)
    assert queue.answer(51) == ([7.0], True)        # every other tick
    # A tick the loop skipped: on towards the next one queued, a step of the way per cycle.
    queue.put(13, [13.0], 113)
    queue.answer(52)                                # tick 9
    assert queue.answer(53) == ([11.0], True)
    targets, alive = queue.answer(54)               # tick 13 queued, 12 skipped... 13 is due: exact
    assert targets == [13.0] and alive


def test_a_dry_queue_stops_along_the_last_direction_within_the_acceleration_limit():
    queue = CycleQueue(lookahead_ticks=2, ticks_per_cycle=1, amax_per_cycle=[0.5])
    queue.start([0.0])
    for tick in range(6):
        queue.put(tick, [2.0 * tick])               # 2 units per cycle
    played = [queue.answer(c)[0][0] for c in range(20)]
    assert queue.fault == DRY
    steps = [b - a for a, b in zip(played, played[1:])]
    assert all(abs(b - a) <= 0.5 + 1e-9 for a, b in zip(steps, steps[1:]))     # never more than amax
    assert steps[-1] == 0.0 and all(s >= 0 for s in steps)                      # at rest, never back
    assert queue.answer(21)[1] is False              # then motionctl reads as gone (a UR program ends)


def test_at_rest_the_clocks_are_tied_again_and_a_silent_host_stops_the_counter():
    queue = CycleQueue(lookahead_ticks=4, ticks_per_cycle=1, amax_per_cycle=[1.0])
    queue.start([1.0])
    answers = []
    for tick in range(8):                           # the host streams a still arm, a tick per cycle
        queue.put(tick, [1.0])
        answers.append(queue.answer(tick))
    assert all(a == ([1.0], True) for a in answers)
    # The host goes quiet while the arm holds still: held and alive for the lookahead (4 cycles), then the
    # answers say motionctl is gone; no fault (nothing was moving).
    after = [queue.answer(c) for c in range(8, 14)]
    assert [a[0] for a in after] == [[1.0]] * 6
    assert [a[1] for a in after] == [True, True, True, False, False, False] and queue.fault is None


@pytest.mark.parametrize("k", [1, 2, 4])
def test_a_steady_stream_plays_every_kth_tick_exactly(k):
    queue = CycleQueue(lookahead_ticks=8, ticks_per_cycle=k, amax_per_cycle=[1.0])
    queue.start([0.0])
    tick = 0
    played = []
    for cycle in range(30):
        for _ in range(k):                          # the servo loop writes k ticks per controller cycle
            queue.put(tick, [float(tick)])
            tick += 1
        played.append(queue.answer(cycle)[0][0])
    later = played[10:]
    assert all(b - a == k for a, b in zip(later, later[1:]))
