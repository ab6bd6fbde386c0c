"""The operator station behind ``motionctl tui --stage``: every rig of the stage, driven as one group.

No Textual here (the app in :mod:`motionctl.tui.stage_app` only draws and forwards keys).  Every method
returns at once: go, run and reset wait on the rigs, so they run one at a time on a worker thread; stop
and E-stop go out at once from the caller's thread, to every rig, never queued behind the worker.  While
the station is open its token is on the network, so a rig it moved stops when it goes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from motionctl.stage.messages import Event, Reply, RigStatus, Verb
from motionctl.stage.netfile import StageNet
from motionctl.stage.station import Station

STALE_S = 1.0
REST = ("idle", "at start", "done", "stopped", "faulted", "e-stopped", "disconnected")


@dataclass(frozen=True)
class Row:
    """One rig, as the station's table shows it."""

    rig: str
    reachable: bool
    status: RigStatus | None


class StageOperator:
    def __init__(self, net: StageNet, station: str | None = None, preroll_s: float = 2.0) -> None:
        self.net = net
        self.station = Station(net, station)
        self.rigs = [r.name for r in net.rigs]
        self.timecode = False                    # go and run on the stage's timecode (this station its master)
        self.preroll_s = preroll_s
        self.log: deque[tuple[str, str]] = deque(maxlen=2000)
        self.busy = ""
        self._stops = 0                            # stops and E-stops pressed: a group command in flight ends
        self._work = ThreadPoolExecutor(max_workers=1, thread_name_prefix="motionctl-stage-work")
        self._master = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------
    def open(self) -> StageOperator:
        self.station.open(on_event=self._on_event)
        return self

    def close(self) -> None:
        """Leave the stage (rigs this station moved stop in a controlled way when its token goes)."""
        self._work.shutdown(wait=False, cancel_futures=True)
        self._stop_master()
        self.station.close()

    def _on_event(self, event: Event) -> None:
        self.say(f"{event.rig}: {event.message}", {"fault": "error", "refused": "warn"}.get(event.kind, "info"))

    def say(self, text: str, level: str = "info") -> None:
        self.log.append((level, text))

    # -- what the table shows ----------------------------------------------------------------------------
    def rows(self) -> list[Row]:
        """A rig whose status stopped coming (20 Hz) for a second is shown as off the network."""
        latest, heard, now = dict(self.station.latest), dict(self.station.heard), time.monotonic()
        rows = []
        for rig in self.rigs:
            fresh = now - heard.get(rig, -1e9) < STALE_S
            rows.append(Row(rig, fresh, latest.get(rig) if fresh else None))
        return rows

    # -- the rigs, all together ---------------------------------------------------------------------------
    def estop(self) -> None:
        """E-stop every rig, now, from this thread (each answered on its daemon's network thread)."""
        self._stops += 1
        for rig in self.rigs:
            threading.Thread(target=self._ask_now, args=(rig, Verb.ESTOP), daemon=True).start()
        self.say("E-STOP sent to every rig", "error")
        self._stop_master()

    def stop(self) -> None:
        self._stops += 1
        for rig in self.rigs:
            threading.Thread(target=self._ask_now, args=(rig, Verb.STOP), daemon=True).start()
        self.say("stop sent to every rig")

    def _ask_now(self, rig: str, verb: Verb) -> None:
        reply = self.station.ask(rig, verb, timeout=5.0)
        if not reply.accepted:
            self.say(f"{rig}: {verb.value} refused: {reply.reason}", "error")

    def toggle_timecode(self) -> None:
        self.timecode = not self.timecode
        self.say("start: " + ("on the stage's timecode (this station its master)" if self.timecode else
                              "together at once, when run"))

    def go(self) -> None:
        self._submit("go to start", self._go)

    def run(self) -> None:
        self._submit("run", self._run)

    def reset(self) -> None:
        self._submit("reset", lambda: self._each(Verb.RESET))

    def _submit(self, what: str, job) -> None:
        if self.busy:         # never queue a go or a run behind another: it would fire when that one ends
            self.say(f"{what}: not now, the station is busy ({self.busy}); stop first to end it", "warn")
            return
        self.busy = what

        def work() -> None:
            self.busy = what
            try:
                job()
            except Exception as exc:       # noqa: BLE001 - say it; the station stays up
                self.say(f"{what}: {type(exc).__name__}: {exc}", "error")
            finally:
                self.busy = ""
        self._work.submit(work)

    def _each(self, verb: Verb, **kwargs: object) -> dict[str, Reply]:
        """``verb`` to every rig in turn; a stop pressed meanwhile ends it (the rest are not asked)."""
        stops, replies = self._stops, {}
        for rig in self.rigs:
            if self._stops != stops:
                replies[rig] = Reply(rig, verb.value, False, "a stop was pressed: not asked")
                continue
            replies[rig] = self.station.ask(rig, verb, **kwargs)
        for rig, reply in replies.items():
            if reply.accepted:
                self.say(f"{rig}: {verb.value} accepted")
            else:
                self.say(f"{rig}: {verb.value} refused: {reply.reason}", "warn")
        return replies

    def _go(self) -> None:
        self._each(Verb.GO, timecode=self.timecode, group=tuple(self.rigs))

    def _run(self) -> None:
        replies = self._each(Verb.RUN)
        if not all(r.accepted for r in replies.values()):
            self.stop()                            # no rig of the group is left armed or running alone
            return
        if not (self.timecode or any(r.status.get("on_timecode") for r in replies.values())):
            return
        master, why = self.station.master_for(replies, self.preroll_s)
        if master is None:
            self.say(f"not started: {why}", "warn")
            self.stop()
            return
        with self._lock:
            self._master = master
        self.say("timecode master: rolling")
        after = {rig: int(r.status.get("seq", 0)) for rig, r in replies.items()}
        for rig in self.rigs:
            self.station.wait_for(rig, lambda s, n=after[rig]: s.seq > n and s.state in REST, 3600.0)
        self._stop_master()
        self.say("timecode master: stopped (every rig at rest)")

    def _stop_master(self) -> None:
        with self._lock:
            master, self._master = self._master, None
        if master is not None:
            master.stop()
