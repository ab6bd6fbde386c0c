"""The rig in a process of its own: the servo loop never shares an interpreter (or a GIL) with the UI.

With the UI and the streamer in one process, the UI's redraws held the GIL long enough to leave 1 % of
250 Hz ticks most of a period late (docs/benchmarks.md).  Here the :class:`RigController` (streamer,
driver, simulator) runs in a child process started with ``spawn``; the UI holds a :class:`RigProcess`
with the same interface, which forwards every call over a pipe and returns at once.  The child sends
back one telemetry snapshot every ``TELEMETRY_S`` (the latest wins), log lines, and the outcome of each
call.  E-stop is a message the child's command thread acts on as soon as it arrives; if the child dies,
the drives' own watchdogs stop them and the UI says so.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from motionctl.planner import Plan
from motionctl.runtime.states import RunState
from motionctl.tui.controller import Settings
from motionctl.tui.library import Library, Verdict
from motionctl.tui.telemetry import Telemetry

TELEMETRY_S = 0.05
#: How much the rig process raises its scheduling priority, where allowed.  On a two-core machine the UI, the
#: rig and the simulator compete for the CPU; a scheduler time slice (about 3 ms) is most of a 250 Hz period.
RIG_PRIORITY_BOOST = 10
CALLS = ("go_to_start", "arm", "run", "stop", "estop", "reset", "set_override", "toggle_loop", "toggle_direction",
         "cycle_timecode", "jog", "teach", "select_move")


def _child_main(settings: Settings, folders: list[Path], connection) -> None:
    """The rig process: a controller, a command thread (this one) and a telemetry thread."""
    from concurrent.futures import Future as ChildFuture

    import os

    from motionctl.tui.controller import RigController

    try:        # ahead of the UI for the CPU (allowed for root or with CAP_SYS_NICE / RLIMIT_NICE; else as is)
        os.nice(-RIG_PRIORITY_BOOST)
    except (OSError, AttributeError):
        pass
    controller = RigController(settings, Library(folders, settings.rate_hz))
    send_lock = threading.Lock()
    stop = threading.Event()

    def send(message: tuple) -> None:
        with send_lock:
            try:
                connection.send(message)
            except (OSError, EOFError, BrokenPipeError):
                stop.set()

    def report() -> None:
        closed = -1
        while not stop.wait(TELEMETRY_S):
            try:
                controller.poll()
                while controller.log:
                    send(("log", *controller.log.popleft()))
                if controller.takes_closed != closed:
                    closed = controller.takes_closed
                    send(("takes_closed", closed))
                send(("telemetry", controller.telemetry()))
            except Exception as exc:      # never let the reporter die silently
                send(("log", "error", f"rig process: {type(exc).__name__}: {exc}"))

    reporter = threading.Thread(target=report, name="motionctl-rig-report", daemon=True)
    reporter.start()
    while not stop.is_set():
        try:
            message = connection.recv()
        except (EOFError, OSError):
            break
        kind, call_id, name, args = message
        if kind == "close":
            break
        if name == "teach":
            controller.frame_cursor = args[0]
            args = ()
        try:
            result = getattr(controller, name)(*args)
        except Exception as exc:          # the controller reports its own errors; this is a safety net
            send(("done", call_id, f"{type(exc).__name__}: {exc}", None))
            continue
        if isinstance(result, ChildFuture):
            def finished(future, call_id=call_id, name=name):
                extra = None
                if name in ("select_move", "teach"):
                    shown = controller.shown_plan
                    extra = (str(controller.plan.move.file) if controller.plan else None,
                             str(shown.move.file) if shown else None)
                send(("done", call_id, None, extra))
            result.add_done_callback(finished)
        else:
            send(("done", call_id, None, None))
    stop.set()
    controller.close()
    try:
        connection.send(("closed", None))
    except (OSError, EOFError, BrokenPipeError):
        pass


class RigProcess:
    """The UI's handle on the rig process; the same calls as :class:`RigController`, all non-blocking."""

    def __init__(self, settings: Settings, library: Library) -> None:
        self.settings = settings
        self.library = library
        self.plan: Plan | None = None
        self.shown_plan: Plan | None = None
        self.frame_cursor = 0
        self.log: deque[tuple[str, str]] = deque(maxlen=2000)
        self.takes_closed = 0
        self.override_pct = 100
        self.latest = Telemetry(connected=False)
        self._ids = itertools.count()
        self._pending: dict[int, tuple[str, Future]] = {}
        self._lock = threading.Lock()
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        folders = list(library.folders)
        self._process = context.Process(target=_child_main, args=(settings, folders, child), daemon=True,
                                        name="motionctl-rig")
        self._process.start()
        child.close()
        self._alive = True
        # Outcomes of calls are finished on a thread of their own, in arrival order, off the reader:
        # adopting a loaded move plans it on this side too (0.3-2 s), and telemetry must keep flowing
        # meanwhile.  A daemon thread: a done-callback that waits on a stopped UI cannot hold up exit.
        self._outcomes: queue.SimpleQueue[tuple[Future | None, tuple | None] | None] = queue.SimpleQueue()
        self._adopting = 0                    # loaded moves the reader passed on, not yet planned here
        self._finisher = threading.Thread(target=self._finish_outcomes, name="motionctl-rig-outcome", daemon=True)
        self._finisher.start()
        self._reader = threading.Thread(target=self._read, name="motionctl-rig-reader", daemon=True)
        self._reader.start()

    # -- the pipe -------------------------------------------------------------------------------------
    def _call(self, name: str, *args) -> Future:
        future: Future = Future()
        call_id = next(self._ids)
        with self._lock:
            self._pending[call_id] = (name, future)
            if not self._alive:
                future.set_result(None)
                self.say("the rig process is not running: restart motionctl tui", "error")
                return future
            try:
                self._connection.send(("call", call_id, name, args))
            except (OSError, BrokenPipeError):
                future.set_result(None)
                self.say("the rig process is not running: restart motionctl tui", "error")
        return future

    def _read(self) -> None:
        while True:
            try:
                message = self._connection.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "telemetry":
                self.latest = message[1]
            elif kind == "log":
                self.log.append((message[1], message[2]))
            elif kind == "takes_closed":
                self.takes_closed = message[1]
            elif kind == "done":
                _, call_id, error, extra = message
                with self._lock:
                    name, future = self._pending.pop(call_id, ("", None))
                if error:
                    self.log.append(("error", f"{name}: {error}"))
                if extra is not None:
                    with self._lock:
                        self._adopting += 1
                self._outcomes.put((future, extra))
            elif kind == "closed":
                break
        self._alive = False
        with self._lock:                        # calls the rig process never answered: complete them
            unanswered, self._pending = list(self._pending.values()), {}
        for _, future in unanswered:
            self._outcomes.put((future, None))
        self._outcomes.put(None)
        if self.latest.connected:
            self.log.append(("error", "the rig process ended: the drives stop on their own watchdogs; restart "
                                      "motionctl tui"))
        self.latest = Telemetry(connected=False)

    def _finish_outcomes(self) -> None:
        while (outcome := self._outcomes.get()) is not None:
            future, extra = outcome
            try:
                if extra is not None:
                    self._adopt(*extra)
            except Exception as exc:        # a file changed under us, say: the UI says so and goes on
                self.log.append(("error", f"could not show the loaded move here: {type(exc).__name__}: {exc}"))
            finally:
                if extra is not None:
                    with self._lock:
                        self._adopting -= 1
                if future is not None and not future.done():
                    future.set_result(None)

    def _adopt(self, loaded: str | None, shown: str | None) -> None:
        """The rig process loaded or re-checked a move: the same plan here, from this side's library."""
        if shown is not None:
            self.shown_plan = self.library.check(Path(shown)).plan
        if loaded is None:
            self.plan = None                     # the rig side has no move it would run (refused, taught illegal)
        else:
            entry = self.library.check(Path(loaded))
            self.plan = entry.plan if entry.verdict is Verdict.LEGAL else None

    # -- the controller's interface --------------------------------------------------------------------
    def say(self, text: str, level: str = "info") -> None:
        self.log.append((level, text))

    def telemetry(self) -> Telemetry:
        return self.latest

    def poll(self) -> None:
        return None                       # the reader thread keeps everything current

    @property
    def state(self) -> RunState | None:
        return self.latest.state

    @property
    def busy(self) -> str:
        return self.latest.busy

    @property
    def at_rest(self) -> bool:
        return self.latest.state in (None, RunState.IDLE, RunState.AT_START, RunState.STOPPED, RunState.DONE,
                                     RunState.FAULTED, RunState.ESTOPPED)

    @property
    def timecode_mode(self) -> str:
        return self.latest.timecode_mode

    def select_move(self, path: Path) -> Future:
        return self._call("select_move", Path(path))

    def go_to_start(self) -> Future:
        return self._call("go_to_start")

    def arm(self) -> Future:
        return self._call("arm")

    def run(self) -> Future:
        return self._call("run")

    def stop(self) -> Future:
        return self._call("stop")

    def estop(self) -> Future:
        return self._call("estop")

    def reset(self) -> Future:
        return self._call("reset")

    def set_override(self, pct: int) -> Future:
        self.override_pct = int(min(100, max(5, pct)))     # kept here too: key repeats build on it at once
        return self._call("set_override", self.override_pct)

    def toggle_loop(self) -> Future:
        return self._call("toggle_loop")

    def toggle_direction(self) -> Future:
        return self._call("toggle_direction")

    def cycle_timecode(self) -> Future:
        return self._call("cycle_timecode")

    def jog(self, request) -> Future:
        return self._call("jog", request)

    def teach(self) -> Future:
        if self._adopting:              # the frame cursor may still point into the previous move's plan
            self.say("the move is still loading on this side: teach again in a moment", "warn")
            done: Future = Future()
            done.set_result(None)
            return done
        return self._call("teach", self.frame_cursor)

    def close(self, timeout: float = 30.0) -> None:
        """A controlled stop if anything moves, then the rig process ends (and with it the reader, which
        completes every call still waiting)."""
        if not self._process.is_alive():
            return
        try:
            with self._lock:
                self._connection.send(("close", None, "", ()))
        except (OSError, BrokenPipeError):
            pass
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.latest.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.latest.connected
