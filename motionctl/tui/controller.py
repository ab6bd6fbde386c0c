"""The operator's rig session behind the terminal UI: one connection, one streamer, many moves and takes.

No Textual here.  Every method returns at once: anything that plans, connects or waits runs on the
controller's own worker thread, in order; E-stop never waits behind it (it goes straight to the drives
from the caller's thread).  The UI reads :meth:`telemetry` at its own refresh rate: the servo thread's
latest values, coalesced (the latest wins), never a queue that could fall behind.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from motionctl.errors import HardwareError, InputError, MotionctlError
from motionctl.planner import Plan
from motionctl.planner.reverse import reverse_plan
from motionctl.runtime.jog import JogRequest
from motionctl.runtime.states import RunState, StreamerOptions
from motionctl.runtime.streamer import Streamer
from motionctl.runtime.takes import TakeWriter
from motionctl.tui.library import Library, Verdict
from motionctl.tui.telemetry import Telemetry, build_telemetry

FINAL = (RunState.DONE, RunState.STOPPED, RunState.FAULTED, RunState.ESTOPPED)
TIMECODE_MODES = ("manual", "internal")


@dataclass
class Settings:
    sim: bool = True
    transport: str | None = None            # with sim: "serial" or "can"
    hw: str | None = None                   # a transport URL overriding the rig's
    takes_dir: Path = Path("takes")
    rate_hz: int | None = None
    ltc_file: str | None = None             # adds "ltc:FILE" to the timecode modes
    faults: list[str] = field(default_factory=list)
    options: StreamerOptions = StreamerOptions()
    clock: str = "wall"                     # with sim: "sim" keeps simulated lock-step time, paced to the wall


class RigController:
    """Connect, load, go to start, arm, run, stop, E-stop, jog, teach; all non-blocking."""

    def __init__(self, settings: Settings, library: Library) -> None:
        self.settings = settings
        self.library = library
        self.streamer: Streamer | None = None
        self.driver = None
        self._stop_sim = None
        self.plan: Plan | None = None               # the loaded (legal) move's forward plan
        self.plan_digest = ""                       # SHA-256 of the move file it was planned from
        #: Why nothing can run although a move is on screen (a teach made it illegal), or "".
        self.not_runnable = ""
        self.shown_plan: Plan | None = None         # the last move selected, legal or not (move screen)
        self.backwards = False
        self.loop = False
        self.override_pct = 100
        self.timecode_modes = TIMECODE_MODES + ((f"ltc:{settings.ltc_file}",) if settings.ltc_file else ())
        self.timecode_mode = "manual"
        self.frame_cursor = 0                       # the frame a taught key goes to
        self.log: deque[tuple[str, str]] = deque(maxlen=2000)      # (level, text), drained by the UI
        self.said = 0                               # entries ever logged (the deque keeps the last 2000)
        self._events_seen = 0
        self._last_refusal = ""
        self._take_open = False
        self.takes_closed = 0
        self._last_state: RunState | None = None
        self._work = ThreadPoolExecutor(max_workers=1, thread_name_prefix="motionctl-tui-work")
        self.busy = ""                              # what the worker is doing, for the status line
        self._reversed: tuple[Plan, Plan] | None = None
        #: A timecode source for the mode "stage" (the stage network's daemon sets it): plan, run clock ->
        #: source; and the wall clock at the tick the last run started (stage displays, benchmarks).
        self.stage_timecode = None
        self.run_started_unix_ns = 0

    # -- plumbing -----------------------------------------------------------------------------------
    def say(self, text: str, level: str = "info") -> None:
        self.log.append((level, text))
        self.said += 1

    def said_since(self, count: int) -> list[tuple[str, str]]:
        """The entries logged after the first ``count`` ever (as many as the log still keeps)."""
        entries = list(self.log)
        new = self.said - count
        return entries[len(entries) - min(new, len(entries)):] if new > 0 else []

    def submit(self, what: str, fn, *args) -> Future:
        """Run ``fn`` on the worker; errors end up in the log in plain words, never as tracebacks (a caller
        that answers for them, the stage daemon, reads them there: :meth:`said_since`)."""
        def job():
            self.busy = what
            try:
                return fn(*args)
            except MotionctlError as exc:
                self.say(f"{what}: {exc}", "error")
            except Exception as exc:            # a bug: say so, keep the UI alive
                self.say(f"{what}: internal error {type(exc).__name__}: {exc}", "error")
            finally:
                self.busy = ""
        return self._work.submit(job)

    @property
    def state(self) -> RunState | None:
        return self.streamer.state if self.streamer is not None else None

    @property
    def at_rest(self) -> bool:
        return self.streamer is None or self.streamer.state in (RunState.IDLE, RunState.AT_START,
                                                                RunState.STOPPED, RunState.DONE,
                                                                RunState.FAULTED, RunState.ESTOPPED)

    # -- moves ----------------------------------------------------------------------------------------
    def select_move(self, path: Path) -> Future:
        return self.submit(f"loading {path.name}", self._select_move, Path(path))

    def _select_move(self, path: Path) -> None:
        if not self.at_rest:
            raise HardwareError("stop the rig before loading another move")
        entry = self.library.check(path)
        self.shown_plan = entry.plan               # the move screen shows it, legal or not
        if entry.verdict is not Verdict.LEGAL or entry.plan is None:
            # The screens now show this move: the one loaded before must not run under it.
            self.plan, self.plan_digest = None, ""
            self.not_runnable = f"{path.name} is {entry.verdict.phrase}, not loaded: load a legal move"
            raise InputError(f"{path.name} is {entry.verdict.phrase}: {entry.summary} (nothing runs that breaks a "
                             "limit or a clearance)")
        plan = entry.plan
        if self.streamer is not None and plan.rig.file != self.streamer.plan.rig.file:
            self._disconnect()
        self.plan, self.backwards, self.frame_cursor = plan, False, 0
        self.plan_digest, self.not_runnable = entry.digest, ""
        if self.streamer is None:
            self._connect(plan)
        else:
            self._load_into_streamer()
        self.say(f"loaded {plan.move.name} ({plan.report.duration_s:.1f} s, legal)")

    def _connect(self, plan: Plan) -> None:
        from motionctl.hal import open_driver

        url = self.settings.hw
        clock = device = None
        if self.settings.sim:
            from motionctl.cli.run import start_simulator
            wire = {"serial": "serial://", "can": f"can://virtual/motionctl-tui-{id(self)}"}.get(
                self.settings.transport or "", self.settings.hw)
            if self.settings.clock == "sim":
                from motionctl.runtime.clock import SimClock
                clock = SimClock(plan.rate_hz, paced=True)
            self._stop_sim, url, device = start_simulator(plan.rig, wire, self.settings.faults,
                                                          lockstep=clock is not None)
            self.say(f"simulated drives ready on {url}" + (" (simulated time)" if clock is not None else ""))
        driver = (open_driver(plan.rig, url, rate_hz=plan.rate_hz) if clock is None else
                  open_driver(plan.rig, url, rate_hz=plan.rate_hz, lockstep=True, now_ns=clock.now_ns))
        driver.open()
        if clock is not None:
            from motionctl.runtime.simtime import lock_step
            lock_step(clock, device, driver)
        self.driver = driver
        streamer = Streamer(plan, driver, options=self.settings.options, clock=clock, on_state=self._on_state)
        streamer.run_in_thread()
        if not streamer.ready.wait(5.0) or streamer.state is RunState.FAULTED:
            message = streamer.fault_message or "the drives did not answer"
            streamer.shutdown()
            self._close_driver()
            raise HardwareError(message)
        driver.enable()
        self.streamer, self._events_seen = streamer, 0
        self.say(f"connected to {plan.rig.name} on {driver.url} at {plan.rate_hz} Hz")

    def _on_state(self, state: RunState, message: str) -> None:
        """On the servo thread, at the tick the state changes: keep the wall time a run starts."""
        if state is RunState.RUNNING:
            self.run_started_unix_ns = time.time_ns()

    def _close_driver(self) -> None:
        if self.driver is not None:
            try:
                self.driver.close()
            finally:
                self.driver = None
        if self._stop_sim is not None:
            self._stop_sim()
            self._stop_sim = None

    def _disconnect(self) -> None:
        if self.streamer is not None:
            self.streamer.end_take()
            time.sleep(0.05)
            self.streamer.shutdown()
            self.streamer = None
        self._close_driver()

    def close(self) -> None:
        """Leave: a controlled stop if anything moves, then disconnect."""
        if self.streamer is not None and not self.at_rest:
            self.streamer.stop()
            self.streamer.wait_for(set(FINAL) | {RunState.IDLE}, 30.0)
        self._work.shutdown(wait=False, cancel_futures=True)
        self._disconnect()

    def active_plan(self) -> Plan | None:
        """The plan to run: the selected move's, or the same reversed (made once per plan)."""
        if self.plan is None or not self.backwards:
            return self.plan
        if self._reversed is None or self._reversed[0] is not self.plan:
            self._reversed = (self.plan, reverse_plan(self.plan))
        return self._reversed[1]

    def _timecode_source(self, plan: Plan):
        if self.timecode_mode == "manual":
            return None
        clock = self.streamer.clock if self.streamer is not None else None
        if self.timecode_mode == "stage" and self.stage_timecode is not None:
            return self.stage_timecode(plan, clock.now_ns if clock is not None else None)
        from motionctl.runtime.chase import timecode_source
        return timecode_source(self.timecode_mode, plan.move.rate, plan.move.start,
                               clock=clock.now_ns if clock is not None and clock.simulated else None)

    def _load_into_streamer(self) -> None:
        """Put the active plan (direction, fresh timecode source) into the streamer and wait until it is."""
        streamer, plan = self.streamer, self.active_plan()
        streamer.load(plan, self._timecode_source(plan))
        deadline = time.monotonic() + 2.0
        while streamer.plan is not plan and time.monotonic() < deadline:
            time.sleep(0.005)
        if streamer.plan is not plan:
            raise HardwareError(streamer.refusals[-1] if streamer.refusals else "the rig did not take the move")

    # -- transport -----------------------------------------------------------------------------------
    def _need(self) -> Streamer:
        if self.streamer is None:
            raise HardwareError("no rig connected: load a move first (2, then enter)")
        return self.streamer

    def go_to_start(self) -> Future:
        return self.submit("go to start", self._go_to_start)

    def _runnable(self) -> Plan:
        """The plan that may run: never one other than the move on screen."""
        if self.plan is None:
            raise HardwareError(self.not_runnable or "no move loaded: load one first (2, then enter)")
        return self.plan

    def _go_to_start(self) -> None:
        streamer = self._need()
        self._runnable()
        if streamer.state in (RunState.FAULTED, RunState.ESTOPPED):
            raise HardwareError(f"the rig is {streamer.state.value}: press x to reset first")
        self._load_into_streamer()      # the direction and a fresh timecode source, every time
        plan = self.active_plan()
        take = TakeWriter(self.settings.takes_dir, {
            "move": plan.move.name, "move_file": plan.move.file, "rig": plan.rig.name, "fps": plan.move.rate.label,
            "start_timecode": plan.move.start.label, "transport": self.driver.url,
            "speed": self.override_pct / 100, "duration_s": plan.trajectory.duration_s,
            "backwards": self.backwards, "timecode": self.timecode_mode, "move_sha256": self.plan_digest},
            self.driver.axis_names, plan.rate_hz)
        streamer.begin_take(take)
        self._take_open = True
        streamer.set_override(self.override_pct / 100)
        streamer.go_to_start()
        self.say(f"going to the start of {plan.move.name}; take {take.path.name}")

    def arm(self) -> None:
        streamer = self._need()
        if self.plan is None:
            self.say(self.not_runnable or "no move loaded", "warn")
            return
        streamer.arm()

    def run(self) -> None:
        streamer = self._need()
        if self.plan is None:
            self.say(self.not_runnable or "no move loaded", "warn")
            return
        if streamer.lock is not None:
            self.say("on timecode the move starts itself on its start frame: arm it (a)", "warn")
            return
        streamer.start()

    def stop(self) -> None:
        if self.streamer is not None:
            self.streamer.stop()

    def estop(self) -> None:
        """Straight to the drives from this thread: never queued behind the worker."""
        if self.streamer is not None:
            self.streamer.estop()
            self.say("E-STOP: every axis quick-stopped", "error")
        elif self.driver is not None:
            self.driver.quick_stop()
            self.say("E-STOP: every axis quick-stopped", "error")
        else:
            self.say("E-stop: no rig connected", "warn")

    def reset(self) -> Future:
        return self.submit("fault reset", lambda: self._need().reset())

    def set_override(self, pct: int) -> None:
        self.override_pct = int(min(100, max(5, pct)))
        if self.streamer is not None:
            self.streamer.set_override(self.override_pct / 100)

    def toggle_loop(self) -> None:
        self.loop = not self.loop
        self.say(f"loop {'on: the move runs again from the start until stopped' if self.loop else 'off'}")

    def toggle_direction(self) -> None:
        if not self.at_rest:
            self.say("change direction at rest only", "warn")
            return
        self.backwards = not self.backwards
        self.say("direction: " + ("backwards (from the end pose back to the start; go to start first)"
                                  if self.backwards else "forwards"))

    def cycle_timecode(self) -> None:
        if not self.at_rest:
            self.say("change the timecode source at rest only", "warn")
            return
        modes = self.timecode_modes
        self.timecode_mode = modes[(modes.index(self.timecode_mode) + 1) % len(modes)]
        self.say(f"timecode: {self.timecode_mode}" + (" (arm starts the move on its start timecode)"
                                                       if self.timecode_mode != "manual" else ""))

    # -- jog and teach ------------------------------------------------------------------------------
    def jog(self, request: JogRequest) -> None:
        self._need().jog(request)

    def teach(self) -> Future:
        return self.submit("teach", self._teach)

    def _teach(self) -> Path:
        from motionctl.fileio import write_atomic
        from motionctl.spec.move_edit import key_table, put_key

        streamer, plan = self._need(), self.plan or self.shown_plan     # an illegal move may be taught legal
        if plan is None:
            raise HardwareError("no move on screen to teach into")
        if streamer.state not in (RunState.IDLE, RunState.AT_START, RunState.STOPPED, RunState.DONE):
            raise HardwareError(f"teach at rest only (now {streamer.state.value})")
        measured = streamer.last_state
        if measured is None:
            raise HardwareError("no feedback from the drives to teach from")
        values = dict(zip(self.driver.axis_names, measured.positions))
        rig = plan.rig
        joints = {a.name: float(a.to_file(values[a.name])) for a in rig.axes}
        lens = {l.name: float(values[l.name]) for l in rig.lens if l.name in values}
        frame = int(self.frame_cursor)
        path = Path(plan.move.file)
        stamp = time.strftime("%H:%M:%S")
        text = put_key(path.read_text(encoding="utf-8"), key_table(frame, joints, lens, f"taught {stamp}"), frame)
        backup = path.with_name(path.name + ".bak")
        if not backup.exists():
            write_atomic(backup, path.read_bytes())
        write_atomic(path, text)
        self.say(f"taught key at frame {frame} ({plan.move.timecode_at(frame)}) into {path.name}"
                 f" (previous version kept as {backup.name})")
        entry = self.library.check(path)
        self.shown_plan = entry.plan
        if entry.verdict is Verdict.LEGAL and entry.plan is not None:
            self.plan, self.plan_digest, self.not_runnable = entry.plan, entry.digest, ""
            self.say(f"{path.name} re-checked: legal ({entry.summary}); go to start to run it")
            self._load_into_streamer()
        else:
            # The plan in the streamer is the move as it was before the teach: it must not run while the
            # screens show the edited move.  Nothing runs until the move is legal again or another loads.
            self.plan, self.plan_digest = None, ""
            self.not_runnable = (f"{path.name} is {entry.verdict.phrase} since the teach ({entry.summary}): "
                                 "nothing runs until it is legal again (teach, edit) or another move is loaded")
            self.say(f"{path.name} re-checked: {entry.verdict.value}: {entry.summary}", "warn")
        return path

    # -- the UI's refresh ----------------------------------------------------------------------------
    def poll(self) -> None:
        """Called at the UI's refresh rate: new runtime events to the log, take bookkeeping, looping."""
        streamer = self.streamer
        if streamer is None:
            return
        events = streamer.events
        while self._events_seen < len(events):
            kind, message = events[self._events_seen]
            self._events_seen += 1
            # The terminal's auto-repeat asks again 25-40 times a second: one refusal said once, so that it
            # does not push the fault's reason out of the log.
            if kind == "refused" and message == self._last_refusal:
                continue
            self._last_refusal = message if kind == "refused" else ""
            level = {"fault": "error", "refused": "warn"}.get(kind, "info")
            self.say(explain(kind, message), level)
        state = streamer.state
        if state is not self._last_state:
            self._last_state = state
            if state in FINAL and self._take_open:
                streamer.end_take()
                self._take_open = False
                self.takes_closed += 1
            if state is RunState.DONE and self.loop:
                self.say("loop: again from the start")
                self.submit("loop", self._loop_again)

    def _loop_again(self) -> None:
        self._go_to_start()
        if self.streamer.wait_for({RunState.AT_START} | set(FINAL) - {RunState.DONE}, 120) is RunState.AT_START:
            self.streamer.arm()
            if self.streamer.wait_for({RunState.ARMED}, 2) is RunState.ARMED and self.streamer.lock is None:
                self.streamer.start()

    def telemetry(self) -> Telemetry:
        return build_telemetry(self)

    def last_take_summary(self) -> tuple[str, dict] | None:
        streamer = self.streamer
        return streamer.take_summaries[-1] if streamer is not None and streamer.take_summaries else None


def explain(kind: str, message: str) -> str:
    """Runtime events in an operator's words, with what to do next where there is something to do."""
    if kind == "fault":
        return f"FAULT: {message}. The rig stopped; press x to reset, then g to go to start again."
    if kind == "refused":
        return f"refused: {message}"
    return message

