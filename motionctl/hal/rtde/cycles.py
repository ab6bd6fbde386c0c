"""What a UR controller is answered every cycle: the servo loop's setpoints, queued ahead (pure logic).

The controller is the clock: it publishes its state every cycle (2 ms; 8 ms on a CB3) and its control
program reads the input registers once per cycle.  Written from the servo loop, one scheduling hiccup of
the host longer than ten cycles (20 ms, the program's stale limit) ended the program, and a busy host
does that (measured: 1 real-time rehearsal in 4-6 of ``ur_rtde_push_in`` on a two-core machine).  So, as
for KUKA RSI, the servo loop streams setpoints ``lookahead_ticks`` ahead into this queue, tagged with the
tick they are for, and the driver's receiver thread answers every controller cycle from it the moment
the cycle's state arrives.  A host stall shorter than the lookahead changes nothing.

A longer one leaves the queue dry: the arm is brought to rest along its last direction within its
acceleration limits (holding the last target would stop it dead), a fault says so, and then the counter
stops: the program sees its registers go stale and ends, as it does when motionctl is gone.
"""

from __future__ import annotations

import math

DRY = ("setpoints stopped arriving (the host fell more than the lookahead behind): the driver brought the arm "
       "to rest along its last direction")


class CycleQueue:
    """Setpoints by servo tick in; one answer per controller cycle out (joint targets, and whether the
    counter advances, i.e. whether motionctl is still there)."""

    def __init__(self, lookahead_ticks: int, ticks_per_cycle: int, amax_per_cycle: list[float]) -> None:
        self.lookahead = lookahead_ticks
        self.k = ticks_per_cycle
        #: Each joint's acceleration limit in rad per cycle^2 (the dry stop's deceleration).
        self.amax = amax_per_cycle
        self._queue: dict[int, list[float]] = {}
        self._newest: int | None = None
        self._map: tuple[int, int] | None = None      # (controller cycle, servo tick) tied together
        self._held: list[float] = []
        self._before: list[float] = []
        self._dry: tuple[list[float], int, int] | None = None     # (velocity per cycle, cycles, done)
        self._quiet = 0                                # cycles answered since the servo loop last wrote
        self.fault: str | None = None

    def start(self, here: list[float]) -> None:
        """Streaming (re)starts with the arm at ``here``: hold it until the queue has ticks to play."""
        self._held, self._before = list(here), list(here)
        self._queue.clear()
        self._newest, self._map, self._dry, self.fault, self._quiet = None, None, None, None, 0

    def put(self, tick: int, targets: list[float]) -> None:
        self._queue[tick] = list(targets)
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
            return self._go(self._queue[tick]), True
        later = [t for t in self._queue if t > tick]
        if later:
            # A tick the loop skipped (a missed deadline), or one it never streamed just after streaming
            # began: on towards the next one queued, a step of the way per cycle (holding would jerk).
            after = min(later)
            share = self.k / (after - tick + self.k)
            return self._go([h + (c - h) * share for h, c in zip(self._held, self._queue[after])]), True
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
        return self._held == self._before and all(t == self._held for t in self._queue.values())

    def _begin_dry_stop(self) -> tuple[list[float], bool]:
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
