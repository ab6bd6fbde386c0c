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
from collections.abc import Callable
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
    """Wall time: ticks at ``rate_hz`` from the moment :meth:`start` is called (for hardware, and for the
    operator's real-time rehearsal against simulated drives)."""

    simulated = False

    def __init__(self, rate_hz: int, *, clock=time.monotonic_ns, sleep=time.sleep) -> None:
        self.rate_hz = rate_hz
        self.period_ns = 1_000_000_000 // rate_hz
        self._clock = clock
        self._sleep = sleep
        self.start_ns = 0
        self.tick = 0
        self.last_missed = 0         # deadlines skipped just before the current tick
        self.stats = JitterStats()

    def now_ns(self) -> int:
        """The time every part of a run reads (watchdogs, timecode, vcam stamps, take events)."""
        return self._clock()

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

    def tick_done(self) -> None:
        """The loop finished a tick (simulated time may pause here; wall time never does)."""

    def run_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Let time pass until ``done()`` (polled); False if ``timeout_s`` of wall time went by first."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def stop(self) -> None:
        """The loop is ending (wakes a simulated clock's waiters; nothing to do on the wall clock)."""


#: Simulated time starts here (ns), not at 0: "no time yet" and "time 0" must not look alike.
SIM_EPOCH_NS = 1_000_000_000


class SimClock:
    """Simulated lock-step time: one tick passes when the loop asks for it *and* whoever drives time
    allows it, and only after every participant (the simulated drives, then the driver reading their
    answers) has finished the tick before.

    Nothing here depends on how fast the machine is: a tick's setpoint is latched by the simulated drives,
    their answer is back in the driver, and only then does the next tick begin, so two runs of the same
    move give the same samples.  Time passes only inside :meth:`run_until` (or when ``free`` is set):
    a caller that plans a go-to-start or waits for a command's answer does so between two ticks.
    """

    simulated = True

    def __init__(self, rate_hz: int, *, free: bool = False, paced: bool = False) -> None:
        """``free``: time passes on its own, without :meth:`run_until`.  ``paced``: a free clock that
        keeps to the wall clock when it can (never ahead of it; when the machine is busy it falls behind
        instead of missing ticks): near real time for a screen, and still lock-step."""
        self.rate_hz = rate_hz
        self.paced = paced
        self._wall_start = 0
        self.period_ns = 1_000_000_000 // rate_hz
        self.start_ns = SIM_EPOCH_NS
        self.tick = 0
        self.last_missed = 0
        self.stats = JitterStats()
        self.free = free or paced
        self._participants: list[Callable[[int], None]] = []
        self._cv = threading.Condition()
        self._until: Callable[[], bool] | None = None
        self._budget = 0                 # ticks granted by step()
        self._paused = True
        self._stopped = False
        self._now = SIM_EPOCH_NS
        self._stall_ticks = 0
        self._late_ns = 0

    def add_participant(self, barrier: Callable[[int], None]) -> None:
        """``barrier(tick)`` runs at the end of every tick, in the order added: a simulated device
        finishes the tick, then the driver takes in its answers."""
        self._participants.append(barrier)

    def now_ns(self) -> int:
        return self._now

    def start(self, at_ns: int | None = None) -> int:
        self.tick = 0
        self._now = self.start_ns
        self._wall_start = time.monotonic_ns()
        return self.start_ns

    def deadline(self, tick: int) -> int:
        return self.start_ns + tick * self.period_ns

    def _may_run(self) -> bool:
        return self._stopped or self.free or self._budget > 0 or self._until is not None

    def wait_next(self) -> int:
        with self._cv:
            self._paused = True
            self._cv.notify_all()
            while not self._may_run():
                self._cv.wait()
            self._paused = False
            if self._budget > 0:
                self._budget -= 1
        if self.paced:
            ahead = self._wall_start + (self.tick + 1) * self.period_ns - time.monotonic_ns()
            if ahead > 0:
                time.sleep(ahead / 1e9)
            else:                       # fell behind: carry on from here, the wall clock is only a pace
                self._wall_start -= ahead
        missed, late, self._stall_ticks, self._late_ns = self._stall_ticks, self._late_ns, 0, 0
        self.last_missed = missed
        self.stats.overruns += missed
        # While the host slept, the rest of the world did not: the devices live through the missed ticks
        # (on a queued link they play them) before the host reads anything.
        for skipped in range(self.tick + 1, self.tick + 1 + missed):
            self._now = self.deadline(skipped)
            for barrier in self._participants:
                barrier(skipped)
        self.tick += 1 + missed
        self._now = self.deadline(self.tick) + late
        self.stats.add(late, self.period_ns)
        return late

    def stall(self, seconds: float) -> None:
        """A host stall in simulated time: the servo thread wakes ``seconds`` late for its next tick
        (whole periods are missed ticks, the rest is lateness), exactly as a busy host would."""
        ticks, rest = divmod(int(round(seconds * 1e9)), self.period_ns)
        self._stall_ticks += int(ticks)
        self._late_ns += int(rest)

    def tick_done(self) -> None:
        """The tick's setpoints are written: finish it on the other end of the wire (every participant,
        in order), so that nothing is in flight while time stands still and the next tick reads the
        answers to this one."""
        for barrier in self._participants:
            barrier(self.tick)
        with self._cv:
            if self._until is not None and self._until():
                self._until = None
                self._paused = True
                self._cv.notify_all()
            elif self._budget == 0 and self._until is None:
                self._cv.notify_all()

    def run_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Let simulated time pass until ``done()`` holds after a tick; False after ``timeout_s`` of
        *simulated* time without it (or when the loop has ended)."""
        limit = self.tick + int(timeout_s * self.rate_hz) + 1
        with self._cv:
            if done():
                return True
            self._until = lambda: done() or self.tick >= limit
            self._cv.notify_all()
            while self._until is not None and not self._stopped:
                self._cv.wait(0.5)
            self._until = None
        return bool(done())

    def step(self, ticks: int = 1) -> None:
        """Let exactly ``ticks`` ticks pass (tests that step time by hand)."""
        with self._cv:
            self._budget += ticks
            self._cv.notify_all()
            while (self._budget > 0 or not self._paused) and not self._stopped:
                self._cv.wait(0.5)

    def sleep(self, seconds: float) -> None:
        """Simulated time passes only with ticks: let them pass."""
        target = self._now + int(seconds * 1e9)
        self.run_until(lambda: self._now >= target, seconds + 1.0)

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()


def quiet_garbage_collector() -> None:
    """Keep the cyclic garbage collector's pauses short: they hold the GIL and stall the servo thread.

    A full collection walks every tracked object in the process; with roboticstoolbox, numpy and a
    Textual UI loaded that took 80-95 ms here, every couple of seconds, far past the drives' setpoint
    watchdog.  Freezing what exists now (modules, rig models, plans) moves it out of the collector's
    sight, so later collections only walk objects made since.  Call again after loading big things.
    """
    gc.collect()
    gc.freeze()


#: Real-time priorities (SCHED_FIFO, 1-99) where the system allows them: the servo thread above the
#: threads that feed it (the driver's reader, the take writer, a stop being planned, the simulator).
SERVO_RT_PRIORITY = 30
IO_RT_PRIORITY = 20
#: Without real-time scheduling, the servo thread raises its nice value by this much, where allowed.
SERVO_PRIORITY_BOOST = 10


def _fifo(priority: int, tid: int = 0) -> bool:
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (OSError, AttributeError, PermissionError):
        return False


def lock_memory() -> bool:
    """Lock the process's pages in RAM (mlockall): a page fault on the servo path costs milliseconds."""
    try:
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        MCL_CURRENT, MCL_FUTURE = 1, 2
        return libc.mlockall(MCL_CURRENT | MCL_FUTURE) == 0
    except (OSError, AttributeError):
        return False


