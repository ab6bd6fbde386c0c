"""Many moves, takes and jogs on one running stream: what an operator's session needs beyond one take.

The command line runs one take per stream; the terminal UI keeps one stream for a whole shoot day, so the
drives are fed every cycle between takes.  This half of :class:`~motionctl.runtime.streamer.Streamer`
swaps the plan at rest, opens and closes takes (closing files on a helper thread, never on the servo
thread), and runs jogs, whose safety guard (:mod:`motionctl.runtime.jog`) is evaluated off the servo
thread too.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from numpy.typing import NDArray

from motionctl.planner.plan import Plan
from motionctl.planner.transitions import plan_timeline
from motionctl.runtime.clock import JitterStats
from motionctl.runtime.jog import Jogger, JogRequest
from motionctl.errors import PlanningError
from motionctl.runtime.chase import TimecodeLock
from motionctl.runtime.states import TRANSITIONS, Event, RunState, RunSummary
from motionctl.runtime.takes import TakeWriter


class ShootMixin:
    """Plans, takes and jogs for :class:`~motionctl.runtime.streamer.Streamer`."""

    def load(self, plan: Plan, timecode: object | None = None) -> None:
        """Take another move on the same rig (at rest only); it must be gone to from scratch."""
        if plan.rig.file != self.plan.rig.file or plan.rate_hz != self.rate:
            self._event("refused", "another rig or servo rate needs a new connection")
            return
        if plan.trajectory is None or plan.joint_path is None:
            self._event("refused", f"{plan.move.name} has no trajectory to run")
            return
        self._commands.put((Event.LOAD, (plan, timecode)))

    def begin_take(self, take: TakeWriter) -> None:
        """Record from now into ``take`` (ending the take in progress, if any), with fresh statistics."""
        self._commands.put((Event.TAKE, take))

    def end_take(self) -> None:
        """Close the take in progress (its summary covers the ticks since it began)."""
        self._commands.put((Event.TAKE, None))

    def jog(self, request: JogRequest) -> None:
        """A jog key press or auto-repeat; the rig moves only while they keep coming (see runtime.jog)."""
        self._commands.put((Event.JOG, (request, self.clock.now_ns())))

    def jog_release(self) -> None:
        self._commands.put((Event.JOG, None))

    def _load(self, plan: Plan, timecode: object | None) -> None:
        if (self.state, Event.LOAD) not in TRANSITIONS:
            self._event("refused", f"cannot take another move while {self.state.value}")
            return
        self._apply_plan(plan, timecode)
        self._fire(Event.LOAD, f"loaded {plan.move.name}: go to start before running")

    def _swap_take(self, take: TakeWriter | None) -> None:
        """End the take in progress on a helper thread (closing files must not stall a tick); begin ``take``."""
        old = self.take
        if old is not None:
            summary = self._summarise()
            self.take_summaries.append((str(old.path), summary))
            threading.Thread(target=old.finish, args=(summary,), name="motionctl-take-close", daemon=True).start()
        self.take = take
        if take is not None:
            take.use_clock(self.clock)
            self.summary = RunSummary()
            self.clock.stats = JitterStats()
            stats = self.driver.stats
            self._link_baseline = (stats.sent, stats.received, dict(stats.dropped))
            stats.longest_gap_ns = 0

    def _jog_command(self, payload: tuple[JogRequest, int] | None) -> None:
        if payload is None:
            if self._jogger is not None:
                self._jogger.release()
            return
        request, pressed_ns = payload
        if self.state is not RunState.JOGGING:
            if (self.state, Event.JOG) not in TRANSITIONS:
                self._event("refused", f"jog is not possible while {self.state.value}")
                return
            n = len(self.plan.rig.axes)
            values = self.last_command[self._arm_columns]
            lens = np.array(self.plan.trajectory.lens[0], dtype=float)
            for lens_index, column in self._lens_columns:
                lens[lens_index] = self.last_command[column]
            self._jogger = Jogger(self.plan.rig, self.plan.stage, self.rate, np.concatenate([values[:n], lens]))
            self._fire(Event.JOG, "jogging (reduced speed; moves only while the key is held)")
        self._jogger.press(request, pressed_ns)

    def _jog_tick(self) -> NDArray[np.float64]:
        jogger = self._jogger
        if self.fault_message:
            jogger.release()
        if jogger.guard_due and not self._guard_busy.is_set() and self.clock.simulated:
            self._guard_busy.set()
            self._guard(jogger, jogger.snapshot())      # simulated time: the guard's answer comes at once
        elif jogger.guard_due and not self._guard_busy.is_set():
            self._guard_busy.set()
            threading.Thread(target=self._guard, args=(jogger, jogger.snapshot()), daemon=True,
                             name="motionctl-jog-guard").start()
        values = jogger.step(self._tick_ns())
        if jogger.at_rest:
            self._jogger = None
            self._fire(Event.FAULT if self.fault_message else Event.REACHED, self.fault_message or "jog ended")
        return self._full_command(values)

    def _guard(self, jogger: Jogger, snapshot: tuple) -> None:
        """The jog guard's evaluation, off the servo thread (a few ms); its grant lapses if it is late."""
        try:
            verdict = jogger.evaluate(snapshot)
            blocked = jogger.blocked
            jogger.grant(*verdict)
            if verdict[3] and verdict[3] != blocked:
                self._event("note", f"jog held back: {verdict[3]}")
        except Exception as exc:    # no grant: the jog brakes; say why
            self._event("note", f"jog guard failed ({type(exc).__name__}: {exc}): jog stopped")
        finally:
            self._guard_busy.clear()

    @property
    def jog_blocked(self) -> str:
        jogger = self._jogger
        return jogger.blocked if jogger is not None else ""

    def _apply_plan(self, plan: Plan, timecode: object | None) -> None:
        """Everything that depends on the plan (and its timecode source); the rig and driver stay."""
        if plan.trajectory is None or plan.joint_path is None:
            raise PlanningError("the move has no trajectory to run")
        if self.timecode_source is not None and self.timecode_source is not timecode:
            self.timecode_source.close()
        self.plan = plan
        self._timeline = plan_timeline(plan)
        self._tau = 0.0
        self._governor = None
        self._transition = None
        self.start_error = None
        self.timecode_source = timecode
        self.lock = TimecodeLock(plan.move.rate) if timecode is not None else None
        self.start_frame = plan.move.start.frame
        self.start_error_ticks: float | None = None
        self.max_sync_error_ticks = 0.0
        self.last_sync_error_ticks = 0.0
        peaks = plan.report.extra.get("axis_peaks") or []
        tightest = max([max(p["v_pct"], 100 * (p["a_pct"] / 100) ** 0.5, 100 * (p["j_pct"] / 100) ** (1 / 3))
                        for p in peaks] or [100.0]) / 100.0
        self._speed_up_room = max(0.0, min(self.options.chase_max_slew, 1.0 / max(tightest, 1e-9) - 1.0 - 1e-4))

    def _summarise(self) -> dict:
        """The summary of the ticks since the take (or the stream) began, as a plain dict."""
        stats = self.clock.stats
        self.summary.state = self.state.value
        self.summary.scheduling = self.scheduling
        self.summary.mean_late_us = stats.mean_late_us
        self.summary.max_late_us = stats.max_late_ns / 1000.0
        self.summary.p50_late_us = stats.percentile_us(50)
        self.summary.p99_late_us = stats.percentile_us(99)
        self.summary.p999_late_us = stats.percentile_us(99.9)
        self.summary.overruns = stats.overruns
        if self.timecode_source is not None:
            self.summary.start_error_ticks = self.start_error_ticks
            self.summary.max_sync_error_ticks = self.max_sync_error_ticks
            self.summary.final_sync_error_ticks = self.last_sync_error_ticks
            if self.lock is not None:
                self.summary.timecode_speed = self.lock.speed()
        sent, received, dropped = self._link_baseline
        now = self.driver.stats
        self.summary.link = {"sent": now.sent - sent, "received": now.received - received,
                             "dropped": {k: v - dropped.get(k, 0) for k, v in now.dropped.items()
                                         if v - dropped.get(k, 0)}}
        self.summary.link["longest_gap_ms"] = now.longest_gap_ns / 1e6
        if self.vcam_summary:
            self.summary.link["vcam"] = self.vcam_summary
        return dict(self.summary.__dict__)
