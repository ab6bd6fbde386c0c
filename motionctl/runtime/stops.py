"""Controlled stops for the streamer, planned off the servo thread from where the rig *will be*.

A stop is asked for now and starts a few ticks later (``STOP_LEAD_S``, at least).  Meanwhile the servo
loop keeps running what it was running, with its target speed frozen, so the state at the switch-over
tick is known exactly: the worker copies the speed governor (or takes the go-to-start's index), steps it
to that tick, and plans the stop from there (:func:`~motionctl.planner.transitions.stop_on_timeline`,
bounded).  At the switch-over tick the stop is taken only if it starts exactly where the rig is.  If it
is not ready in time (a busy host) it is planned again from later, with more lead; if that has not
worked within ``STOP_GIVE_UP_S``, or no stop along the path holds the limits, the drives quick-stop on
their own ramps and the reason is said in plain words.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from motionctl.planner.governor import BRAKE_FRACTION
from motionctl.planner.transitions import Transition, stop_on_timeline, transition_timeline
from motionctl.runtime.states import Event, RunState

#: A controlled stop starts at least this long after it is asked for: time to plan it off the servo thread.
STOP_LEAD_S = 0.06
#: A stop not planned in time is tried again from later; after this long, the drives quick-stop instead.
STOP_GIVE_UP_S = 1.0


@dataclass
class _StopJob:
    at_tick: int                      # the tick whose setpoint is the stop's first
    reason: str
    target: float                     # the speed the run holds until then (frozen)
    asked_ns: int                     # when the stop was first asked for (across re-plans)
    starts_at: float                  # time along the timeline of the tick before at_tick
    ready: threading.Event = field(default_factory=threading.Event)
    transition: Transition | None = None
    error: str | None = None
    planning_s: float = 0.0


class StopMixin:
    """The stop-planning half of :class:`~motionctl.runtime.streamer.Streamer`."""

    def _request_stop(self, reason: str, asked_ns: int | None = None, lead_s: float = STOP_LEAD_S) -> None:
        """Ask the worker for a controlled stop that begins ``lead_s`` from now; keep streaming meanwhile."""
        if self._stop_job is not None and asked_ns is None:
            return
        lead = max(4, int(np.ceil(lead_s * self.rate)))
        asked = self.clock.now_ns() if asked_ns is None else asked_ns
        if self.state is RunState.RUNNING and self._governor is not None:
            twin = self._governor.clone()
            twin.brake_fraction = BRAKE_FRACTION
            target = self._speed_target()
            job = _StopJob(self.clock.tick + lead, reason, target, asked, 0.0)
            args = ("run", twin, self._timeline, lead, target)
        elif self._transition is not None:
            last = min(self._transition_index + lead - 1, len(self._transition.values) - 1)
            job = _StopJob(self.clock.tick + lead, reason, 1.0, asked, last / self.rate)
            history = np.arange(last - 2, last + 1) / self.rate     # before its start it rests on it
            args = ("transition", transition_timeline(self._transition, self.plan), history)
        else:
            self._fire(Event.STOP, reason)
            return
        self._stop_job = job
        threading.Thread(target=self._plan_stop, args=(job, args), daemon=True,
                         name="motionctl-stop-planner").start()

    def _plan_stop(self, job: _StopJob, args: tuple) -> None:
        started = time.perf_counter()
        try:
            if args[0] == "run":
                _, governor, timeline, lead, target = args
                for _ in range(lead):
                    governor.step(target)
                job.starts_at = governor.tau
                job.transition = stop_on_timeline(timeline, governor.history, self.plan)
            else:
                _, timeline, history = args
                job.transition = stop_on_timeline(timeline, history, self.plan)
            if not job.transition.clear:
                job.error = "the stop's poses come too close to the set"
        except Exception as exc:     # whatever it is, the servo loop must hear of it and quick-stop
            job.error = str(exc) or type(exc).__name__
        job.planning_s = time.perf_counter() - started
        job.ready.set()

    def _switch_to_stop(self) -> bool:
        """At the switch-over tick: start the stop if it is ready and fits (True), else keep going."""
        job = self._stop_job
        if job is None or self.clock.tick < job.at_tick:
            return False
        if self.clock.simulated:
            job.ready.wait(60.0)      # simulated time waits for the planner: the same stop on every run
        if not job.ready.is_set():
            if self.clock.now_ns() - job.asked_ns > STOP_GIVE_UP_S * 1e9:
                self._quick_instead(job, f"the controlled stop could not be planned within {STOP_GIVE_UP_S:g} s")
                return True
            return False
        if job.error or job.transition is None:
            self._quick_instead(job, f"no controlled stop possible ({job.error})")
            return True
        if self.state is RunState.RUNNING:
            fits = self._governor is not None and self._governor.tau == job.starts_at
        else:
            fits = abs((self._transition_index - 1) / self.rate - job.starts_at) < 1e-12
        if not fits:
            # Planned for a tick that has passed (the host was late): plan it again from later.
            if self.clock.now_ns() - job.asked_ns > STOP_GIVE_UP_S * 1e9:
                self._quick_instead(job, f"the controlled stop could not be planned within {STOP_GIVE_UP_S:g} s")
                return True
            self._request_stop(job.reason, job.asked_ns, max(STOP_LEAD_S, 2.0 * job.planning_s))
            return False
        self._stop_job = None
        self._transition, self._transition_index = job.transition, 1
        self._fire(Event.FAULT if self.fault_message else Event.STOP, job.reason)
        return True

    def _quick_instead(self, job: _StopJob, why: str) -> None:
        self._stop_job = None
        self._event("fault", f"{why}: quick stop")
        self.driver.quick_stop()
        self._transition = None
        self._fire(Event.FAULT if self.fault_message else Event.STOP, job.reason)

    def _speed_target(self) -> float:
        """The speed the run heads for: the operator's override, or the timecode chase's; frozen while a
        stop is being planned (so the rig will be exactly where the stop starts)."""
        if self._stop_job is not None:
            return self._stop_job.target
        return self._override_target
