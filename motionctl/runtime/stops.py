"""Controlled stops for a run, planned off the servo thread from where the rig *will be*.

A stop is asked for now and starts a few ticks later (``STOP_LEAD_S``, at least).  Meanwhile the servo
loop keeps running what it was running, with its target speed frozen, so the state at the switch-over
tick is known exactly: the planner copies the speed governor (or takes the go-to-start's index), steps it
to that tick, and plans the stop from there (:func:`~motionctl.planner.transitions.stop_on_timeline`,
bounded).  At the switch-over tick the stop is taken only if it starts exactly where the rig is.  If it
is not ready in time (a busy host) it is planned again from later, with more lead; if that has not
worked within ``STOP_GIVE_UP_S``, or no stop along the path holds the limits, the drives quick-stop on
their own ramps and the reason is said in plain words.  In simulated time the loop waits for the
planner at the switch-over tick, so a run stops the same way every time.

On a queued link (serial 1.1) the setpoints go out ``L`` ticks before they play.  A stop of the run or of
a go-to-start then begins ``lead + QUEUE_MARGIN_TICKS`` ticks after it was asked for, not ``L + lead``: it
is planned from the state at the tick before its first (the governor's: a snapshot kept per tick sent, or
the governor stepped on with its target frozen; a go-to-start's: the index of the sample sent for that
tick), and the streamer decides ``QUEUE_MARGIN_TICKS`` before the device plays that first
tick, then sends the stop's samples for every tick already queued from it on: the device replaces them
(docs/serial-protocol.md §10.4, §10.6).

:class:`StopPlanner` holds the one stop in planning; :meth:`StopPlanner.due` tells the streamer, tick by
tick, what to do: nothing yet, switch to the stop, quick-stop (and why), or wait for a re-plan.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from motionctl.planner.governor import BRAKE_FRACTION, SpeedGovernor, Timeline
from motionctl.planner.plan import Plan
from motionctl.planner.transitions import Transition, stop_on_timeline, transition_timeline

#: A controlled stop starts at least this long after it is asked for: time to plan it off the servo thread.
STOP_LEAD_S = 0.06
#: A stop not planned in time is tried again from later; after this long, the drives quick-stop instead.
STOP_GIVE_UP_S = 1.0
#: Queued link: the stop's samples replace the queued ones this many ticks before the device plays the
#: first of them (one tick for the frames to cross, one for the device's tick boundary and clock drift).
QUEUE_MARGIN_TICKS = 2


class Due(Enum):
    WAIT = "wait"            # nothing to do this tick (none asked, not yet due, or re-planning)
    SWITCH = "switch"        # stream the stop from this tick (``Decision.transition``, from index 1)
    QUICK = "quick"          # no controlled stop: quick-stop the drives (``Decision.why``)
    REPLAN = "replan"        # planned for a tick that has passed: plan it again from now


@dataclass(frozen=True)
class Decision:
    due: Due
    reason: str = ""                      # why the stop was asked for
    transition: Transition | None = None
    why: str = ""                         # why a quick stop instead
    lead_s: float = STOP_LEAD_S           # REPLAN: the lead to plan with (twice what the last plan took)
    asked_ns: int = 0                     # REPLAN: when the stop was first asked for


@dataclass
class _Job:
    at_tick: int                      # the tick whose setpoint is the stop's first
    reason: str
    target: float                     # the speed the run holds until then (frozen)
    asked_ns: int                     # when the stop was first asked for (across re-plans)
    starts_at: float                  # time along the timeline of the tick before at_tick
    queued: bool = False              # begins inside a device's queue: decided QUEUE_MARGIN_TICKS before
    ready: threading.Event = field(default_factory=threading.Event)
    transition: Transition | None = None
    error: str | None = None
    planning_s: float = 0.0


class StopPlanner:
    """The stop being planned for one streamer (at most one at a time)."""

    def __init__(self, plan: Plan, rate_hz: int, simulated: bool) -> None:
        self.plan = plan
        self.rate_hz = rate_hz
        self.simulated = simulated
        self._job: _Job | None = None

    @property
    def pending(self) -> bool:
        return self._job is not None

    @property
    def frozen_target(self) -> float | None:
        """The speed the run must hold while a stop from it is being planned."""
        return self._job.target if self._job is not None else None

    @property
    def queued_at(self) -> int | None:
        """The first tick of a stop that begins inside the device's queue (None: no such stop pending)."""
        return self._job.at_tick if self._job is not None and self._job.queued else None

    def cancel(self) -> None:
        self._job = None

    def from_run(self, reason: str, governor: SpeedGovernor, timeline: Timeline, tick: int, target: float,
                 now_ns: int, asked_ns: int | None = None, lead_s: float = STOP_LEAD_S) -> None:
        """Plan a stop of the running plan, from ``lead_s`` ahead of ``tick`` (``governor`` as of now)."""
        lead = max(4, int(np.ceil(lead_s * self.rate_hz)))
        twin = governor.clone()
        twin.brake_fraction = BRAKE_FRACTION
        job = _Job(tick + lead, reason, target, now_ns if asked_ns is None else asked_ns, 0.0)
        self._start(job, self._plan_run, twin, timeline, lead, target)

    def from_queue(self, reason: str, governor: SpeedGovernor, timeline: Timeline, at_tick: int, before: int,
                   target: float, now_ns: int, asked_ns: int | None = None) -> None:
        """Plan a stop of the running plan whose first sample plays at ``at_tick`` on a queued link.
        ``governor`` is in its state of tick ``at_tick - 1 - before``; the run holds ``target`` (frozen) for
        the ``before`` ticks still to be made up to ``at_tick - 1``."""
        twin = governor.clone()
        twin.brake_fraction = BRAKE_FRACTION
        job = _Job(at_tick, reason, target, now_ns if asked_ns is None else asked_ns, 0.0, queued=True)
        self._start(job, self._plan_run, twin, timeline, before, target)

    def from_transition(self, reason: str, transition: Transition, index: int, tick: int, now_ns: int,
                        asked_ns: int | None = None, lead_s: float = STOP_LEAD_S) -> None:
        """Plan a stop of a go-to-start whose sample ``index`` goes out on ``tick``."""
        lead = max(4, int(np.ceil(lead_s * self.rate_hz)))
        last = min(index + lead - 1, len(transition.values) - 1)
        self._transition_job(reason, transition, last, tick + lead, now_ns, asked_ns, queued=False)

    def from_queued_transition(self, reason: str, transition: Transition, last: int, at_tick: int, now_ns: int,
                               asked_ns: int | None = None) -> None:
        """Plan a stop of a go-to-start whose first sample plays at ``at_tick`` on a queued link, where the
        tick before played the transition's sample ``last``."""
        self._transition_job(reason, transition, last, at_tick, now_ns, asked_ns, queued=True)

    def _transition_job(self, reason: str, transition: Transition, last: int, at_tick: int, now_ns: int,
                        asked_ns: int | None, queued: bool) -> None:
        job = _Job(at_tick, reason, 1.0, now_ns if asked_ns is None else asked_ns, last / self.rate_hz,
                   queued=queued)
        history = np.arange(last - 2, last + 1) / self.rate_hz     # before its start it rests on it
        self._start(job, self._plan_transition, transition_timeline(transition, self.plan), history)

    def _start(self, job: _Job, work, *args: object) -> None:
        self._job = job
        threading.Thread(target=self._run, args=(job, work, args), daemon=True,
                         name="motionctl-stop-planner").start()

    def _run(self, job: _Job, work, args: tuple) -> None:
        started = time.perf_counter()
        try:
            work(job, *args)
            if job.transition is not None and not job.transition.clear:
                job.error = "the stop's poses come too close to the set"
        except Exception as exc:     # whatever it is (MemoryError included), the servo loop must hear of it
            job.error = str(exc) or type(exc).__name__
        job.planning_s = time.perf_counter() - started
        job.ready.set()

    def _plan_run(self, job: _Job, governor: SpeedGovernor, timeline: Timeline, lead: int, target: float) -> None:
        for _ in range(lead):
            governor.step(target)
        job.starts_at = governor.tau
        job.transition = stop_on_timeline(timeline, governor.history, self.plan)

    def _plan_transition(self, job: _Job, timeline: Timeline, history: np.ndarray) -> None:
        job.transition = stop_on_timeline(timeline, history, self.plan)

    def due(self, tick: int, now_ns: int, here: float, queued: bool = False) -> Decision:
        """At ``tick``: what to do about the stop in planning.  ``here``: the time along the timeline
        (plan or go-to-start) of the tick before ``tick``, where a stop must start to fit.  ``queued``: asked
        about a stop that begins inside the device's queue (``tick`` is then the one it must begin at)."""
        job = self._job
        if job is None or job.queued != queued or tick < job.at_tick:
            return Decision(Due.WAIT)
        if self.simulated:
            job.ready.wait(60.0)      # simulated time waits for the planner: the same stop on every run
        overdue = now_ns - job.asked_ns > STOP_GIVE_UP_S * 1e9
        if not job.ready.is_set():
            if overdue:
                self._job = None
                return Decision(Due.QUICK, job.reason, why=f"the controlled stop could not be planned within "
                                f"{STOP_GIVE_UP_S:g} s")
            return Decision(Due.WAIT)
        if job.error or job.transition is None:
            self._job = None
            return Decision(Due.QUICK, job.reason, why=f"no controlled stop possible ({job.error})")
        if abs(here - job.starts_at) > 1e-12 or (job.queued and tick > job.at_tick):
            # Planned for a tick that has passed (the host was late): plan it again from later.
            self._job = None
            if overdue:
                return Decision(Due.QUICK, job.reason, why=f"the controlled stop could not be planned within "
                                f"{STOP_GIVE_UP_S:g} s")
            # More lead, as long again as planning took (in simulated time the loop waits for the planner:
            # the wall time it took means nothing there, and the same lead keeps runs identical).
            lead_s = STOP_LEAD_S if self.simulated else max(STOP_LEAD_S, 2.0 * job.planning_s)
            return Decision(Due.REPLAN, job.reason, lead_s=lead_s, asked_ns=job.asked_ns)
        self._job = None
        return Decision(Due.SWITCH, job.reason, job.transition)
