"""The streamer: runs a plan on a driver at the servo rate, on its own thread, on a clock (wall or simulated).

One state machine (an Enum and a transition table, in :mod:`~motionctl.runtime.states`) governs what is
streamed each tick:

    IDLE --go_to_start--> GOING_TO_START --(done)--> AT_START --arm--> ARMED --start--> RUNNING
    RUNNING --(end)--> DONE;  RUNNING/GOING_TO_START --stop--> STOPPING --(done)--> STOPPED
    any moving state --fault--> STOPPING (controlled stop), then FAULTED (latched)
    any state --estop--> ESTOPPED (drives quick-stop on their own ramps; latched)

One tick, in order (:meth:`Streamer._tick`): timecode observations, operator commands, the drives'
feedback, the watchdogs' verdict, the camera to the engine, the sample to send (:class:`Motion`), the
host's timing, the take.  The parts are collaborators with explicit inputs and outputs: the clock
(:mod:`~motionctl.runtime.clock`), :class:`Motion` (what is sent), :class:`Watchdogs` (what is wrong),
:class:`Chase` (timecode), :class:`StopPlanner` (controlled stops), :class:`TakeBook` and
:class:`JogControl` (the shoot).  The streamer alone changes the state.

A latched fault or E-stop needs ``reset()`` (drive fault reset, re-enable) and then a fresh go-to-start
before the move can run again.  Nothing here reacts to the network: only the methods below start motion.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import HardwareError, MotionctlError, PlanningError
from motionctl.hal.driver import Driver, RigState
from motionctl.planner.governor import NoLegalTick
from motionctl.planner.plan import Plan
from motionctl.planner.transitions import go_to_start
from motionctl.runtime.chase import Chase, ChaseStart
from motionctl.runtime.clock import ServoClock, SimClock, quiet_garbage_collector, raise_thread_priority
from motionctl.runtime.jog import JogRequest
from motionctl.runtime.motion import Motion
from motionctl.runtime.queued import QueueLog, Sent
from motionctl.runtime.shoot import JogControl, TakeBook
from motionctl.runtime.states import TRANSITIONS, Event, RunState, RunSummary, StreamerOptions
from motionctl.runtime.stops import QUEUE_MARGIN_TICKS, STOP_LEAD_S, Due, StopPlanner
from motionctl.runtime.takes import TakeWriter
from motionctl.runtime.watchdogs import Fault, Watchdogs

#: After a go-to-start the rig gets this long to settle on the start pose before AT_START is declared.
SETTLE_S = 2.0
#: States in which a take may end (the rig is at rest or stopped for good).
_FINAL = (RunState.DONE, RunState.STOPPED, RunState.FAULTED, RunState.ESTOPPED)


class Streamer:
    """Streams a :class:`Plan` to a :class:`Driver`.  Control methods are thread-safe and return at once."""

    def __init__(self, plan: Plan, driver: Driver, *, take: TakeWriter | None = None,
                 options: StreamerOptions = StreamerOptions(),
                 on_state: Callable[[RunState, str], None] | None = None,
                 timecode: object | None = None, vcam: object | None = None,
                 clock: ServoClock | SimClock | None = None) -> None:
        if plan.trajectory is None or plan.joint_path is None:
            raise PlanningError("the move has no trajectory to run")
        self.driver, self.options = driver, options
        self.rate = plan.rate_hz
        self.dt = 1.0 / self.rate
        self._on_state = on_state
        rig, names = plan.rig, driver.axis_names
        linear = np.array([rig.axes[i].linear if i < len(rig.axes) else True for i in range(len(names))])
        self._linear = linear
        self.state = RunState.IDLE
        self._commands: queue.Queue[tuple[Event, object]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._shutdown = threading.Event()
        self._ended = threading.Event()
        #: Wall time (hardware, real-time rehearsal) or simulated lock-step time (dry runs, tests).
        self.clock = clock or ServoClock(self.rate)
        driver.now_ns = self.clock.now_ns
        self.vcam = vcam                                  # a VcamPublisher, or None
        if vcam is not None and self.clock.simulated:
            vcam.inline = True          # every frame, in order: simulated time may outrun a publisher thread
        self.vcam_summary: dict[str, object] = {}
        self.motion = Motion(plan, names)
        self.watchdogs = Watchdogs(options, names, linear, np.array([i >= len(rig.axes) for i in range(len(names))]),
                                   self.rate, driver.lookahead_ticks)
        self.stops = StopPlanner(plan, self.rate, self.clock.simulated)
        self.takes = TakeBook(take, self.clock, driver)
        self.jogs = JogControl(self.rate, self.clock.simulated, lambda m: self._event("note", m))
        self.chase: Chase | None = None
        self._apply_plan(plan, timecode)
        self.last_state: RigState | None = None
        self.last_command = np.zeros(len(names))
        self._hold = self.last_command.copy()          # where the drives were found (a queue's first ticks)
        self.fault_message = ""
        self.override = 1.0
        self._override_target = 1.0
        self._reset_mark: int | None = None
        self._last_feedback_ns = 0
        self.events: list[tuple[str, str]] = []       # (kind, message), for UIs and summaries
        self.refusals: list[str] = []
        self.ready = threading.Event()                # set once the loop knows where the drives are
        self.scheduling = "simulated time"           # what the servo thread got from the system, in words
        #: Serial 1.1: setpoints go out this many ticks ahead of the tick being played (0: no queue).
        self.lookahead = driver.lookahead_ticks
        self._head = 0                                # the tick of the setpoint being made (queue head)
        self.queued = QueueLog(self.lookahead)        # what went out for the ticks in the device's queue
        self._final_head: int | None = None           # the head when the state became final (drain)
        self._host_stalled = False

    # -- what others read -------------------------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        return self.motion.plan

    @property
    def take(self) -> TakeWriter | None:
        return self.takes.take

    @property
    def summary(self) -> RunSummary:
        return self.takes.summary

    @property
    def take_summaries(self) -> list[tuple[str, dict]]:
        return self.takes.summaries

    @property
    def lock(self):
        """The timecode lock, when the move runs on timecode (None otherwise)."""
        return self.chase.lock if self.chase is not None else None

    @property
    def run_time(self) -> float:
        """Seconds into the move (plan time; advances at the speed override)."""
        return self.motion.tau

    @property
    def jog_blocked(self) -> str:
        return self.jogs.blocked

    # -- control (any thread) ---------------------------------------------------------------------------
    def go_to_start(self) -> None:
        """Plan the go-to-start from the measured pose (here, not on the servo thread), then start it."""
        if (self.state, Event.GO_TO_START) not in TRANSITIONS:
            self._event("refused", f"go to start is not possible while {self.state.value}")
            return
        try:
            transition = go_to_start(self.plan, self._measured_arm(), self.motion.lens_of(self._measured_all()))
        except (PlanningError, HardwareError) as exc:
            self._event("refused", f"cannot go to start: {exc}")
            return
        if not transition.clear:
            self._event("refused", "cannot go to start: " + "; ".join(transition.notes))
            return
        self._commands.put((Event.GO_TO_START, transition))

    def arm(self) -> None:
        self._commands.put((Event.ARM, None))

    def start(self) -> None:
        self._commands.put((Event.START, None))

    def stop(self) -> None:
        self._commands.put((Event.STOP, None))

    def reset(self) -> None:
        """Clear a latched fault or E-stop: drive fault reset and re-enable (here, not on the servo thread)."""
        if self.state not in (RunState.FAULTED, RunState.ESTOPPED):
            self._event("refused", f"nothing to reset while {self.state.value}")
            return
        try:
            self.driver.fault_reset()
            self.driver.enable()
        except MotionctlError as exc:
            self._event("refused", f"reset failed: {exc}")
            return
        self._commands.put((Event.RESET, None))

    def set_override(self, fraction: float) -> None:
        """Rehearsal speed, 0..1 of the planned timing; the path stays the same."""
        self._override_target = float(np.clip(fraction, 0.0, 1.0))

    def estop(self) -> None:
        """Immediate quick stop on every axis, from the calling thread (does not wait for the loop)."""
        try:
            self.driver.quick_stop()
        finally:
            self._commands.put((Event.ESTOP, "E-stop pressed"))

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

    # -- time -----------------------------------------------------------------------------------------------
    def run_in_thread(self) -> threading.Thread:
        # Other threads (planning a go-to-start, a UI) hold the GIL for up to the switch interval (5 ms by
        # default): longer than a servo period.  Ask the interpreter to switch more often (a twentieth of
        # a period: with a UI redrawing, a quarter still left the loop a millisecond late at p50).
        sys.setswitchinterval(min(sys.getswitchinterval(), self.dt / 20))
        quiet_garbage_collector()
        self._thread = threading.Thread(target=self.loop, name="motionctl-streamer", daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self, timeout: float = 2.0) -> None:
        self._shutdown.set()
        self.clock.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_for(self, states: set[RunState], timeout: float) -> RunState:
        """Let time pass (wall or simulated) until the state is one of ``states``, for ``timeout`` at most."""
        self.clock.run_until(lambda: self.state in states or self._ended.is_set(), timeout)
        return self.state

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Let time pass until ``done()`` (checked after each tick in simulated time)."""
        return self.clock.run_until(lambda: done() or self._ended.is_set(), timeout) and done()

    # -- the servo loop ---------------------------------------------------------------------------------
    def loop(self) -> None:
        """Read, judge, command, record: once per tick until shut down."""
        if not self.clock.simulated:
            self.scheduling = raise_thread_priority()
        try:
            self.clock.start()
            self._last_feedback_ns = self.clock.now_ns()
            if self.driver.enabled:
                self._found_drives(self.last_state)
            elif not self.clock.simulated:
                self._found_drives(self.driver.probe())
            # In simulated time the drives are found by the first ticks (their answers come with ticks).
        except MotionctlError as exc:
            self._fault(Fault(f"cannot read the drives: {exc}", quick=True))
            self.ready.set()
            self._finish()
            return
        try:
            while not self._shutdown.is_set():
                late = self.clock.wait_next()
                if self._shutdown.is_set():
                    break
                try:
                    self._tick()
                except MotionctlError as exc:
                    self._link_lost(f"the link to the drives failed: {exc}")
                except Exception as exc:   # a bug must still end in a stop, never in a silently dead loop
                    self._link_lost(f"internal error in the servo loop ({type(exc).__name__}: {exc})")
                self._fault(self.watchdogs.host(self.state, late, self.clock.last_missed, self.clock.period_ns))
                self._record(late)
                self._inject_host_stall()
                self.clock.tick_done()
        finally:
            self._finish()
            self._ended.set()
            self.clock.stop()

    def _tick(self) -> None:
        if not self.ready.is_set():
            # Simulated time: cycles that disabled drives answer without moving, until they have.
            fresh = self.driver.read_state(timeout_s=0.0)
            if fresh is None:
                self.driver.probe_cycle()
                return
            self._last_feedback_ns = fresh.host_time_ns
            self._found_drives(fresh)
        if self.chase is not None:
            self.chase.poll()
        self._drain_commands()
        fresh = self.driver.read_state(timeout_s=0.0)
        if fresh is not None and self._newer_than_reset(fresh):
            self.last_state = fresh
            self._last_feedback_ns = fresh.host_time_ns
        self._fault(self.watchdogs.drives(self.state, self.last_state if fresh is not None else None,
                                          self.clock.now_ns(), self._last_feedback_ns))
        if self.vcam is not None and fresh is not None:
            played = self.queued.sent(self.clock.tick)
            self.vcam.offer_measured(fresh, self.plan, self.lock, self.state,
                                     played.tau if played else self.motion.tau, self.clock.tick, self.rate)
        # The queue's head: the tick whose setpoint goes out now (``lookahead`` ahead of the tick being
        # played).  A host that was late sends every missed tick's setpoint now, in order, so the device's
        # queue is whole again before it gets there; without a queue a missed tick is gone (no jump either
        # way: the drives always get the plan's next sample).
        missed = self.clock.last_missed if self.lookahead else 0
        if self.lookahead:
            self._queued_stop_due()
        for behind in range(missed, -1, -1):
            self._head = self.clock.tick - behind + self.lookahead
            self._send_head()

    def _send_head(self) -> None:
        """Make and send the setpoint of tick ``_head`` (and keep it, on a queued link)."""
        command = self._command_for_tick()
        self.driver.write_setpoints(command, tick=self._head)
        self.last_command = command
        if self.lookahead:
            motion = self.motion
            transition = motion.transition
            index = min(motion.transition_index - 1, len(transition.values) - 1) if transition is not None else 0
            self.queued.keep(self._head, Sent(command, self.state, motion.tau, transition, index),
                             motion.governor if self.state is RunState.RUNNING else None)

    def _found_drives(self, feedback: RigState | None) -> None:
        """The drives answered: hold them where they are from now on."""
        self.last_state = feedback
        if feedback is not None:
            self.last_command = feedback.positions.copy()
        self._hold = self.last_command.copy()
        self.ready.set()

    def _inject_host_stall(self) -> None:
        """``options.host_stall``: freeze the servo thread once, as a busy host would (in simulated time the
        clock is told the thread woke that much later)."""
        stall = self.options.host_stall
        if stall is None or self._host_stalled or self.state is not RunState.RUNNING or self.motion.tau < stall[0]:
            return
        self._host_stalled = True
        self._event("note", f"host stall injected: the servo thread freezes for {stall[1] * 1000:.0f} ms")
        if self.clock.simulated:
            self.clock.stall(stall[1])
        else:
            time.sleep(stall[1])

    # -- the state machine --------------------------------------------------------------------------------
    def _fire(self, event: Event, message: str = "") -> bool:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            if event is not Event.REACHED:
                self._event("refused", f"{event.value} is not possible while {self.state.value}")
            return False
        previous, self.state = self.state, nxt
        self._final_head = self._head if nxt in _FINAL else None
        self._event("state", message or f"{previous.value} -> {nxt.value}", state=nxt.value, event=event.value)
        if self._on_state:
            self._on_state(nxt, message)
        return True

    def _drain_commands(self) -> None:
        while True:
            try:
                event, payload = self._commands.get_nowait()
            except queue.Empty:
                return
            if event is Event.ESTOP:
                self._fire(Event.ESTOP, str(payload))
                self.summary.faults.append(str(payload))
            elif event is Event.GO_TO_START:
                self.motion.begin_transition(payload)
                for note in payload.notes:
                    self._event("note", note)
                self._fire(Event.GO_TO_START, f"going to start ({payload.duration_s:.1f} s"
                           + (", via park" if payload.via_park else "") + ")")
            elif event is Event.ARM:
                self._arm()
            elif event is Event.STOP:
                if self.state in (RunState.RUNNING, RunState.GOING_TO_START):
                    self._request_stop("stop requested")
                elif self.state is RunState.JOGGING:
                    self.jogs.release()
                else:
                    self._fire(Event.STOP, "stop requested")
            elif event is Event.RESET:
                self._reset()
            elif event is Event.JOG:
                self._jog_command(payload)
            elif event is Event.LOAD:
                self._load(*payload)
            elif event is Event.TAKE:
                self.takes.swap(payload, self._summarise)
                if payload is not None:
                    self.watchdogs.max_following_error.clear()
            else:
                if event is Event.START and self.state is RunState.ARMED and self.chase is None:
                    self.motion.start_run(self._override_target)
                self._fire(event)

    def _arm(self) -> None:
        if self.state is not RunState.AT_START:
            self._fire(Event.ARM)
            return
        measured, start = self._measured_arm(), self.plan.trajectory.q[0]
        error = np.abs(measured - start)
        limit = self._start_tolerance(len(start))
        worst = int(np.argmax(error / limit))
        if error[worst] > limit[worst]:
            axis = self.plan.rig.axes[worst]
            self._event("refused", f"not armed: {axis.name} is {axis.to_file(error[worst]):.3f} {axis.file_unit} from "
                        f"the start (tolerance {axis.to_file(limit[worst]):.3f}); go to start again")
            return
        self.start_error = measured - start
        if self.chase is not None:
            self.chase.roll()
            self._fire(Event.ARM, f"armed: starting on {self.plan.move.start.label} ({self.chase.description})")
            return
        self._fire(Event.ARM, "armed at the start")

    def _start_tolerance(self, n: int) -> NDArray[np.float64]:
        return np.where(self._linear[:n], self.options.start_tolerance_m, self.options.start_tolerance_rad)

    def _settled(self) -> bool:
        """After the go-to-start's last sample: has the rig caught up (or has it had time enough)?"""
        if self.motion.past_transition_end > SETTLE_S * self.rate:
            return True
        start = self.plan.trajectory.q[0]
        return bool(np.all(np.abs(self._measured_arm() - start) <= self._start_tolerance(len(start))))

    def _reset(self) -> None:
        self.fault_message = ""
        measured = self._measured_all()
        if measured is not None:
            self.last_command = measured
        self.watchdogs.reset()
        self.stops.cancel()
        self.last_state = None          # judge the drives again only on feedback from after the reset
        self._reset_mark = self.driver.sequence
        self._last_feedback_ns = self.clock.now_ns()
        self._fire(Event.RESET, "fault reset: go to start again before running")

    def _newer_than_reset(self, state: RigState) -> bool:
        """Feedback answering setpoints sent before a fault reset still shows the old fault: skip it."""
        if self._reset_mark is None or state.sequence < 0:
            return True
        if 0 < ((state.sequence - self._reset_mark) & 0xFFFF) < 0x8000:
            self._reset_mark = None
            return True
        return False

    # -- faults and stops -------------------------------------------------------------------------------
    def _fault(self, fault: Fault | None) -> None:
        """Latch ``fault`` (the first one counts) and end the motion: a controlled stop where the drives can
        still follow one, a quick stop where they cannot."""
        if fault is None or self.fault_message:
            return
        self.fault_message = message = fault.message
        self.summary.faults.append(message)
        self._event("fault", message)
        if self.state is RunState.JOGGING and not fault.quick:
            return                  # the jog brakes to rest (jerk-limited), then latches the fault
        if fault.quick or self.state not in (RunState.RUNNING, RunState.GOING_TO_START):
            if fault.quick:
                self.driver.quick_stop()
            self._fire(Event.FAULT, message)
            if self.state is RunState.STOPPING:     # quick-stopped: nothing left to stream
                self.motion.begin_transition(None)
            return
        self._request_stop(message)

    def _link_lost(self, message: str) -> None:
        """Nothing can be streamed any more: quick stop (best effort; the drives' own watchdogs stop them
        if the command cannot get through) and latch the fault, whatever was in progress."""
        self._fault(Fault(message, quick=True))
        self.driver.quick_stop()
        self.stops.cancel()
        if self.state is RunState.STOPPING:
            self.motion.begin_transition(None)
            self._fire(Event.REACHED)
        if self.state not in (RunState.FAULTED, RunState.ESTOPPED):
            self._fire(Event.FAULT, self.fault_message)

    def _request_stop(self, reason: str, asked_ns: int | None = None, lead_s: float | None = None) -> None:
        """A controlled stop, planned off the servo thread from where the rig will be a few ticks on."""
        if self.stops.pending and asked_ns is None:
            return
        lead_s = STOP_LEAD_S if lead_s is None else lead_s
        now = self.clock.now_ns()
        running = self.state is RunState.RUNNING and self.motion.governor is not None
        if self.lookahead >= QUEUE_MARGIN_TICKS and self._request_queued_stop(reason, now, asked_ns, lead_s):
            return
        if running:
            self.stops.from_run(reason, self.motion.governor, self.motion.timeline, self._head,
                                self._speed_target(), now, asked_ns, lead_s=lead_s)
        elif self.motion.transition is not None:
            self.stops.from_transition(reason, self.motion.transition, self.motion.transition_index,
                                       self._head, now, asked_ns, lead_s=lead_s)
        else:
            self._fire(Event.STOP, reason)

    def _request_queued_stop(self, reason: str, now: int, asked_ns: int | None, lead_s: float) -> bool:
        """Queued link: a stop of a run or of a go-to-start begins ``lead + QUEUE_MARGIN_TICKS`` ticks from
        the tick being played, inside the queue, from the state of the tick before (a run: the governor's
        state kept when it was sent, or reached by stepping on with the target frozen, as the run itself
        will; a go-to-start: the sample sent then, or to be sent).  False where that state is not known (the
        run has made no tick yet): stop from the queue's head."""
        at = self.clock.tick + max(4, int(np.ceil(lead_s * self.rate))) + QUEUE_MARGIN_TICKS
        if self.state is RunState.RUNNING and self.motion.governor is not None:
            found = self.queued.governor_before(at, self.motion.governor)
            if found is None:
                return False
            governor, before = found
            self.stops.from_queue(reason, governor, self.motion.timeline, at, before, self._speed_target(), now,
                                  asked_ns)
            return True
        known = min(at - 1, self._head)           # the tick before may be past the head (a short lookahead)
        sent = self.queued.sent(known)
        if self.state is not RunState.GOING_TO_START or sent is None or sent.transition is not self.motion.transition:
            return False
        last = min(sent.index + (at - 1 - known), len(sent.transition.values) - 1)
        self.stops.from_queued_transition(reason, sent.transition, last, at, now, asked_ns)
        return True

    def _queued_stop_due(self) -> None:
        """Queued link, before this tick's head is made: a stop that begins inside the queue is switched
        to ``QUEUE_MARGIN_TICKS`` before the device plays its first tick, and its samples replace every tick
        already queued from there (docs/serial-protocol.md §10.4)."""
        at = self.stops.queued_at
        if at is None or self.clock.tick + QUEUE_MARGIN_TICKS < at:
            return
        sent = self.queued.sent(at - 1)
        if self.state is RunState.RUNNING:
            here = sent.tau if sent is not None else float("inf")    # unknown: never "the same tick" (re-plan)
        elif self.state is RunState.GOING_TO_START and sent is not None and sent.transition is self.motion.transition:
            here = sent.index / self.rate
        else:
            # The run ended, or the go-to-start reached the start, before the stop began (or it was quick-
            # stopped): nothing left to stop; a fault that asked for it still latches.
            self.stops.cancel()
            if self.fault_message and self.state not in (RunState.FAULTED, RunState.ESTOPPED):
                self._fire(Event.FAULT, self.fault_message)
            return
        decision = self.stops.due(self.clock.tick + QUEUE_MARGIN_TICKS, self.clock.now_ns(), here, queued=True)
        if decision.due is Due.REPLAN:
            self._request_stop(decision.reason, decision.asked_ns, decision.lead_s)
            return
        if decision.due is Due.WAIT:
            return
        if decision.due is Due.QUICK:
            self._event("fault", f"{decision.why}: quick stop")
            self.driver.quick_stop()         # empties the device's queue
            self.motion.begin_transition(None)
            self._fire(Event.FAULT if self.fault_message else Event.STOP, decision.reason)
            return
        self.motion.begin_transition(decision.transition, 1)
        self._fire(Event.FAULT if self.fault_message else Event.STOP, decision.reason)
        head = self._head
        for tick in range(at, head + 1):
            self._head = tick
            self._send_head()

    def _stop_due(self) -> bool:
        """At each tick: switch to a planned stop, or quick-stop instead (True when the state changed)."""
        running = self.state is RunState.RUNNING
        here = self.motion.tau if running else (self.motion.transition_index - 1) / self.rate
        decision = self.stops.due(self._head, self.clock.now_ns(), here)
        if decision.due is Due.REPLAN:
            self._request_stop(decision.reason, decision.asked_ns, decision.lead_s)
            return False
        if decision.due is Due.WAIT:
            return False
        if decision.due is Due.QUICK:
            self._event("fault", f"{decision.why}: quick stop")
            self.driver.quick_stop()
            self.motion.begin_transition(None)
        else:
            self.motion.begin_transition(decision.transition, 1)
        self._fire(Event.FAULT if self.fault_message else Event.STOP, decision.reason)
        return True

    def _speed_target(self) -> float:
        """The speed the run heads for: the operator's override, or the timecode chase's; frozen while a
        stop is being planned (so the rig will be exactly where the stop starts)."""
        frozen = self.stops.frozen_target
        return frozen if frozen is not None else self._override_target

    # -- what to send this tick ---------------------------------------------------------------------------
    def _command_for_tick(self) -> NDArray[np.float64]:
        if self._stop_due() and self.state is RunState.STOPPING and self.motion.transition is None:
            return self.last_command      # quick-stopped: the drives brake on their own ramps
        state = self.state
        if state in (RunState.GOING_TO_START, RunState.STOPPING) and self.motion.transition is not None:
            values, last = self.motion.transition_sample()
            if last and (state is RunState.STOPPING or self._settled()):
                done = self._fire(Event.REACHED)
                if done and self.fault_message:
                    self._fire(Event.FAULT, self.fault_message)
            return self.motion.command(values, self.last_command)
        if state is RunState.STOPPING:       # nothing to follow: hold
            self._fire(Event.REACHED)
            if self.fault_message:
                self._fire(Event.FAULT, self.fault_message)
            return self.last_command
        if state is RunState.ARMED and self.chase is not None:
            self._start_on_timecode()
            state = self.state
        if state in (RunState.AT_START, RunState.ARMED):
            return self.motion.command(self.motion.start_sample(), self.last_command)
        if state is RunState.RUNNING:
            return self._run_tick()
        if state is RunState.JOGGING and self.jogs.active:
            values, rested = self.jogs.step(self._tick_ns(), bool(self.fault_message))
            if rested:
                self._fire(Event.FAULT if self.fault_message else Event.REACHED, self.fault_message or "jog ended")
            return self.motion.command(values, self.last_command)
        if state in (RunState.ESTOPPED, RunState.FAULTED):
            self.jogs.drop()
            # The drives brake on their own and ignore targets; keep the cycle going (feedback keeps coming,
            # the drives' watchdogs stay fed) with targets where the axes are, so nothing jumps on reset.
            measured = self._measured_all()
            return measured if measured is not None else self.last_command
        return self.last_command   # idle, done, stopped: hold the last setpoint

    def _start_on_timecode(self) -> None:
        decision = self.chase.start(self._tick_ns(), self.clock.now_ns())
        if decision is ChaseStart.LATE:
            self._fault(self.chase.late_fault())
        elif decision is ChaseStart.LOST:
            self._fault(self.chase.lost_fault())
        elif decision is ChaseStart.START:
            self.motion.start_run(self._override_target)
            self._fire(Event.START, f"started on timecode {self.plan.move.start.label} "
                       f"({self.chase.start_error_ticks:+.2f} ticks)")

    def _run_tick(self) -> NDArray[np.float64]:
        """One tick of the run: the plan's clock moves towards the target speed within every limit."""
        if self.chase is not None and self.chase.active and not self.stops.pending:
            target = self.chase.target(self._tick_ns(), self.clock.deadline(self.clock.tick), self.motion.tau,
                                       self._override_target, self.dt)
            if isinstance(target, Fault):
                self._fault(target)
            else:
                self._override_target = target
        try:
            # One step per tick sent, also after ticks the host missed (a late host): the drives then get
            # the next setpoint of the plan, never a jump across the missed ones.  The run is that much
            # later on the wall clock; on timecode the chase takes it back within the limits.
            values = self.motion.run_sample(self._speed_target())
        except NoLegalTick as exc:
            self._fault(Fault(f"{exc}: quick stop", quick=True))
            return self.last_command
        self.override = self.motion.speed
        if self.motion.at_end:
            self._fire(Event.END, "end of move")
        return self.motion.command(values, self.last_command)

    def _tick_ns(self) -> int:
        """Host time of the current tick's deadline (when its setpoint is meant to apply)."""
        return self.clock.deadline(self._head)

    # -- the shoot: moves, jogs ---------------------------------------------------------------------------
    def _load(self, plan: Plan, timecode: object | None) -> None:
        if (self.state, Event.LOAD) not in TRANSITIONS:
            self._event("refused", f"cannot take another move while {self.state.value}")
            return
        self._apply_plan(plan, timecode)
        self._fire(Event.LOAD, f"loaded {plan.move.name}: go to start before running")

    def _apply_plan(self, plan: Plan, timecode: object | None) -> None:
        """Everything that depends on the plan (and its timecode source); the rig and driver stay."""
        if self.chase is not None and self.chase.source is not timecode:
            self.chase.close()
        self.motion.load(plan)
        self.stops.plan = plan
        self.start_error = None
        self.start_frame = plan.move.start.frame
        self.chase = Chase(timecode, plan, self.options, self.clock.period_ns) if timecode is not None else None

    def _jog_command(self, payload: tuple[JogRequest, int] | None) -> None:
        if payload is None:
            self.jogs.release()
            return
        request, pressed_ns = payload
        if self.state is not RunState.JOGGING:
            if (self.state, Event.JOG) not in TRANSITIONS:
                self._event("refused", f"jog is not possible while {self.state.value}")
                return
            n = len(self.plan.rig.axes)
            values = self.motion.arm_of(self.last_command)
            self.jogs.begin(self.plan, np.concatenate([values[:n], self.motion.lens_of(self.last_command)]))
            self._fire(Event.JOG, "jogging (reduced speed; moves only while the key is held)")
        self.jogs.press(request, pressed_ns)

    # -- what the drives measured ---------------------------------------------------------------------------
    def _measured_all(self) -> NDArray[np.float64] | None:
        return None if self.last_state is None else self.last_state.positions

    def _measured_arm(self) -> NDArray[np.float64]:
        values = self._measured_all()
        return self.motion.arm_of(values if values is not None else self.last_command)

    # -- records ------------------------------------------------------------------------------------------
    def _record(self, late_ns: int) -> None:
        if not self.lookahead:
            self.takes.record(self.clock.tick, self.motion.tau, self.state, late_ns, self.last_command,
                              self.last_state, self.plan)
            return
        # A queued link plays this tick's setpoint now: the row pairs what was sent for it with what the
        # drives measured (before the queue's first setpoints plays, the drives hold where they were).  The
        # ticks a late host missed were played too: they get their rows.
        first = self.clock.tick - self.clock.last_missed
        for tick in range(first, self.clock.tick + 1):
            sent = self.queued.sent(tick)
            if sent is None:            # before the queue's first setpoint plays: where the drives were found
                self.takes.record(tick, 0.0, RunState.IDLE, late_ns, self._hold, self.last_state, self.plan)
            else:
                self.takes.record(tick, sent.tau, sent.state, late_ns, sent.command, self.last_state, self.plan)

    @property
    def drained(self) -> bool:
        """Everything sent has been played (no queue, or the queue has reached the tick at which the run's
        state became final): the take may end."""
        return not self.lookahead or (self._final_head is not None and self.clock.tick >= self._final_head)

    def _event(self, kind: str, message: str, **data: object) -> None:
        self.events.append((kind, message))
        if kind == "refused":
            self.refusals.append(message)
        if self.take is not None:
            self.take.event(kind, message, tick=self.clock.tick, **data)

    def _summarise(self) -> dict:
        """The summary of the ticks since the take (or the stream) began, as a plain dict."""
        return self.takes.summarise(self.state, self.scheduling, self.watchdogs, self.chase, self.vcam_summary)

    def _finish(self) -> None:
        if self.vcam is not None:
            self.vcam_summary = self.vcam.summary()
            self.vcam.close()
        summary = self._summarise()
        if self.chase is not None:
            self.chase.close()
        self.takes.finish(summary)
