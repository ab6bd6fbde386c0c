"""What a robot controller that keeps its own clock is answered every cycle: the servo loop's setpoints,
queued ahead (pure logic, shared by the KUKA RSI and UR RTDE backends).

Such a controller is the clock: it sends its state every cycle (KUKA RSI 4 or 12 ms, UR 2 ms, a UR CB3
8 ms) and expects an answer within the cycle.  Answered from the servo loop, one scheduling hiccup of the
host ends the session (a UR program whose registers go stale after 10 cycles, a KUKA counting late
answers; measured: 1 real-time rehearsal in 4-6 of ``ur_rtde_push_in`` on a two-core machine).  So the
servo loop streams setpoints ``lookahead_ticks`` ahead into this queue, tagged with the tick they are
for, and the driver's receiver thread answers every controller cycle from it the moment the cycle
arrives (the same contract as serial protocol 1.1's device queue).  A host stall shorter than the
lookahead changes nothing.  Controller cycles are tied to servo ticks when streaming starts, and again
whenever the arm holds still (the two clocks drift apart between moves); a controller whose cycle is k
ticks long plays every k-th tick.

A longer stall leaves the queue dry: the arm is brought to rest along its last direction within its
acceleration limits (a controller given the same target twice stops dead, which at speed is a jump its
own monitoring punishes), a fault says so, and then the answers say motionctl is gone (``alive`` false:
a UR program's counter stops and the program ends on its own).
"""

from __future__ import annotations

import math

#: The dry stop's fault, in words.
DRY = ("setpoints stopped arriving (the host fell more than the lookahead behind): the driver brought the arm "
       "to rest along its last direction")


class CycleQueue:
    """Setpoints by servo tick in; one answer per controller cycle out: the values, and whether motionctl
    is still there (``alive``); :attr:`sequence` is the answered setpoint's (-1 for none)."""

    def __init__(self, lookahead_ticks: int, ticks_per_cycle: int, amax_per_cycle: list[float]) -> None:
        self.lookahead = lookahead_ticks
        self.k = ticks_per_cycle
        #: Each axis' acceleration limit in its units per cycle^2 (the dry stop's deceleration).
        self.amax = amax_per_cycle
        self._queue: dict[int, tuple[int, list[float]]] = {}
        self.sequence = -1
        self._newest: int | None = None
        self._map: tuple[int, int] | None = None      # (controller cycle, servo tick) tied together
        self._held: list[float] = []
        self._before: list[float] = []
        self._dry: tuple[list[float], int, int] | None = None     # (velocity per cycle, cycles, done)
        self._quiet = 0                                # cycles answered since the servo loop last wrote
        self.fault: str | None = None

    @property
    def held(self) -> list[float]:
        """What was answered last (where the controller now heads)."""
        return self._held

    def start(self, here: list[float]) -> None:
        """A session (re)starts with the arm at ``here``: hold it until the queue has ticks to play."""
        self._held, self._before = list(here), list(here)
        self._queue.clear()
        self._newest, self._map, self._dry, self.fault, self._quiet, self.sequence = None, None, None, None, 0, -1

    def retie(self) -> None:
        """Tie the next cycle to the servo loop's clock afresh (on enable)."""
        self._map = None

    def clear_fault(self) -> None:
        """After a reset: a dry stop is over and forgotten."""
        self._dry, self.fault = None, None

    def put(self, tick: int, targets: list[float], sequence: int = -1) -> None:
        self._queue[tick] = (sequence, list(targets))
        if self._newest is None or tick > self._newest:
            self._newest = tick
        self._quiet = 0
        if len(self._queue) > 8 * self.lookahead:      # nothing plays them while the program holds
            for old in [t for t in self._queue if t < self._newest - 4 * self.lookahead]:
                del self._queue[old]

    def answer(self, cycle: int) -> tuple[list[float], bool]:
        """The joint targets for controller cycle ``cycle``, and whether the counter advances."""
        self._quiet += 1
        if self._dry is not None:
            return self._dry_step()
        if self._newest is None:
            return self._held, True
        if self._map is None:
            self._map = (cycle, self._newest - self.lookahead)
        tick = self._map[1] + self.k * (cycle - self._map[0] + 1)
        if len(self._queue) > 2 * self.lookahead and self._at_rest():
            # The host's clock ran ahead of the controller's while the arm holds still: tie them again.
            self._map = (cycle, self._newest - self.lookahead)
            tick = self._map[1] + self.k
        for stale in [t for t in self._queue if t < tick]:
            del self._queue[stale]
        if tick in self._queue:
            self.sequence, targets = self._queue[tick]
            return self._go(targets), True
        later = [t for t in self._queue if t > tick]
        if later:
            # A tick the loop skipped (a missed deadline), or one it never streamed just after streaming
            # began: on towards the next one queued, a step of the way per cycle (holding would jerk).
            after = min(later)
            share = self.k / (after - tick + self.k)
            self.sequence, targets = self._queue[after]
            return self._go([h + (c - h) * share for h, c in zip(self._held, targets)]), True
        if self._at_rest():
            # The controller's clock ran ahead of the host's while the arm holds still: tie them again; the
            # counter advances only while the servo loop is still writing.
            self._map = (cycle, self._newest - self.lookahead)
            return self._held, self._quiet * self.k <= self.lookahead
        return self._begin_dry_stop()

    def _go(self, targets: list[float]) -> list[float]:
        self._before, self._held = self._held, list(targets)
        return self._held

    def _at_rest(self) -> bool:
        """The arm was not moving and nothing queued moves it (so re-tying the clocks changes nothing)."""
        return self._held == self._before and all(t == self._held for _, t in self._queue.values())

    def _begin_dry_stop(self) -> tuple[list[float], bool]:
        self.sequence = -1
        velocity = [h - b for h, b in zip(self._held, self._before)]
        cycles = max([math.ceil(abs(v) / a) if a > 0 else 0 for v, a in zip(velocity, self.amax)] + [1])
        self._dry = (velocity, cycles, 0)
        self.fault = DRY
        return self._dry_step()

    def _dry_step(self) -> tuple[list[float], bool]:
        velocity, cycles, done = self._dry
        if done >= cycles:
            return self._held, False          # at rest: the counter stops, the program ends on its own
        done += 1
        self._dry = (velocity, cycles, done)
        scale = max(0.0, 1.0 - done / cycles)
        return self._go([h + v * scale for h, v in zip(self._held, velocity)]), True
