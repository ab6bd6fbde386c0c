"""The rig daemon: one rig on the stage network (``motionctl serve``).

The daemon owns its rig as the terminal UI does (:class:`~motionctl.tui.controller.RigController`: the
connection, the streamer, moves, takes); the servo loop never crosses the network.  On Zenoh it shows the
rig (status at 20 Hz, events, a liveliness token) and answers commands (:mod:`motionctl.stage.messages`).

Safety, in the order it is applied to a command that would move the rig:

1. Under ``[security]`` Zenoh's access control lets only the operators' certificates query
   ``cmd/motion/**`` at all; without ``[security]`` every such command is refused unless the daemon was
   started with ``--insecure`` (a closed test network).
2. The command's station must be on the stage now (its liveliness token is alive): a station the daemon
   cannot watch could not be stopped for.
3. The rig's own rules (a legal move, at rest to load, at the start to run) refuse the rest, in words.

The station whose go-to-start or run is in force is the rig's *owner*.  When its liveliness token goes
(it closed, crashed, or the network between them failed past the 1 s lease) the daemon brings the rig to
a controlled stop, and an armed rig is disarmed: nothing moves without someone watching.  Stop and
E-stop are answered on Zenoh's own thread at once; commands that plan or connect run one at a time on a
worker thread of their own, so a stop is never queued behind them.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

from motionctl.errors import HardwareError, MotionctlError
from motionctl.runtime.states import RunState
from motionctl.stage.messages import (Command, Event, Keys, MessageError, PlanShare, Reply, RigStatus, TimecodeFrame,
                                      Verb)
from motionctl.stage.netfile import StageNet
from motionctl.stage.timecode import StageTimecode
from motionctl.stage.zconfig import node_config, to_json5
from motionctl.tui.controller import RigController, Settings
from motionctl.tui.library import Library

STATUS_HZ = 20.0
#: States in which a rig moves, or may start to (armed on timecode): what losing the owner stops.
_OWNED = (RunState.GOING_TO_START, RunState.ARMED, RunState.RUNNING, RunState.JOGGING)
_REST = (RunState.IDLE, RunState.AT_START, RunState.STOPPED, RunState.DONE, RunState.FAULTED, RunState.ESTOPPED)


class RigDaemon:
    """One rig, served on the stage network.  :meth:`start`, then :meth:`close` (or :meth:`serve`)."""

    def __init__(self, net: StageNet, rig: str, settings: Settings, *, insecure: bool = False,
                 move: Path | None = None) -> None:
        self.net, self.node = net, net.rig(rig)
        self.name = rig
        self.keys = Keys(net.stage)
        self.insecure = insecure
        self.controller = RigController(settings, Library([], settings.rate_hz))
        self.controller.stage_timecode = self._timecode_source
        self._timecode: StageTimecode | None = None       # the source of the move in the streamer, if on timecode
        self._first_move = move
        self.owner = ""
        self._owner_session = ""
        self.stations: set[tuple[str, str]] = set()     # (station, session) with a live token
        self._lock = threading.Lock()
        self._quit = threading.Event()
        self._leave = threading.Event()
        self._closing = False
        self._session = None
        self._declared: list = []
        self._motion_queue: queue.Queue = queue.Queue()        # motion commands, one at a time, in order
        self._threads: list[threading.Thread] = []
        self._logged = 0
        self._seq = 0
        self._stops = 0                                  # stops and E-stops received (voids waiting commands)

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> RigDaemon:
        import zenoh

        config = node_config(self.net, self.node, enforce=True)
        try:
            self._session = zenoh.open(zenoh.Config.from_json5(to_json5(config)))
        except zenoh.ZError as exc:
            raise HardwareError(f"cannot join the stage network as {self.name} on {self.net.endpoint(self.node)}: "
                                f"{exc}") from None
        session = self._session
        already = [r for r in session.liveliness().get(self.keys.rig_alive(self.name), timeout=1.0) if r.ok]
        if already:
            session.close()
            raise HardwareError(f'a rig named "{self.name}" is already on stage "{self.net.stage}": each daemon '
                                "needs its own [[rig]] of the stage network file")
        watch = session.liveliness().declare_subscriber(self.keys.stations_alive, self._on_station, history=True)
        safe = session.declare_queryable(f"{self.keys.safe(self.name)}/*", self._on_safe)
        # One queryable per station that may move the rig: access control lets each station's
        # certificate reach only its own (the key then names a sender the network vouched for).
        movers = self.net.security.operators if self.net.security is not None else [s.name for s in self.net.stations]
        motion = [session.declare_queryable(f"{self.keys.motion(self.name, station)}/*", self._queue_motion)
                  for station in movers]
        self._status_pub = session.declare_publisher(self.keys.state(self.name))
        self._event_pub = session.declare_publisher(self.keys.event(self.name))
        timecode = session.declare_subscriber(self.keys.timecode, self._on_timecode)
        share = session.declare_queryable(self.keys.plan(self.name), self._on_plan)
        token = session.liveliness().declare_token(self.keys.rig_alive(self.name))
        self._declared = [watch, safe, *motion, self._status_pub, self._event_pub, timecode, share, token]
        for target, name in ((self._serve_motion, "motion"), (self._publish, "status")):
            thread = threading.Thread(target=target, name=f"motionctl-stage-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self._first_move is not None:
            threading.Thread(target=self._load_first, args=(self._first_move,), name="motionctl-stage-load",
                             daemon=True).start()
        return self

    def _load_first(self, path: Path) -> None:
        """The move named at start, checked as a station's ``load`` would be (this rig's, legal)."""
        try:
            accepted, why = self._load(path)
        except MotionctlError as exc:
            accepted, why = False, str(exc)
        if not accepted:
            self._event("refused", f"not loaded: {why}")

    def _queue_motion(self, query) -> None:
        """A motion command waits its turn with the count of stops so far: a stop while it waits voids it."""
        with self._lock:
            stops = self._stops
        self._motion_queue.put((query, stops))

    def serve(self) -> None:
        """Until :meth:`leave` (from a signal handler, say), then :meth:`close` on this thread."""
        try:
            while not self._leave.wait(0.2):
                pass
        finally:
            self.close()

    def leave(self) -> None:
        """Ask :meth:`serve` to close the daemon (safe from a signal handler: it only sets a flag)."""
        self._leave.set()

    def close(self) -> None:
        """Leave the stage: a controlled stop if the rig moves, then disconnect."""
        if self._closing:
            return
        self._closing = True          # motion commands are refused from now on
        try:
            self.controller.close()   # the status keeps coming while the rig stops
        finally:
            self._quit.set()
            for declared in reversed(self._declared):
                try:
                    declared.undeclare()
                except Exception:         # noqa: BLE001 - the session may already be gone
                    pass
            if self._session is not None:
                self._session.close()
            for thread in self._threads:
                thread.join(2.0)

    # -- what the station sees -------------------------------------------------------------------------
    def status(self) -> RigStatus:
        telemetry = self.controller.telemetry()
        controller = self.controller
        take = controller.last_take_summary()
        state = telemetry.state.value if telemetry.state is not None else "disconnected"
        verdict = "legal" if controller.plan is not None else controller.not_runnable
        with self._lock:
            self._seq += 1
            seq = self._seq
        plan = controller.active_plan()
        streamer = controller.streamer
        chase = streamer.chase if streamer is not None else None
        return RigStatus(rig=self.name, state=state, move=telemetry.move, verdict=verdict,
                         timecode=telemetry.timecode, tau_s=round(telemetry.fraction * _duration(controller), 3),
                         fault=telemetry.fault, owner=self.owner, take=take[0] if take else "", busy=telemetry.busy,
                         seq=seq, sent_unix_ns=time.time_ns(), fps=plan.move.rate.label if plan else "",
                         start=plan.move.start.label if plan else "", on_timecode=controller.timecode_mode == "stage",
                         start_error_ticks=chase.start_error_ticks if chase is not None else None,
                         run_started_unix_ns=controller.run_started_unix_ns)

    def _publish(self) -> None:
        period = 1.0 / STATUS_HZ
        next_at = time.monotonic()
        while not self._quit.is_set():
            try:
                self.controller.poll()
                self._forward_log()
                self._status_pub.put(self.status().encode())
            except Exception as exc:        # noqa: BLE001 - the status must keep coming; say what broke
                self._event("note", f"status: {type(exc).__name__}: {exc}")
            next_at += period
            self._quit.wait(max(0.0, next_at - time.monotonic()))

    def _forward_log(self) -> None:
        count = self.controller.said
        entries = self.controller.said_since(self._logged)[:count - self._logged]   # none said since, twice
        self._logged = count
        for level, text in entries:
            self._event({"error": "fault", "warn": "refused"}.get(level, "note"), text)

    def _event(self, kind: str, message: str) -> None:
        try:
            self._event_pub.put(Event(self.name, kind, message).encode())
        except Exception:                   # noqa: BLE001 - closing
            pass

    # -- timecode ---------------------------------------------------------------------------------------
    def _timecode_source(self, plan, clock) -> StageTimecode:
        """The controller's source for the mode "stage": fed from the master's frames (:meth:`_on_timecode`)."""
        source = StageTimecode(plan.move.rate, clock=clock or time.monotonic_ns)
        self._timecode = source
        return source

    def _on_timecode(self, sample) -> None:
        source = self._timecode
        if source is None:
            return
        try:
            frame = TimecodeFrame.decode(sample.payload.to_bytes())
        except MessageError:
            return
        source.offer(frame.frame, frame.fps)

    # -- a group's moves, checked together -------------------------------------------------------------
    def _on_plan(self, query) -> None:
        """Share the trajectory this rig would run (the active plan: the loaded move, either direction)."""
        with query:
            plan = self.controller.active_plan()
            if plan is None or plan.trajectory is None:
                query.reply_err(f"{self.name} has no move loaded")
                return
            share = PlanShare.of(self.name, plan.move.name, plan.rate_hz, plan.move.rate.label, plan.move.start.label,
                                 plan.trajectory.q)
            query.reply(self.keys.plan(self.name), share.encode())

    def _group_refusal(self, command: Command) -> str:
        """Why this rig must not go with its group: its move and theirs meet (``check_together``), or a rig
        of the group did not share what it would run.  "" when it may."""
        others = [rig for rig in command.group if rig != self.name]
        if not others:
            return ""
        from motionctl.planner.together import RigRun, check_together
        from motionctl.spec import load_rig
        from motionctl.timecode import FrameRate, Timecode

        plan = self.controller.active_plan()
        if plan is None or plan.trajectory is None:
            return ""                               # nothing to go to: the go-to-start itself refuses
        runs = {self.name: RigRun.of(plan)}
        for rig in others:
            try:
                node = self.net.rig(rig)
            except KeyError as exc:
                return f"cannot check the group: {exc.args[0]}"
            replies = list(self._session.get(self.keys.plan(rig), timeout=10.0))
            ok = [r.ok for r in replies if r.ok is not None]
            if not ok:
                why = replies[0].err.payload.to_string() if replies else "not on the stage network"
                return f"cannot check the group's moves together: {rig}: {why}"
            try:
                share = PlanShare.decode(ok[0].payload.to_bytes())
                rate = FrameRate.parse(share.fps)
                runs[rig] = RigRun(load_rig(node.rig_file), share.joints(), share.rate_hz, rate,
                                   Timecode.parse(share.start, rate))
            except (MessageError, MotionctlError, ValueError) as exc:
                return f"cannot check the group's moves together: {rig}'s plan: {exc}"
        try:
            report = check_together(runs, self.net.margin_m, by_timecode=command.timecode)
        except MotionctlError as exc:
            return f"the group's moves cannot run together: {exc}"
        if not report.ok:
            return "the group's moves are not legal together: " + "; ".join(report.violations())
        return ""

    # -- stations ---------------------------------------------------------------------------------------
    def _on_station(self, sample) -> None:
        import zenoh

        station, session = self.keys.station_of(str(sample.key_expr))
        if sample.kind == zenoh.SampleKind.PUT:
            with self._lock:
                self.stations.add((station, session))
            return
        with self._lock:
            self.stations.discard((station, session))
            owned = (station, session) == (self.owner, self._owner_session)
            if owned:
                self.owner, self._owner_session = "", ""
        state = self.controller.state
        if owned and state in _OWNED:
            self._event("network", f"operator station {station} left the stage network while the rig was "
                        f"{state.value}: controlled stop")
            self.controller.stop()

    # -- commands ----------------------------------------------------------------------------------------
    def _on_safe(self, query) -> None:
        """Stop and E-stop act first, whatever the payload says (a malformed one is reported after)."""
        with query:
            try:
                verb = self.keys.verb_of(str(query.key_expr))
            except ValueError:
                query.reply_err(f"no such command: {query.key_expr}")
                return
            if verb in (Verb.STOP, Verb.ESTOP):
                with self._lock:
                    self._stops += 1              # motion commands waiting behind this one are void now
                if verb is Verb.STOP:
                    self.controller.stop()
                else:
                    self.controller.estop()
            _, command, refusal = self._parse(query)
            who = command.operator if command is not None else "a node that sent no readable command"
            if verb is Verb.STOP:
                self._event("note", f"stop from {who}")
            elif verb is Verb.ESTOP:
                self._event("fault", f"E-stop from {who}")
            elif verb is not Verb.STATUS:
                query.reply_err(f"{verb.value} is not a stop")
                return
            if refusal and verb is Verb.STATUS:
                query.reply_err(refusal)
                return
            query.reply(self.keys.command(self.name, verb, ""),
                        Reply(self.name, verb.value, True, refusal, _plain(self.status())).encode())

    def _serve_motion(self) -> None:
        while not self._quit.is_set():
            try:
                query, stops = self._motion_queue.get(timeout=0.2)
            except queue.Empty:
                continue
            with query:
                try:
                    verb, command, refusal = self._parse(query)
                    if refusal:
                        query.reply_err(refusal)
                        continue
                    sender = self.keys.sender_of(str(query.key_expr))     # the key's: access control vouched
                    command = replace(command, operator=sender)
                    accepted, reason = self._motion(verb, command, stops)
                    query.reply(self.keys.command(self.name, verb, sender),
                                Reply(self.name, verb.value, accepted, reason, _plain(self.status())).encode())
                except Exception as exc:      # noqa: BLE001 - a bug must not end the only motion thread
                    self._event("fault", f"internal error answering a command ({type(exc).__name__}: {exc})")
                    try:
                        query.reply_err(f"internal error: {type(exc).__name__}: {exc}")
                    except Exception:         # noqa: BLE001 - the query may be gone
                        pass

    def _parse(self, query) -> tuple[Verb | None, Command | None, str]:
        try:
            verb = self.keys.verb_of(str(query.key_expr))
        except ValueError:
            return None, None, f"no such command: {query.key_expr}"
        try:
            command = Command.decode(query.payload.to_bytes() if query.payload is not None else b"")
        except MessageError as exc:
            return verb, None, str(exc)
        return verb, command, ""

    def _motion(self, verb: Verb, command: Command, stops: int) -> tuple[bool, str]:
        """Carry out a command that moves the rig (or changes what it will move); (accepted, why not)."""
        if self._closing:
            return False, f"{self.name} is leaving the stage network"
        if self.net.security is None and not self.insecure:
            return False, ("this daemon has no [security]: commands that move the rig need mutual TLS "
                           "(docs/stage-network.md), or --insecure on a closed test network")
        if not self._present(command):
            return False, (f"station {command.operator} is not on the stage network (no liveliness token): the rig "
                           "could not be stopped if it went away")
        controller = self.controller
        try:
            if verb is Verb.LOAD:
                return self._load(Path(command.move))
            since = controller.said
            if verb is Verb.GO:
                if not controller.at_rest:
                    return False, f"the rig is {_state(controller)}: stop it first"
                refusal = self._group_refusal(command)
                if refusal:
                    return False, refusal
                refusal = self._take_ownership(command, stops)
                if refusal:
                    return False, refusal
                controller.timecode_mode = "stage" if command.timecode else "manual"
                _wait(controller.go_to_start())
                return self._still_owned(command, self._outcome({RunState.GOING_TO_START, RunState.AT_START},
                                                                "go to start", since))
            if verb is Verb.RUN:
                if controller.state is not RunState.AT_START:
                    return False, f"the rig is {_state(controller)}: go to the start first"
                refusal = self._take_ownership(command, stops)
                if refusal:
                    return False, refusal
                controller.arm()
                armed = self._still_owned(command, self._outcome({RunState.ARMED}, "arm", since))
                if not armed[0] or controller.streamer.lock is not None:
                    return armed            # on timecode, an armed rig starts itself on its start frame
                controller.run()
                return self._still_owned(command, self._outcome({RunState.RUNNING, RunState.DONE}, "run", since))
            if verb is Verb.RESET:
                _wait(controller.reset())
                return self._outcome({RunState.IDLE}, "reset", since)
            if verb is Verb.OVERRIDE:
                controller.set_override(command.override_pct)
                return True, ""
        except MotionctlError as exc:
            return False, str(exc)
        except Exception as exc:                 # noqa: BLE001 - a bug: refuse in words, keep serving
            return False, f"internal error {type(exc).__name__}: {exc}"
        return False, f"{verb.value} is not a motion command"

    def _present(self, command: Command) -> bool:
        """Whether the station's session holds its token now.  Asked of the network when the token has not
        reached the subscriber yet (a station declares it and asks at once)."""
        key = (command.operator, command.session)
        with self._lock:
            if key in self.stations:
                return True
        if not command.session:
            return False
        token = self.keys.station_alive(*key)
        return any(r.ok is not None for r in self._session.liveliness().get(token, timeout=1.0))

    def _load(self, path: Path) -> tuple[bool, str]:
        """Load a move file of this host; only a move written for this daemon's rig (another rig's would
        connect this daemon to that rig's drives)."""
        from motionctl.spec import load_scene

        scene = load_scene(path)                 # a bad file: InputError, refused in its own words
        if Path(scene.rig.file).resolve() != self.node.rig_file.resolve():
            return False, f"{path} is a move for {scene.rig.file}; {self.name} runs {self.node.rig_file}"
        since = self.controller.said
        _wait(self.controller.select_move(path))
        plan = self.controller.plan
        if plan is None or Path(plan.move.file).resolve() != path.resolve():
            return False, self._refusal_since(since) or f"{path} was not loaded"
        return True, ""

    def _take_ownership(self, command: Command, stops: int) -> str:
        """Just before motion: the station is still there and no stop came since the command arrived; then
        it owns the rig.  Why not, or ""."""
        if not self._present(command):
            return f"station {command.operator} left the stage network before the rig moved"
        with self._lock:
            if self._stops != stops:
                return "a stop came while this command waited: not carried out"
            self.owner, self._owner_session = command.operator, command.session
        return ""

    def _still_owned(self, command: Command, outcome: tuple[bool, str]) -> tuple[bool, str]:
        """After motion began: if the owner left meanwhile (its leaving found no rig to stop yet), stop now."""
        with self._lock:
            owned = (self.owner, self._owner_session) == (command.operator, command.session)
        if outcome[0] and not owned:
            self.controller.stop()
            return False, f"station {command.operator} left the stage network as the rig began: controlled stop"
        if not outcome[0] and self.controller.state in _OWNED:
            self.controller.stop()                    # refused, yet moving: never leave it so
        return outcome

    def _outcome(self, wanted: set[RunState], what: str, since: int) -> tuple[bool, str]:
        """Whether the streamer took the command (it acts on its next tick): the state it leads to, or a
        refusal logged after ``since`` entries of the controller's log."""
        controller = self.controller
        if _until(lambda: controller.state in wanted or self._refusal_since(since) is not None, 5.0) \
                and controller.state in wanted:
            return True, ""
        return False, self._refusal_since(since) or f"{what}: the rig is {_state(controller)}"

    def _refusal_since(self, since: int) -> str | None:
        entries = self.controller.said_since(since)
        return next((text for level, text in entries if level in ("warn", "error")), None)



def _plain(status: RigStatus) -> dict:
    return asdict(status)


def _state(controller: RigController) -> str:
    return controller.state.value if controller.state is not None else "not connected"


def _duration(controller: RigController) -> float:
    plan = controller.active_plan()
    return plan.trajectory.duration_s if plan is not None and plan.trajectory is not None else 0.0


def _wait(future) -> None:
    future.result()


def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True

