"""A servo clock with absolute deadlines on the monotonic clock.

Each tick's deadline is ``start + k * period`` (integer nanoseconds), never "now + period", so lateness in
one cycle does not push every later cycle back: there is no accumulated drift.  The wait sleeps until
shortly before the deadline and spins the rest (``time.sleep`` alone overshoots by up to a scheduler
quantum).  Lateness of every tick is measured and kept for the loop-timing statistics in takes.

Also here: what keeps the servo thread on time in a Python process (the collector's pauses, the
thread's scheduling priority).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

SPIN_NS = 300_000      # sleep until this close to the deadline, then spin


#: Lateness histogram: 1 us bins up to 100 ms (later wakes land in the last bin; ``max_late_ns`` is exact).
HIST_BINS = 100_000


@dataclass
class JitterStats:
    """Lateness of every tick (how long after its absolute deadline the loop woke), and missed deadlines.

    Percentiles come from a 1 us histogram rather than a list of every sample, so memory stays constant
    over a whole shoot day in the terminal UI (a list grows by 250-1000 entries a second).  ``recent``
    holds the last second or so for live displays.
    """

    ticks: int = 0
    late_ticks: int = 0          # woke more than half a period late
    max_late_ns: int = 0
    total_late_ns: int = 0
    overruns: int = 0            # deadlines missed entirely (the tick was skipped)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS, dtype=np.int64))
    recent: deque = field(default_factory=lambda: deque(maxlen=1000))

    def add(self, late_ns: int, period_ns: int) -> None:
        self.ticks += 1
        self.total_late_ns += late_ns
        self.max_late_ns = max(self.max_late_ns, late_ns)
        self.histogram[min(max(late_ns, 0) // 1000, HIST_BINS - 1)] += 1
        self.recent.append(late_ns)
        if late_ns > period_ns // 2:
            self.late_ticks += 1

    @property
    def mean_late_us(self) -> float:
        return self.total_late_ns / self.ticks / 1000 if self.ticks else 0.0

    def percentile_us(self, q: float) -> float:
        """The q-th percentile of lateness, to the 1 us bin (the bin's upper edge: never flattering)."""
        if not self.ticks:
            return 0.0
        rank = min(self.ticks - 1, int(q / 100.0 * self.ticks))
        index = int(np.searchsorted(np.cumsum(self.histogram), rank + 1))
        if index >= HIST_BINS - 1:
            return self.max_late_ns / 1000.0
        return min(float(index + 1), self.max_late_ns / 1000.0)


class ServoClock:
    """Ticks at ``rate_hz`` from the moment :meth:`start` is called."""

    def __init__(self, rate_hz: int, *, clock=time.monotonic_ns, sleep=time.sleep) -> None:
        self.rate_hz = rate_hz
        self.period_ns = 1_000_000_000 // rate_hz
        self._clock = clock
        self._sleep = sleep
        self.start_ns = 0
        self.tick = 0
        self.last_missed = 0         # deadlines skipped just before the current tick
        self.stats = JitterStats()

    def start(self, at_ns: int | None = None) -> int:
        self.start_ns = self._clock() if at_ns is None else at_ns
        self.tick = 0
        return self.start_ns

    def deadline(self, tick: int) -> int:
        return self.start_ns + tick * self.period_ns

    def wait_next(self) -> int:
        """Block until the next tick's deadline; returns how late we woke (ns).

        If whole periods were missed, the clock stays on its grid: the tick count jumps forward and the
        overrun is counted, rather than running late ticks back to back.
        """
        self.tick += 1
        target = self.deadline(self.tick)
        now = self._clock()
        if now - target > self.period_ns:
            missed = (now - target) // self.period_ns
            self.stats.overruns += int(missed)
            self.last_missed = int(missed)
            self.tick += int(missed)
            target = self.deadline(self.tick)
        else:
            self.last_missed = 0
        remaining = target - now
        if remaining > SPIN_NS:
            self._sleep((remaining - SPIN_NS) / 1e9)
        while (now := self._clock()) < target:
            pass
        late = now - target
        self.stats.add(late, self.period_ns)
        return late


def quiet_garbage_collector() -> None:
    """Keep the cyclic garbage collector's pauses short: they hold the GIL and stall the servo thread.

    A full collection walks every tracked object in the process; with roboticstoolbox, numpy and a
    Textual UI loaded that took 80-95 ms here, every couple of seconds, far past the drives' setpoint
    watchdog.  Freezing what exists now (modules, rig models, plans) moves it out of the collector's
    sight, so later collections only walk objects made since.  Call again after loading big things.
    """
    gc.collect()
    gc.freeze()


#: How much the servo thread raises its scheduling priority (nice steps), where the system allows it.
SERVO_PRIORITY_BOOST = 10


def raise_thread_priority() -> None:
    """Put the calling thread ahead of the rest of the machine for the CPU, where allowed.

    On a busy two-core host a scheduler time slice (about 3 ms) is most of a 250 Hz period; a dry run
    next to a test runner and a simulator once stalled for 20 ms.  Linux applies a nice value given to a
    thread id to that thread alone.  It needs root, CAP_SYS_NICE or RLIMIT_NICE; without them nothing
    changes.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -SERVO_PRIORITY_BOOST)
    except (OSError, AttributeError):
        pass
