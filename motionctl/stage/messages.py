"""The stage network's key space and messages, version 1 (pure: names and JSON, no Zenoh).

Key space (``<stage>``, ``<rig>`` and ``<station>`` are the names of the stage network file)::

    motionctl/v1/<stage>/rig/<rig>/alive                liveliness token of the rig's daemon
    motionctl/v1/<stage>/rig/<rig>/state                RigStatus, 20 Hz, latest wins
    motionctl/v1/<stage>/rig/<rig>/event                Event, one per runtime event
    motionctl/v1/<stage>/rig/<rig>/cmd/safe/<verb>      queryable: status, stop, estop (anyone on the stage)
    motionctl/v1/<stage>/rig/<rig>/cmd/motion/<station>/<verb>
                                                        queryable: load, go, run, reset, override (operators)
    motionctl/v1/<stage>/station/<station>/<session>    liveliness token of an operator station's session
    motionctl/v1/<stage>/timecode                       TimecodeFrame, one per frame, from the stage's master
    motionctl/v1/<stage>/rig/<rig>/plan                 queryable: PlanShare, the trajectory the rig would run

Why the command keys look like this: access control works on keys, and a query carries nothing else that
says who sent it (its payload and source info are whatever the sender wrote).  Under ``[security]`` only
the certificate named ``<station>`` may query ``cmd/motion/<station>/**`` or hold the token
``station/<station>/**``, so the key names the sender and the network vouches for it; stopping a rig
stays open to every authenticated node of the stage (a stop is never the dangerous direction).

Every message is a JSON object with ``"v": 1``; a reader refuses another version in words rather than
guess at its fields.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum

VERSION = 1
ROOT = f"motionctl/v{VERSION}"


class Verb(Enum):
    """What a station can ask of a rig, and whether it can move the rig."""

    STATUS = "status"
    STOP = "stop"
    ESTOP = "estop"
    LOAD = "load"
    GO = "go"              # go to the loaded move's start
    RUN = "run"            # arm and start (on timecode: armed, it starts on its start frame)
    RESET = "reset"
    OVERRIDE = "override"

    @property
    def moves(self) -> bool:
        return self not in (Verb.STATUS, Verb.STOP, Verb.ESTOP)

    @property
    def branch(self) -> str:
        return "motion" if self.moves else "safe"


@dataclass(frozen=True)
class Keys:
    """The key expressions of one stage."""

    stage: str

    def rig(self, rig: str) -> str:
        return f"{ROOT}/{self.stage}/rig/{rig}"

    def rig_alive(self, rig: str) -> str:
        return f"{self.rig(rig)}/alive"

    def state(self, rig: str) -> str:
        return f"{self.rig(rig)}/state"

    def event(self, rig: str) -> str:
        return f"{self.rig(rig)}/event"

    def command(self, rig: str, verb: Verb, station: str) -> str:
        if verb.moves:
            return f"{self.motion(rig, station)}/{verb.value}"
        return f"{self.safe(rig)}/{verb.value}"

    def plan(self, rig: str) -> str:
        return f"{self.rig(rig)}/plan"

    def safe(self, rig: str) -> str:
        return f"{self.rig(rig)}/cmd/safe"

    def motion(self, rig: str, station: str) -> str:
        return f"{self.rig(rig)}/cmd/motion/{station}"

    def station_alive(self, station: str, session: str) -> str:
        """One per session: several processes may act as one station (a script's ``stage`` commands), and
        the one that moved a rig is the one whose leaving stops it."""
        return f"{ROOT}/{self.stage}/station/{station}/{session}"

    @property
    def timecode(self) -> str:
        return f"{ROOT}/{self.stage}/timecode"

    @property
    def stations_alive(self) -> str:
        return f"{ROOT}/{self.stage}/station/*/*"

    @property
    def rigs_alive(self) -> str:
        return f"{ROOT}/{self.stage}/rig/*/alive"

    @property
    def all_states(self) -> str:
        return f"{ROOT}/{self.stage}/rig/*/state"

    def station_of(self, key: str) -> tuple[str, str]:
        """The station's name and session in its liveliness key."""
        parts = key.split("/")
        return parts[-2], parts[-1]

    def rig_of(self, key: str) -> str:
        """The rig's name in any of its keys."""
        parts = key.split("/")
        return parts[parts.index("rig") + 1]

    def verb_of(self, key: str) -> Verb:
        return Verb(key.rsplit("/", 1)[1])

    def sender_of(self, key: str) -> str:
        """The station a motion command's key names (the one access control let through)."""
        return key.split("/")[-2]


class MessageError(ValueError):
    """A message that is not JSON of this version, or lacks a field."""


def _decode(payload: bytes | str, kind: str) -> dict:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"{kind} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError(f"{kind} is not a JSON object")
    if data.get("v") != VERSION:
        raise MessageError(f"{kind} is version {data.get('v')!r}; this motionctl speaks version {VERSION}")
    return data


def _fields(cls, payload: bytes | str, kind: str):
    """A message whose JSON fields are the dataclass's own."""
    data = _decode(payload, kind)
    data.pop("v")
    try:
        return cls(**data)
    except TypeError as exc:
        raise MessageError(f"{kind} does not fit version {VERSION}: {exc}") from None


def _encode(message: object) -> bytes:
    return json.dumps({"v": VERSION, **asdict(message)}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Command:
    """A station's request.  ``operator`` is the station's name (under ``[security]``, access control has
    already checked its certificate before the query reached the rig)."""

    operator: str
    move: str = ""            # load: a move file on the rig's host
    override_pct: int = 100   # override
    session: str = ""         # the station's session (its liveliness token), for commands that move
    timecode: bool = False    # go: run this move on the stage's timecode (armed, it starts on its start frame)
    group: tuple[str, ...] = ()   # go: the rigs that will run with this one (their moves are checked together)

    def encode(self) -> bytes:
        return _encode(self)

    @classmethod
    def decode(cls, payload: bytes | str) -> Command:
        data = _decode(payload, "the command")
        operator = data.get("operator")
        if not isinstance(operator, str) or not operator:
            raise MessageError("the command names no operator")
        move, session = data.get("move", ""), data.get("session", "")
        pct, timecode, group = data.get("override_pct", 100), data.get("timecode", False), data.get("group", [])
        if not isinstance(move, str) or not isinstance(session, str) or isinstance(pct, bool) \
                or not isinstance(pct, int) or not isinstance(timecode, bool) or not isinstance(group, list) \
                or not all(isinstance(g, str) for g in group):
            raise MessageError("the command's move and session must be strings, override_pct a whole number, "
                               "timecode true or false and group a list of rig names")
        if not all(c in "0123456789abcdefABCDEF" for c in session):
            raise MessageError("the command's session must be the station's Zenoh id (hexadecimal)")
        return cls(operator, move, pct, session, timecode, tuple(group))


@dataclass(frozen=True)
class RigStatus:
    """What a station shows of a rig: one row of its table."""

    rig: str
    state: str                     # RunState's value, or "disconnected"
    move: str = ""
    verdict: str = ""              # the loaded move's check: "legal", or why not
    timecode: str = ""             # the move's start timecode, or the chase's when on timecode
    tau_s: float = 0.0             # seconds into the move
    fault: str = ""                # the latched fault, in words
    owner: str = ""                # the station whose motion command is in force
    take: str = ""                 # the last take's directory name
    busy: str = ""                 # what the daemon is doing (planning a go-to-start, loading)
    seq: int = 0                   # counts the daemon's statuses: a reply's status orders the stream's
    sent_unix_ns: int = 0          # the daemon's wall clock when made: for latency and display, never control
    fps: str = ""                  # the loaded move's frame rate, and its start timecode
    start: str = ""
    on_timecode: bool = False      # the move runs on the stage's timecode
    start_error_ticks: float | None = None   # the run's start against the timecode, as this rig's lock saw it
    run_started_unix_ns: int = 0   # the daemon's wall clock at the tick the run started (display, benchmarks)

    def encode(self) -> bytes:
        return _encode(self)

    @classmethod
    def decode(cls, payload: bytes | str) -> RigStatus:
        return _fields(cls, payload, "the rig's status")


@dataclass(frozen=True)
class Reply:
    """A rig's answer to a command: accepted, or refused and why; and its status after it."""

    rig: str
    verb: str
    accepted: bool
    reason: str = ""
    status: dict = field(default_factory=dict)

    def encode(self) -> bytes:
        return _encode(self)

    @classmethod
    def decode(cls, payload: bytes | str) -> Reply:
        return _fields(cls, payload, "the reply")


@dataclass(frozen=True)
class Event:
    rig: str
    kind: str          # fault, refused, state, note, network
    message: str

    def encode(self) -> bytes:
        return _encode(self)

    @classmethod
    def decode(cls, payload: bytes | str) -> Event:
        return _fields(cls, payload, "the event")


@dataclass(frozen=True)
class TimecodeFrame:
    """One frame of the stage's timecode: frame ``frame`` (counted from 00:00:00:00) starts now."""

    frame: int
    fps: str                       # the rate's label ("25", "29.97df")

    def encode(self) -> bytes:
        return _encode(self)

    @classmethod
    def decode(cls, payload: bytes | str) -> TimecodeFrame:
        data = _decode(payload, "the timecode frame")
        frame, fps = data.get("frame"), data.get("fps")
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0 or not isinstance(fps, str):
            raise MessageError("the timecode frame needs a frame count and a rate")
        return cls(frame, fps)


@dataclass(frozen=True)
class PlanShare:
    """The trajectory a rig would run (what the rigs of a group check each other against): its joints at
    every servo tick (float64, little-endian, base64), the servo rate, the move's frame rate and start."""

    rig: str
    move: str
    rate_hz: int
    fps: str
    start: str
    axes: int
    q: str

    def encode(self) -> bytes:
        return _encode(self)

    @classmethod
    def of(cls, rig: str, move: str, rate_hz: int, fps: str, start: str, q) -> PlanShare:
        import base64

        import numpy as np
        data = np.ascontiguousarray(q, dtype="<f8")
        return cls(rig, move, rate_hz, fps, start, int(data.shape[1]), base64.b64encode(data.tobytes()).decode())

    def joints(self):
        import base64

        import numpy as np
        return np.frombuffer(base64.b64decode(self.q), dtype="<f8").reshape(-1, self.axes)

    @classmethod
    def decode(cls, payload: bytes | str) -> PlanShare:
        return _fields(cls, payload, "the shared plan")
