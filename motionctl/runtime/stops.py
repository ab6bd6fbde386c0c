"""Controlled stops for the streamer, planned off the servo thread.

A stop is asked for now and starts ``STOP_LEAD_S`` later, from where the rig *will be* then (the plan and
the speed-override ramp are deterministic): a worker thread computes it meanwhile, so the servo loop
never waits.  If the worker is a whole second late, the drives quick-stop instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from motionctl.errors import MotionctlError, PlanningError
from motionctl.planner.transitions import Transition, stop_along_path, stop_joint_transition
from motionctl.runtime.states import Event, RunState

#: A controlled stop starts this long after it is asked for: time to compute it off the servo thread.
STOP_LEAD_S = 0.06


@dataclass
class _StopJob:
    at_tick: int
    reason: str
    ready: threading.Event = field(default_factory=threading.Event)
    transition: Transition | None = None
    error: str | None = None


class StopMixin:
    """The stop-planning half of :class:`~motionctl.runtime.streamer.Streamer`."""

    def _request_stop(self, reason: str) -> None:
        """Ask the worker for a controlled stop that begins ``STOP_LEAD_S`` from now; keep streaming meanwhile.

        The stop is computed off the servo thread from where the rig *will be* at the switch-over tick
        (the plan and the override ramp are deterministic), so the servo loop never waits for it.
        """
        if self._stop_job is not None:
            return
        lead_ticks = max(4, int(STOP_LEAD_S * self.rate))
        if self.state is RunState.RUNNING:
            future = self._predict_s(lead_ticks)
            job = ("path", np.array(future[-4:]))
        else:
            job = ("joints", self._transition_index + lead_ticks)
        self._stop_job = _StopJob(self.clock.tick + lead_ticks, reason)
        threading.Thread(target=self._compute_stop, args=(self._stop_job, job), daemon=True,
                         name="motionctl-stop-planner").start()

    def _compute_stop(self, ticket: _StopJob, job: tuple[str, object]) -> None:
        kind, data = job
        try:
            if kind == "path":
                ticket.transition = stop_along_path(self.plan, data)
            else:
                ticket.transition = stop_joint_transition(self._transition, int(data), self.plan)
        except (PlanningError, MotionctlError) as exc:
            ticket.error = str(exc)
        ticket.ready.set()

    def _switch_to_stop(self) -> bool:
        """At the switch-over tick: start the stop if it is ready (True), else keep going a tick."""
        job = self._stop_job
        if job is None or self.clock.tick < job.at_tick:
            return False
        if not job.ready.is_set():
            if self.clock.tick > job.at_tick + self.rate:       # a second late: something is badly wrong
                self._stop_job = None
                self._event("fault", "the controlled stop could not be computed in time: quick stop")
                self.driver.quick_stop()
                self._transition = None
                self._fire(Event.FAULT if self.fault_message else Event.STOP, job.reason)
                return True
            return False
        self._stop_job = None
        if job.error or job.transition is None:
            self._event("fault", f"no controlled stop possible ({job.error}): quick stop")
            self.driver.quick_stop()
            self._transition = None
        else:
            self._transition, self._transition_index = job.transition, 1
        self._fire(Event.FAULT if self.fault_message else Event.STOP, job.reason)
        return True

    def _predict_s(self, ticks: int) -> list[float]:
        """Keyed instants of the next ``ticks`` run ticks, following the override ramp as it will go."""
        traj = self.plan.trajectory
        tau, f = self._tau, self.override
        step = self.options.override_rate_per_s * self.dt
        out = []
        for _ in range(ticks):
            f += float(np.clip(self._override_target - f, -step, step))
            tau = min(tau + f * self.dt, float(traj.t[-1]))
            out.append(float(np.interp(tau, traj.t, traj.s)))
        return out
