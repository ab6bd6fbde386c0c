"""The streamer: runs a plan on a driver at the servo rate, on its own thread, with absolute deadlines.

One state machine (an Enum and a transition table, below) governs what is streamed each tick:

    IDLE --go_to_start--> GOING_TO_START --(done)--> AT_START --arm--> ARMED --start--> RUNNING
    RUNNING --(end)--> DONE;  RUNNING/GOING_TO_START --stop--> STOPPING --(done)--> STOPPED
    any moving state --fault--> STOPPING (controlled stop), then FAULTED (latched)
    any state --estop--> ESTOPPED (drives quick-stop on their own ramps; latched)

A latched fault or E-stop needs ``reset()`` (drive fault reset, re-enable) and then a fresh go-to-start
before the move can run again.  Nothing here reacts to the network: only the methods below start motion.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import HardwareError, MotionctlError, PlanningError
from motionctl.hal.driver import Driver, RigState
from motionctl.planner.plan import Plan
from motionctl.planner.governor import NoLegalTick, SpeedGovernor
from motionctl.planner.transitions import Transition, go_to_start, plan_timeline
from motionctl.runtime.chase import ChaseMixin
from motionctl.runtime.clock import ServoClock, SimClock, quiet_garbage_collector, raise_thread_priority
from motionctl.runtime.jog import Jogger
from motionctl.runtime.shoot import ShootMixin
from motionctl.runtime.states import TRANSITIONS, Event, RunState, RunSummary, StreamerOptions
from motionctl.runtime.stops import StopMixin, _StopJob
from motionctl.runtime.takes import TakeWriter
from motionctl.runtime.watchdogs import WatchdogMixin
from motionctl.timecode import Timecode


#: A speed override or the timecode chase changes the plan's clock this gently (a fraction of what its
#: limits allow; a stop brakes harder, planned ahead with a bounded search).
RUN_BRAKE_FRACTION = 0.25
#: After a go-to-start the rig gets this long to settle on the start pose before AT_START is declared.
SETTLE_S = 2.0


class Streamer(ShootMixin, StopMixin, WatchdogMixin, ChaseMixin):
    """Streams a :class:`Plan` to a :class:`Driver`.  Control methods are thread-safe and return at once."""

    def __init__(self, plan: Plan, driver: Driver, *, take: TakeWriter | None = None,
                 options: StreamerOptions = StreamerOptions(),
                 on_state: Callable[[RunState, str], None] | None = None,
                 timecode: object | None = None, vcam: object | None = None,
                 clock: ServoClock | SimClock | None = None) -> None:
        if plan.trajectory is None or plan.joint_path is None:
            raise PlanningError("the move has no trajectory to run")
        self.plan, self.driver, self.take, self.options = plan, driver, take, options
        self.rate = plan.rate_hz
        self.dt = 1.0 / self.rate
        self._on_state = on_state
        rig = plan.rig
        names = driver.axis_names
        self._arm_columns = [names.index(a) for a in rig.axis_names]
        self._lens_columns = [(i, names.index(l.name)) for i, l in enumerate(rig.lens) if l.name in names]
        self._linear = np.array([rig.axes[i].linear if i < len(rig.axes) else True for i in range(len(names))])
        self._is_lens = np.array([i >= len(rig.axes) for i in range(len(names))])
        self.state = RunState.IDLE
        self._commands: queue.Queue[tuple[Event, object]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._shutdown = threading.Event()
        self._ended = threading.Event()
        #: Wall time (hardware, real-time rehearsal) or simulated lock-step time (dry runs, tests).
        self.clock = clock or ServoClock(self.rate)
        driver.now_ns = self.clock.now_ns
        if take is not None:
            take.use_clock(self.clock)
        if vcam is not None and self.clock.simulated:
            vcam.inline = True          # every frame, in order: simulated time may outrun a publisher thread
        self.summary = RunSummary()
        self.last_state: RigState | None = None
        self.last_command = np.zeros(len(names))
        self.fault_message = ""
        self.override = 1.0
        self._override_target = 1.0
        self._tau = 0.0                       # run time along the plan (plan seconds)
        self._transition: Transition | None = None
        self._stop_job: _StopJob | None = None
        self._reset_mark: int | None = None
        self._transition_index = 0
        self._governor: SpeedGovernor | None = None       # the plan's clock while running (override, chase, end)
        self._over_window = np.zeros(len(names), dtype=int)
        self._last_feedback_ns = 0
        self.vcam = vcam                                  # a VcamPublisher, or None
        self.vcam_summary: dict[str, object] = {}
        self.timecode_source = None
        self._apply_plan(plan, timecode)
        self._jogger: Jogger | None = None
        self._guard_busy = threading.Event()
        self._link_baseline: tuple[int, int, dict[str, int]] = (0, 0, {})
        self.take_summaries: list[tuple[str, dict]] = []   # (take path, summary) of takes ended here
        self.events: list[tuple[str, str]] = []       # (kind, message), for UIs and summaries
        self.ready = threading.Event()                # set once the loop knows where the drives are
        self._late_window: deque[bool] = deque()     # late or not, over the last second of ticks
        self._late_count = 0
        self.refusals: list[str] = []
        self.scheduling = "simulated time"           # what the servo thread got from the system, in words
        self._host_stalled = False

    @property
    def run_time(self) -> float:
        """Seconds into the move (plan time; advances at the speed override)."""
        return self._tau

    # -- control (any thread) ---------------------------------------------------------------------------
    def go_to_start(self) -> None:
        """Plan the go-to-start from the measured pose (here, not on the servo thread), then start it."""
        if (self.state, Event.GO_TO_START) not in TRANSITIONS:
            self._event("refused", f"go to start is not possible while {self.state.value}")
            return
        measured = self._measured_arm()
        try:
            transition = go_to_start(self.plan, measured, self._measured_lens())
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

    # -- thread -----------------------------------------------------------------------------------------
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

    def loop(self) -> None:
        """The servo loop: read, check, command, record, once per tick until shut down."""
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
            self._fault(f"cannot read the drives: {exc}", quick=True)
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
                self._timing_watchdog(late)
                self._record(late)
                self._inject_host_stall()
                self.clock.tick_done()
        finally:
            self._finish()
            self._ended.set()
            self.clock.stop()

    def _found_drives(self, feedback: RigState | None) -> None:
        """The drives answered: hold them where they are from now on."""
        self.last_state = feedback
        if feedback is not None:
            self.last_command = feedback.positions.copy()
        self.ready.set()

    def _inject_host_stall(self) -> None:
        """``options.host_stall``: freeze the servo thread once, as a busy host would (in simulated time the
        clock is told the thread woke that much later)."""
        stall = self.options.host_stall
        if stall is None or self._host_stalled or self.state is not RunState.RUNNING or self._tau < stall[0]:
            return
        self._host_stalled = True
        self._event("note", f"host stall injected: the servo thread freezes for {stall[1] * 1000:.0f} ms")
        if self.clock.simulated:
            self.clock.stall(stall[1])
        else:
            time.sleep(stall[1])

    def _tick(self) -> None:
        if not self.ready.is_set():
            # Simulated time: cycles that disabled drives answer without moving, until they have.
            fresh = self.driver.read_state(timeout_s=0.0)
            if fresh is None:
                self.driver.probe_cycle()
                return
            self._last_feedback_ns = fresh.host_time_ns
            self._found_drives(fresh)
        if self.timecode_source is not None:
            for observation in self.timecode_source.poll():
                self.lock.observe(observation)
        self._drain_commands()
        fresh = self.driver.read_state(timeout_s=0.0)
        if fresh is not None and self._newer_than_reset(fresh):
            self.last_state = fresh
            self._last_feedback_ns = fresh.host_time_ns
        self._watchdogs()
        if self.vcam is not None and fresh is not None:
            self._offer_vcam(fresh)
        command = self._command_for_tick()
        if command is not None:
            self.driver.write_setpoints(command)
            self.last_command = command

    # -- state machine ----------------------------------------------------------------------------------
    def _fire(self, event: Event, message: str = "") -> bool:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            if event is not Event.REACHED:
                self._event("refused", f"{event.value} is not possible while {self.state.value}")
            return False
        previous, self.state = self.state, nxt
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
                self._transition, self._transition_index = payload, 0
                for note in payload.notes:
                    self._event("note", note)
                self._fire(Event.GO_TO_START, f"going to start ({payload.duration_s:.1f} s"
                           + (", via park" if payload.via_park else "") + ")")
            elif event is Event.ARM:
                self._arm()
            elif event is Event.STOP:
                if self.state in (RunState.RUNNING, RunState.GOING_TO_START):
                    self._request_stop("stop requested")
                elif self.state is RunState.JOGGING and self._jogger is not None:
                    self._jogger.release()
                else:
                    self._fire(Event.STOP, "stop requested")
            elif event is Event.RESET:
                self._reset()
            elif event is Event.JOG:
                self._jog_command(payload)
            elif event is Event.LOAD:
                self._load(*payload)
            elif event is Event.TAKE:
                self._swap_take(payload)
            else:
                if event is Event.START and self.state is RunState.ARMED and self.lock is None:
                    self._start_run()
                self._fire(event)

    def _offer_vcam(self, state: RigState) -> None:
        """One camera sample per frame to the engine, from what the drives measured."""
        fps = float(self.plan.move.rate.fps)
        if self.lock is not None and self.lock.locked:
            frame = int(np.floor(self.lock.frame_at(state.host_time_ns) + 1e-9))
            timecode = Timecode(frame, self.plan.move.rate)
        elif self.state is RunState.RUNNING or self.state is RunState.STOPPING:
            frame = self.start_frame + int(np.floor(self._tau * fps + 1e-9))
            timecode = Timecode(frame, self.plan.move.rate)
        else:   # not running: keep the engine fed at the frame rate, labelled with the move's start
            frame = -1 - int(self.clock.tick * fps / self.rate)
            timecode = self.plan.move.start
        lens = {l.name: float(v) for l, v in zip(self.plan.rig.lens, self.plan.trajectory.lens[0])}
        self.vcam.offer(state.positions, frame, timecode, state.host_time_ns, lens)

    def _tick_ns(self) -> int:
        """Host time of the current tick's deadline (when its setpoint is meant to apply)."""
        return self.clock.deadline(self.clock.tick)

    def _newer_than_reset(self, state: RigState) -> bool:
        """Feedback answering setpoints sent before a fault reset still shows the old fault: skip it."""
        if self._reset_mark is None or state.sequence < 0:
            return True
        if 0 < ((state.sequence - self._reset_mark) & 0xFFFF) < 0x8000:
            self._reset_mark = None
            return True
        return False

    def _settled(self) -> bool:
        """After the go-to-start's last sample: has the rig caught up (or has it had time enough)?"""
        past_end = self._transition_index - len(self._transition.values)
        if past_end > SETTLE_S * self.rate:
            return True
        measured = self._measured_arm()
        start = self.plan.trajectory.q[0]
        limit = np.where(self._linear[: len(start)], self.options.start_tolerance_m, self.options.start_tolerance_rad)
        return bool(np.all(np.abs(measured - start) <= limit))

    def _arm(self) -> None:
        if self.state is not RunState.AT_START:
            self._fire(Event.ARM)
            return
        measured = self._measured_arm()
        start = self.plan.trajectory.q[0]
        error = np.abs(measured - start)
        limit = np.where(self._linear[: len(start)], self.options.start_tolerance_m, self.options.start_tolerance_rad)
        worst = int(np.argmax(error / limit))
        if error[worst] > limit[worst]:
            axis = self.plan.rig.axes[worst]
            self._event("refused", f"not armed: {axis.name} is {axis.to_file(error[worst]):.3f} {axis.file_unit} from "
                        f"the start (tolerance {axis.to_file(limit[worst]):.3f}); go to start again")
            return
        self.start_error = measured - start
        if self.timecode_source is not None:
            self.timecode_source.roll()
            self._fire(Event.ARM, f"armed: starting on {self.plan.move.start.label} "
                       f"({getattr(self.timecode_source, 'description', 'timecode')})")
            return
        self._fire(Event.ARM, "armed at the start")

    def _reset(self) -> None:
        self.fault_message = ""
        measured = self._measured_all()
        if measured is not None:
            self.last_command = measured
        self._over_window[:] = 0
        self._stop_job = None
        self.last_state = None          # judge the drives again only on feedback from after the reset
        self._reset_mark = self.driver.sequence
        self._last_feedback_ns = self.clock.now_ns()
        self._fire(Event.RESET, "fault reset: go to start again before running")

    # -- per tick -----------------------------------------------------------------------------------------
    def _command_for_tick(self) -> NDArray[np.float64] | None:
        traj = self.plan.trajectory
        if self._switch_to_stop() and self.state is RunState.STOPPING and self._transition is None:
            return self.last_command      # quick-stopped: the drives brake on their own ramps
        state = self.state
        if state in (RunState.GOING_TO_START, RunState.STOPPING) and self._transition is not None:
            values = self._transition.values
            index = min(self._transition_index, len(values) - 1)
            self._transition_index += 1
            if index >= len(values) - 1 and (state is RunState.STOPPING or self._settled()):
                done = self._fire(Event.REACHED)
                if done and self.fault_message:
                    self._fire(Event.FAULT, self.fault_message)
            return self._full_command(values[index])
        if state is RunState.STOPPING:       # nothing to follow: hold
            self._fire(Event.REACHED)
            if self.fault_message:
                self._fire(Event.FAULT, self.fault_message)
            return self.last_command
        if state is RunState.ARMED and self.lock is not None:
            self._maybe_start_on_timecode()
            state = self.state
        if state in (RunState.AT_START, RunState.ARMED):
            return self._full_command(np.concatenate([traj.q[0], traj.lens[0]]))
        if state is RunState.RUNNING:
            return self._run_tick()
        if state is RunState.JOGGING and self._jogger is not None:
            return self._jog_tick()
        if state in (RunState.ESTOPPED, RunState.FAULTED):
            self._jogger = None
            # The drives brake on their own and ignore targets; keep the cycle going (feedback keeps coming,
            # the drives' watchdogs stay fed) with targets where the axes are, so nothing jumps on reset.
            measured = self._measured_all()
            return measured if measured is not None else self.last_command
        return self.last_command   # idle, done, stopped: hold the last setpoint

    def _start_run(self) -> None:
        """Frame 0 is the next tick.  The plan rests on its first sample, so its clock starts at the
        target speed at once (the rig's own start is in the plan)."""
        self._tau = 0.0
        self._governor = SpeedGovernor(self._timeline, 0.0, speed=self._override_target,
                                       brake_fraction=RUN_BRAKE_FRACTION)
        self.override = self._override_target

    def _run_tick(self) -> NDArray[np.float64] | None:
        """One tick of the run: the plan's clock moves towards the target speed within every limit."""
        if self.lock is not None and self._stop_job is None:
            self._chase()
        target = self._speed_target()
        governor = self._governor
        try:
            # One step per tick sent, also after ticks the host missed (a late host): the drives then get
            # the next setpoint of the plan, never a jump across the missed ones.  The run is that much
            # later on the wall clock; on timecode the chase takes it back within the limits.
            values = governor.step(target)
        except NoLegalTick as exc:
            self._fault(f"{exc}: quick stop", quick=True)
            return self.last_command
        self._tau, self.override = governor.tau, governor.speed
        if governor.at_end:
            self._fire(Event.END, "end of move")
        return self._full_command(values)

    def _full_command(self, plan_values: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.array(self.last_command, dtype=float)
        n = len(self.plan.rig.axes)
        out[self._arm_columns] = plan_values[:n]
        for lens_index, column in self._lens_columns:
            out[column] = plan_values[n + lens_index]
        return out

    def _measured_all(self) -> NDArray[np.float64] | None:
        return None if self.last_state is None else self.last_state.positions

    def _measured_arm(self) -> NDArray[np.float64]:
        values = self._measured_all()
        return (values if values is not None else self.last_command)[self._arm_columns]

    def _measured_lens(self) -> NDArray[np.float64]:
        traj = self.plan.trajectory
        lens = np.array(traj.lens[0], dtype=float)
        values = self._measured_all()
        if values is not None:
            for lens_index, column in self._lens_columns:
                lens[lens_index] = values[column]
        return lens

    def _record(self, late_ns: int) -> None:
        self.summary.ticks += 1
        if self.take is None:
            return
        state = self.last_state
        measured = state.positions if state is not None else None
        following = np.array([a.following_error for a in state.axes]) if state is not None else None
        frame = int(np.floor(self._tau * float(self.plan.move.rate.fps) + 1e-9))
        frame = min(frame, self.plan.report.frames - 1)
        self.take.sample(self.clock.tick, self._tau, self.state.value, frame, self.plan.move.timecode_at(frame),
                         late_ns / 1000.0, self.last_command, measured, following)

    def _event(self, kind: str, message: str, **data: object) -> None:
        self.events.append((kind, message))
        if kind == "refused":
            self.refusals.append(message)
        if self.take is not None:
            self.take.event(kind, message, tick=self.clock.tick, **data)

    def _finish(self) -> None:
        if self.vcam is not None:
            sent = self.vcam.sender.stats
            self.vcam_summary = {
                "samples": self.vcam.published, "freed_sent": sent.freed_sent,
                "otrk_samples_sent": sent.otrk_samples_sent, "send_errors": sent.send_errors,
                "freed_latency_mean_us": (sent.freed_latency.mean_ns or 0) / 1000,
                "freed_latency_max_us": (sent.freed_latency.max_ns or 0) / 1000,
                "otrk_latency_mean_us": (sent.otrk_latency.mean_ns or 0) / 1000,
                "otrk_latency_max_us": (sent.otrk_latency.max_ns or 0) / 1000}
            self.vcam.close()
        summary = self._summarise()
        if self.timecode_source is not None:
            self.timecode_source.close()
        if self.take is not None:
            self.take_summaries.append((str(self.take.path), summary))
            self.take.finish(summary)
