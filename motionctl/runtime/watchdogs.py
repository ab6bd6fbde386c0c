"""Watchdogs of the streamer: drive faults, silent or self-stopped drives, following error, stale
feedback, a stalled setpoint stream, too many late cycles, and a lost link.

Each ends in a controlled stop along the path (the drives can still follow) or a quick stop (they cannot,
or must not), and a latched fault in plain words.
"""

from __future__ import annotations

import time

import numpy as np

from motionctl.hal.driver import DriveStatus
from motionctl.runtime.states import Event, RunState

#: How the host-timing faults end: the machine running motionctl, not the move, the wire or the drives.
HOST_STALLED = "the host could not keep up"
HOST_OVERLOADED = "the host is overloaded"


class WatchdogMixin:
    """The watchdog half of :class:`~motionctl.runtime.streamer.Streamer`."""

    def _watchdogs(self) -> None:
        if self.state in (RunState.ESTOPPED, RunState.FAULTED):
            return
        now = self.clock.now_ns()
        moving = self.state in (RunState.RUNNING, RunState.GOING_TO_START, RunState.STOPPING, RunState.ARMED,
                                RunState.AT_START, RunState.JOGGING)
        if moving and now - self._last_feedback_ns > self.options.stale_feedback_s * 1e9:
            self._fault(f"no feedback from the drives for {(now - self._last_feedback_ns) / 1e6:.0f} ms "
                        "(cable, bus-off, or drive power?)", quick=False)
            self._last_feedback_ns = now
            return
        state = self.last_state
        if state is None:
            return
        faulted = state.faulted
        if faulted:
            axis = faulted[0]
            self._fault(f"drive fault on {axis.name}: {axis.fault_text or f'code 0x{axis.fault_code:04X}'}", quick=True)
            return
        offline = [a for a in state.axes if a.status is DriveStatus.OFFLINE]
        if offline:
            self._fault(f"drive {offline[0].name} went silent (no heartbeat or feedback): every axis stopped",
                        quick=True)
            return
        stopped = [a for a in state.axes if a.status is DriveStatus.QUICK_STOP]
        if stopped and self.state in (RunState.RUNNING, RunState.GOING_TO_START, RunState.ARMED, RunState.AT_START,
                                      RunState.JOGGING):
            detail = stopped[0].fault_text or "it no longer heard the host (heartbeat) or hit a limit"
            self._fault(f"drive {stopped[0].name} stopped on its own ({detail}): every axis stopped", quick=True)
            return
        ferr = np.array([abs(a.following_error) for a in state.axes])
        window = np.where(self._is_lens, self.options.following_error_lens,
                          np.where(self._linear, self.options.following_error_m, self.options.following_error_rad))
        over = ferr > window
        self._over_window = np.where(over, self._over_window + 1, 0)
        for name, value in zip(self.driver.axis_names, ferr):
            self.summary.max_following_error[name] = max(self.summary.max_following_error.get(name, 0.0), float(value))
        if moving and (self._over_window >= self.options.following_error_ticks).any():
            i = int(np.argmax(self._over_window))
            unit, scale = (("% of travel", 100.0) if self._is_lens[i] else ("mm", 1000.0) if self._linear[i]
                           else ("deg", 180.0 / np.pi))
            self._fault(f"following error on {self.driver.axis_names[i]}: {ferr[i] * scale:.2f} {unit} "
                        f"(window {window[i] * scale:.2f} {unit})", quick=False)

    def _timing_watchdog(self, late_ns: int) -> None:
        """The host itself: a stalled setpoint stream, or too many late cycles, ends in a controlled stop."""
        moving = self.state in (RunState.RUNNING, RunState.GOING_TO_START, RunState.JOGGING)
        period = self.clock.period_ns
        late = late_ns > period or self.clock.last_missed > 0   # a setpoint left a cycle (or more) late
        self._late_window.append(late)
        self._late_count += late
        if len(self._late_window) > self.rate:
            self._late_count -= self._late_window.popleft()
        if not moving:
            return
        if self.clock.last_missed >= self.options.stall_cycles:
            self._fault(f"the setpoint stream stalled for {self.clock.last_missed} cycles "
                        f"({self.clock.last_missed * period / 1e6:.0f} ms): {HOST_STALLED}", quick=False)
        elif len(self._late_window) == self.rate and self._late_count > self.options.late_budget * self.rate:
            self._fault(f"{self._late_count} of the last {self.rate} cycles were late (budget "
                        f"{self.options.late_budget:.0%}): {HOST_OVERLOADED}", quick=False)

    def _link_lost(self, message: str) -> None:
        """Nothing can be streamed any more: quick stop (best effort; the drives' own watchdogs stop them
        if the command cannot get through) and latch the fault, whatever was in progress."""
        self._fault(message, quick=True)
        self.driver.quick_stop()
        self._stop_job = None
        if self.state is RunState.STOPPING:
            self._transition = None
            self._fire(Event.REACHED)
        if self.state not in (RunState.FAULTED, RunState.ESTOPPED):
            self._fire(Event.FAULT, self.fault_message)

    def _fault(self, message: str, *, quick: bool) -> None:
        if self.fault_message:
            return
        self.fault_message = message
        self.summary.faults.append(message)
        self._event("fault", message)
        if self.state is RunState.JOGGING and not quick:
            return                  # the jog brakes to rest (jerk-limited), then latches the fault
        if quick or self.state not in (RunState.RUNNING, RunState.GOING_TO_START):
            if quick:
                self.driver.quick_stop()
            self._fire(Event.FAULT, message)
            if self.state is RunState.STOPPING:     # quick-stopped: nothing left to stream
                self._transition = None
            return
        self._request_stop(message)

    # -- measurements and records ----------------------------------------------------------------------
