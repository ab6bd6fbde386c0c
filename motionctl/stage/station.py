"""An operator station on the stage network: sees every rig, asks them for things (``motionctl stage``).

While a station is open its liveliness token says it is there; a rig whose go-to-start or run it asked
for stops in a controlled way when the token goes.  So a command that moves a rig keeps the station open
until the motion is over (:meth:`Station.wait_for`), as an operator stays at the console during a take.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from motionctl.errors import HardwareError
from motionctl.stage.messages import Command, Event, Keys, MessageError, Reply, RigStatus, TimecodeFrame, Verb
from motionctl.stage.netfile import StageNet
from motionctl.stage.zconfig import node_config, to_json5

#: How long a station waits for a rig's answer to a command that plans (go to start) or loads a move.
ANSWER_S = 60.0
#: How long a fresh station waits for the rigs of the file to be reachable.
JOIN_S = 3.0


class Station:
    def __init__(self, net: StageNet, name: str | None = None) -> None:
        if not net.stations:
            raise HardwareError(f"{net.file} has no [[station]]: an operator station needs one to join as")
        self.net = net
        self.node = net.node(name) if name else net.stations[0]
        self.name = self.node.name
        self.keys = Keys(net.stage)
        self.latest: dict[str, RigStatus] = {}
        self.heard: dict[str, float] = {}           # when each rig's latest status came (monotonic s)
        self.events: deque[Event] = deque(maxlen=1000)
        self._changed = threading.Condition()
        self._session = None
        self.session_id = ""
        self._declared: list = []

    def open(self, on_event: Callable[[Event], None] | None = None, *, token: bool = True,
             on_status: Callable[[RigStatus], None] | None = None) -> Station:
        """Join the stage; with ``token`` this station is watched (a rig it moves stops when it leaves),
        without it, it only looks and stops (``status``, ``stop``, ``estop``)."""
        import zenoh

        config = node_config(self.net, self.node, enforce=False)
        try:
            self._session = zenoh.open(zenoh.Config.from_json5(to_json5(config)))
        except zenoh.ZError as exc:
            raise HardwareError(f"cannot join the stage network as {self.name}: {exc}") from None
        session = self._session

        def on_state(sample) -> None:
            try:
                status = RigStatus.decode(sample.payload.to_bytes())
            except MessageError:
                return
            with self._changed:
                self.latest[status.rig] = status
                self.heard[status.rig] = time.monotonic()
                self._changed.notify_all()
            if on_status is not None:
                on_status(status)

        def on_event_sample(sample) -> None:
            try:
                event = Event.decode(sample.payload.to_bytes())
            except MessageError:
                return
            self.events.append(event)
            if on_event is not None:
                on_event(event)

        self._declared = [
            session.declare_subscriber(self.keys.all_states, on_state),
            session.declare_subscriber(f"{self.keys.rig('*')}/event", on_event_sample),
        ]
        self.session_id = str(session.info.zid())
        if token:
            key = self.keys.station_alive(self.name, self.session_id)
            self._declared.append(session.liveliness().declare_token(key))
        return self

    def close(self) -> None:
        for declared in reversed(self._declared):
            try:
                declared.undeclare()
            except Exception:                   # noqa: BLE001 - closing anyway
                pass
        self._declared = []
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- seeing ----------------------------------------------------------------------------------------
    def rigs_alive(self, timeout: float = 1.0) -> set[str]:
        replies = self._session.liveliness().get(self.keys.rigs_alive, timeout=timeout)
        return {self.keys.rig_of(str(r.ok.key_expr)) for r in replies if r.ok is not None}

    def join(self, rigs: Iterable[str], timeout: float = JOIN_S) -> set[str]:
        """Wait until ``rigs`` are reachable (their tokens seen); the ones that are."""
        wanted, deadline = set(rigs), time.monotonic() + timeout
        while True:
            alive = self.rigs_alive(0.5) & wanted
            if alive == wanted or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)

    def wait_for(self, rig: str, done: Callable[[RigStatus], bool], timeout: float) -> RigStatus | None:
        """The rig's status once ``done(status)``, from its 20 Hz stream; None after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                status = self.latest.get(rig)
                if status is not None and done(status):
                    return status
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(min(left, 0.2))

    # -- asking ----------------------------------------------------------------------------------------
    def ask(self, rig: str, verb: Verb, *, move: str = "", override_pct: int = 100, timecode: bool = False,
            group: tuple[str, ...] = (), timeout: float = ANSWER_S) -> Reply:
        """One command to one rig, and its reply; no answer at all is a refusal that says why it may be.
        ``group``: for go, the rigs that will run with it (each checks their moves together)."""
        payload = Command(self.name, move, override_pct, self.session_id, timecode, tuple(group)).encode()
        key = self.keys.command(rig, verb, self.name)
        replies = list(self._session.get(key, payload=payload, timeout=timeout))
        for reply in replies:
            if reply.ok is not None:
                try:
                    return Reply.decode(reply.ok.payload.to_bytes())
                except MessageError as exc:
                    return Reply(rig, verb.value, False, f"unreadable reply: {exc}")
            text = reply.err.payload.to_string()
            return Reply(rig, verb.value, False, f"no answer within {timeout:g} s" if text == "Timeout" else text)
        why = ("not on the stage network" if rig not in self.rigs_alive(0.5) else
               "no answer: this station may not send that command to it (under [security] only the operators "
               "of the stage network file may move a rig)")
        return Reply(rig, verb.value, False, why)

    def timecode_master(self, rate, start):
        """Be the stage's timecode master from ``start`` (a :class:`~motionctl.timecode.Timecode`) at
        ``rate``: a :class:`~motionctl.stage.timecode.TimecodeMaster`, started; stop it when done."""
        from motionctl.stage.timecode import TimecodeMaster

        publisher = self._session.declare_publisher(self.keys.timecode)
        self._declared.append(publisher)
        label = rate.label
        return TimecodeMaster(lambda frame: publisher.put(TimecodeFrame(frame, label).encode()), rate, start).start()

    def master_for(self, replies: dict[str, Reply], preroll_s: float = 2.0):
        """Every rig of ``replies`` (to ``run``) armed on the stage's timecode: be its master from
        ``preroll_s`` before the earliest start.  (master, "") or (None, why not)."""
        from motionctl.timecode import FrameRate, Timecode

        statuses = [r.status for r in replies.values()]
        if not all(s.get("on_timecode") and s.get("state") == "armed" for s in statuses):
            return None, "not every rig is armed on the stage's timecode: go --timecode first, then run --timecode"
        rates = {s.get("fps") for s in statuses}
        if len(rates) != 1:
            return None, f"the moves are at different frame rates ({', '.join(sorted(rates))}): one timecode needs one"
        rate = FrameRate.parse(rates.pop())
        first = min(Timecode.parse(s["start"], rate) for s in statuses)
        start = first - min(int(round(preroll_s * float(rate.fps))), first.frame)
        return self.timecode_master(rate, start), ""