def realtime_process() -> str:
    """Real-time scheduling for this process, where the system allows it; quietly nothing otherwise.

    The calling thread goes to SCHED_FIFO at :data:`IO_RT_PRIORITY`, so every thread it starts after
    this inherits it (Linux threads inherit their creator's policy): busy processes at normal priority
    then never take the CPU from the wire, the servo loop or the simulated drives.  Memory is locked.
    Returns what was obtained, in words, for the run summary.  (Measured here as root: permitted, with
    the kernel's real-time throttling at 950 ms per second as the safety net.)
    """
    fifo = _fifo(IO_RT_PRIORITY)
    locked = lock_memory() if fifo else False
    if fifo:
        return f"SCHED_FIFO {IO_RT_PRIORITY}" + (", memory locked" if locked else ", memory not locked")
    return "normal scheduling (real-time scheduling not permitted here)"


def raise_thread_priority() -> str:
    """Put the calling (servo) thread ahead of everything else for the CPU, where allowed.

    SCHED_FIFO at :data:`SERVO_RT_PRIORITY` where permitted; otherwise a nice boost (Linux applies a nice
    value given to a thread id to that thread alone; it needs root, CAP_SYS_NICE or RLIMIT_NICE).  On a
    busy two-core host a scheduler time slice (about 3 ms) is most of a 250 Hz period: a dry run next to
    a test runner and a simulator once stalled for 20 ms.  Returns what was obtained, in words.
    """
    if _fifo(SERVO_RT_PRIORITY):
        obtained = f"servo thread SCHED_FIFO {SERVO_RT_PRIORITY}"
    else:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -SERVO_PRIORITY_BOOST)
            obtained = f"servo thread nice -{SERVO_PRIORITY_BOOST} (real-time scheduling not permitted here)"
        except (OSError, AttributeError):
            obtained = "servo thread at normal priority (no priority change permitted here)"
    return obtained + ("; memory locked" if _memory_locked() else "")


def _memory_locked() -> bool:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return any(line.startswith("VmLck:") and int(line.split()[1]) > 0 for line in status)
    except (OSError, ValueError):
        return False
