"""Fault injection for the simulated drives, from the command line or the API.

Spec strings (``--fault`` on the command line, repeatable)::

    drop=0.02                 drop 2 % of outgoing frames at random
    corrupt=0.01              flip a bit in 1 % of outgoing frames
    delay=5                   answer every frame 5 ms late
    stall@3+0.5               stop answering at t=3 s for 0.5 s
    drive:wrist_1@2=0x0010    axis wrist_1 faults at t=2 s with code 0x0010 (EMCY on CAN)
    following:track@4         the track jams at t=4 s (its following error grows until the drive trips)
    heartbeat@5               stop sending heartbeats from t=5 s
    unplug@6                  the link goes away at t=6 s (serial: the device closes its end)
    busoff@6                  the CAN controller goes bus-off at t=6 s
    drive:wrist_1@2+1.5=0x2310   as drive:, and the cause stays for 1.5 s: a fault reset meanwhile is refused

CAN drives only (CiA 402 behaviour real drives have)::

    warning:wrist_1@2+1=0x4210   a warning from t=2 s for 1 s: EMCY, statusword bit 7, the drive keeps running
    reboot:elbow@3            elbow reboots at t=3 s (power-on: boot-up, defaults, pre-operational)
    modelag:track=50          track shows a newly requested mode (0x6061) 50 ms after 0x6060 was written
                              (wall time: configuration happens before simulated time runs)
    refuse:zoom/0x6065=0x06090030   zoom refuses every SDO write to 0x6065 with that abort code
    syncwatch=3               every drive (or syncwatch:track=3 one) faults (EMCY 0x8700) in Operation
                              enabled when no SYNC came for more than 3 SYNC periods (0x1006)

KUKA RSI robot controller only (``simulator.rsi.controller``)::

    late@2+0.5                answers reach the controller too late for 0.5 s from t=2 s: each cycle is
                              counted late (Delay grows) and the last correction is held (HOLDON)
    robotstop@3               a stop at the robot controller at t=3 s (enabling switch released, program
                              stopped): the arm brakes to rest and RSI ends
    relative                  the robot's program says RSI_ON(#RELATIVE), not #ABSOLUTE: each answer's
                              correction is added to the last (a misconfigured controller)

    The RSI controller also takes drop, corrupt, delay (datagrams to the host), stall (it sends nothing
    for a while; the cycles it withheld are not counted late) and unplug (from then on nothing reaches the
    host and no answer reaches the controller, which then times out and ends RSI).

Universal Robots controller only (``simulator.rtde.controller``)::

    protective@3              a protective stop at t=3 s: safety mode PROTECTIVE_STOP, the arm brakes, the
                              program pauses (dashboard "unlock protective stop", then "play")
    programstop@3             the operator stops the program on the teach pendant: the arm brakes
    estop@3+2                 robot emergency stop at t=3 s (the button released 2 s later; without +D it
                              stays pressed): the arm brakes, the program stops, the robot powers off

    The UR controller also takes unplug (it closes the RTDE connection) and stall (no RTDE output
    packages for a while).

Times are seconds after the first setpoint the device receives (the RSI controller: after the first
answer it receives; the UR controller: after its control program started).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from enum import Enum

from motionctl.errors import InputError


class FaultKind(Enum):
    DROP = "drop"
    CORRUPT = "corrupt"
    DELAY = "delay"
    STALL = "stall"
    DRIVE = "drive"
    FOLLOWING = "following"
    HEARTBEAT = "heartbeat"
    UNPLUG = "unplug"
    BUSOFF = "busoff"
    WARNING = "warning"
    REBOOT = "reboot"
    MODELAG = "modelag"
    SYNCWATCH = "syncwatch"
    REFUSE = "refuse"
    LATE = "late"
    ROBOTSTOP = "robotstop"
    RELATIVE = "relative"
    PROTECTIVE = "protective"
    PROGRAMSTOP = "programstop"
    ESTOP = "estop"


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    axis: str | None = None
    at_s: float = 0.0
    duration_s: float | None = None    # None: from then on
    value: float = 0.0                 # probability, delay in ms, or fault code
    target: int | None = None          # refuse: the object (index) whose writes are refused

    def concerns(self, axes) -> bool:
        """Whether this fault belongs to a controller driving ``axes``: one that names an axis goes to that
        axis' controller, one that names none to every controller (a rig on several controllers)."""
        return self.axis is None or self.axis in axes

    def active(self, t: float) -> bool:
        if t < self.at_s:
            return False
        return self.duration_s is None or t < self.at_s + self.duration_s


_SPEC = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<axis>[A-Za-z0-9_.]+))?(?:/(?P<target>0x[0-9A-Fa-f]{1,4}))?"
                   r"(?:@(?P<at>[0-9.]+))?"
                   r"(?:\+(?P<dur>[0-9.]+))?(?:=(?P<value>0x[0-9A-Fa-f]+|[0-9.eE+-]+))?$")


def parse_fault(text: str) -> Fault:
    match = _SPEC.match(text.strip())
    if not match:
        raise InputError(f'bad fault "{text}": expected e.g. drop=0.02, stall@3+0.5, drive:wrist_1@2=0x0010')
    try:
        kind = FaultKind(match["kind"])
    except ValueError:
        names = ", ".join(k.value for k in FaultKind)
        raise InputError(f'unknown fault "{match["kind"]}": one of {names}') from None
    raw = match["value"]
    value = float(int(raw, 16)) if raw and raw.startswith("0x") else float(raw) if raw else 0.0
    if kind in (FaultKind.DROP, FaultKind.CORRUPT) and not 0.0 <= value <= 1.0:
        raise InputError(f'fault "{text}": the probability must be within 0..1')
    if kind in (FaultKind.DRIVE, FaultKind.FOLLOWING, FaultKind.WARNING, FaultKind.REBOOT) and not match["axis"]:
        raise InputError(f'fault "{text}" needs an axis, e.g. {kind.value}:wrist_1@2')
    if (kind is FaultKind.REFUSE) != bool(match["target"]):
        raise InputError(f'fault "{text}": an object (/0xINDEX) goes with refuse only, e.g. '
                         'refuse:zoom/0x6065=0x06090030')
    return Fault(kind, match["axis"], float(match["at"] or 0.0),
                 float(match["dur"]) if match["dur"] else None, value,
                 int(match["target"], 16) if match["target"] else None)


@dataclass
class FaultInjector:
    """The faults of one simulated device, with a seeded random source so runs repeat."""

    faults: list[Fault] = field(default_factory=list)
    seed: int = 1
    fired: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def add(self, fault: Fault | str) -> None:
        self.faults.append(parse_fault(fault) if isinstance(fault, str) else fault)

    def active(self, kind: FaultKind, t: float) -> list[Fault]:
        return [f for f in self.faults if f.kind is kind and f.active(t)]

    def once(self, kind: FaultKind, t: float) -> list[Fault]:
        """Faults of ``kind`` that became active and have not been acted on yet."""
        out = []
        for i, f in enumerate(self.faults):
            if f.kind is kind and f.active(t) and i not in self.fired:
                self.fired.add(i)
                out.append(f)
        return out

    def chance(self, kind: FaultKind, t: float) -> bool:
        return any(self.random.random() < f.value for f in self.active(kind, t))

    def delay_s(self, t: float) -> float:
        return max((f.value for f in self.active(FaultKind.DELAY, t)), default=0.0) / 1000.0
