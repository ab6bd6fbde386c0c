"""Takes and jogs on one running stream: what an operator's session needs beyond one run.

The command line runs one take per stream; the terminal UI keeps one stream for a whole shoot day, so the
drives are fed every cycle between takes.  Two collaborators of the streamer live here:

* :class:`TakeBook`: the take being recorded, the summaries of the takes ended on this stream, and what a
  summary is made of (the clock's timing, the link's counters since the take began).  A take's files are
  closed on a helper thread, never on the servo thread.
* :class:`JogControl`: jogging between moves, whose safety guard (:mod:`motionctl.runtime.jog`) is
  evaluated off the servo thread (at once in simulated time, so a jog is the same on every run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from motionctl.hal.driver import Driver
from motionctl.planner.plan import Plan
from motionctl.runtime.clock import JitterStats
from motionctl.runtime.jog import Jogger, JogRequest
from motionctl.runtime.states import RunSummary
from motionctl.runtime.takes import TakeWriter


class TakeBook:
    """The take in progress (or none), its running summary, and the summaries of the takes ended."""

    def __init__(self, take: TakeWriter | None, clock, driver: Driver) -> None:
        self.take = take
        self.clock = clock
        self.driver = driver
        self.summary = RunSummary()
        self.summaries: list[tuple[str, dict]] = []     # (take path, summary) of takes ended here
        self._baseline: tuple[int, int, dict[str, int]] = (0, 0, {})
        self._group_baseline: dict[str, tuple[int, int]] = {}
        if take is not None:
            take.use_clock(clock)

    def swap(self, take: TakeWriter | None, summary: Callable[[], dict]) -> None:
        """End the take in progress (its files close on a helper thread: never a stalled tick); begin
        ``take`` with fresh statistics."""
        old = self.take
        if old is not None:
            ended = summary()
            self.summaries.append((str(old.path), ended))
            threading.Thread(target=old.finish, args=(ended,), name="motionctl-take-close", daemon=True).start()
        self.take = take
        if take is not None:
            take.use_clock(self.clock)
            self.summary = RunSummary()
            self.clock.stats = JitterStats()
            stats = self.driver.stats
            self._baseline = (stats.sent, stats.received, dict(stats.dropped))
            self._group_baseline = {name: (g.sent, g.received) for name, g in stats.groups.items()}
            for each in (stats, *stats.groups.values()):
                each.longest_gap_ns = 0

    def record(self, tick: int, tau: float, state, late_ns: int, commanded: NDArray[np.float64], feedback,
               plan: Plan) -> None:
        """One row of the take (and the tick counted in the summary)."""
        self.summary.ticks += 1
        if self.take is None:
            return
        measured = feedback.positions if feedback is not None else None
        following = np.array([a.following_error for a in feedback.axes]) if feedback is not None else None
        frame = min(int(np.floor(tau * float(plan.move.rate.fps) + 1e-9)), plan.report.frames - 1)
        self.take.sample(tick, tau, state.value, frame, plan.move.timecode_at(frame), late_ns / 1000.0, commanded,
                         measured, following)

    def summarise(self, state, scheduling: str, watchdogs, chase, vcam_summary: dict) -> dict:
        """The summary of the ticks since the take (or the stream) began, as a plain dict."""
        summary, stats = self.summary, self.clock.stats
        summary.state = state.value
        summary.scheduling = scheduling
        summary.mean_late_us = stats.mean_late_us
        summary.max_late_us = stats.max_late_ns / 1000.0
        summary.p50_late_us = stats.percentile_us(50)
        summary.p99_late_us = stats.percentile_us(99)
        summary.p999_late_us = stats.percentile_us(99.9)
        summary.overruns = stats.overruns
        summary.max_following_error = dict(watchdogs.max_following_error)
        if chase is not None:
            summary.start_error_ticks = chase.start_error_ticks
            summary.max_sync_error_ticks = chase.max_sync_error_ticks
            summary.final_sync_error_ticks = chase.last_sync_error_ticks
            summary.timecode_speed = chase.lock.speed()
        summary.link = self.link()
        if vcam_summary:
            summary.link["vcam"] = vcam_summary
        return dict(summary.__dict__)

    def finish(self, summary: dict) -> None:
        """The stream ended: close the take in progress (on this thread)."""
        if self.take is not None:
            self.summaries.append((str(self.take.path), summary))
            self.take.finish(summary)

    def link(self) -> dict[str, object]:
        """The link's counters since the take (or the stream) began."""
        sent, received, dropped = self._baseline
        now = self.driver.stats
        link: dict[str, object] = {
            "sent": now.sent - sent, "received": now.received - received,
            "dropped": {k: v - dropped.get(k, 0) for k, v in now.dropped.items() if v - dropped.get(k, 0)},
            "longest_gap_ms": now.longest_gap_ns / 1e6}
        if now.groups:
            # Each controller's own timing: its cycles (a robot's own, on RSI) and their longest gap.
            base = self._group_baseline
            link["groups"] = {name: {"sent": g.sent - base.get(name, (0, 0))[0],
                                     "received": g.received - base.get(name, (0, 0))[1],
                                     "longest_gap_ms": g.longest_gap_ns / 1e6} for name, g in now.groups.items()}
        return link


class JogControl:
    """Jogging on the stream: key presses in, one jog sample per tick out, until the jog rests again."""

    def __init__(self, rate_hz: int, simulated: bool, note: Callable[[str], None]) -> None:
        self.rate_hz = rate_hz
        self.simulated = simulated
        self._note = note
        self.jogger: Jogger | None = None
        self._guard_busy = threading.Event()

    @property
    def active(self) -> bool:
        return self.jogger is not None

    @property
    def blocked(self) -> str:
        jogger = self.jogger
        return jogger.blocked if jogger is not None else ""

    def begin(self, plan: Plan, values: NDArray[np.float64]) -> None:
        """Start jogging from ``values`` (joints then lens, where the rig is commanded now)."""
        self.jogger = Jogger(plan.rig, plan.stage, self.rate_hz, values)

    def press(self, request: JogRequest, pressed_ns: int) -> None:
        if self.jogger is not None:
            self.jogger.press(request, pressed_ns)

    def release(self) -> None:
        if self.jogger is not None:
            self.jogger.release()

    def drop(self) -> None:
        self.jogger = None

    def step(self, tick_ns: int, faulted: bool) -> tuple[NDArray[np.float64], bool]:
        """The tick's jog sample, and whether the jog has come to rest (then it is over)."""
        jogger = self.jogger
        assert jogger is not None
        if faulted:
            jogger.release()
        if jogger.guard_due and not self._guard_busy.is_set():
            self._guard_busy.set()
            if self.simulated:
                self._guard(jogger, jogger.snapshot())      # simulated time: the guard's answer comes at once
            else:
                threading.Thread(target=self._guard, args=(jogger, jogger.snapshot()), daemon=True,
                                 name="motionctl-jog-guard").start()
        values = jogger.step(tick_ns)
        if jogger.at_rest:
            self.jogger = None
            return values, True
        return values, False

    def _guard(self, jogger: Jogger, snapshot: tuple) -> None:
        """The jog guard's evaluation, off the servo thread (a few ms); its grant lapses if it is late."""
        try:
            verdict = jogger.evaluate(snapshot)
            blocked = jogger.blocked
            jogger.grant(*verdict)
            if verdict[3] and verdict[3] != blocked:
                self._note(f"jog held back: {verdict[3]}")
        except Exception as exc:    # no grant: the jog brakes; say why
            self._note(f"jog guard failed ({type(exc).__name__}: {exc}): jog stopped")
        finally:
            self._guard_busy.clear()
