"""The streamer's state machine and settings: states, events, the transition table, options, summary.

    IDLE --go_to_start--> GOING_TO_START --(done)--> AT_START --arm--> ARMED --start--> RUNNING
    RUNNING --(end)--> DONE;  RUNNING/GOING_TO_START --stop--> STOPPING --(done)--> STOPPED
    any moving state --fault--> STOPPING (controlled stop), then FAULTED (latched)
    any state --estop--> ESTOPPED (drives quick-stop on their own ramps; latched)
    IDLE/AT_START/STOPPED/DONE --jog--> JOGGING --(at rest, key released)--> IDLE
    IDLE/AT_START/STOPPED/DONE --load--> IDLE (another move on the same rig and streamer)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class RunState(Enum):
    IDLE = "idle"
    GOING_TO_START = "going to start"
    AT_START = "at start"
    ARMED = "armed"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DONE = "done"
    FAULTED = "faulted"
    ESTOPPED = "e-stopped"
    JOGGING = "jogging"


class Event(Enum):
    GO_TO_START = "go_to_start"
    REACHED = "reached"          # a transition (go-to-start or stop) finished
    ARM = "arm"
    START = "start"
    END = "end"                  # the plan ran to its last sample
    STOP = "stop"
    FAULT = "fault"
    ESTOP = "estop"
    RESET = "reset"
    JOG = "jog"
    LOAD = "load"
    TAKE = "take"                # begin or end a take (a command to the loop; never changes the state)


S, E = RunState, Event
TRANSITIONS: dict[tuple[RunState, Event], RunState] = {
    (S.IDLE, E.GO_TO_START): S.GOING_TO_START,
    (S.STOPPED, E.GO_TO_START): S.GOING_TO_START,
    (S.DONE, E.GO_TO_START): S.GOING_TO_START,
    (S.AT_START, E.GO_TO_START): S.GOING_TO_START,
    (S.GOING_TO_START, E.REACHED): S.AT_START,
    (S.AT_START, E.ARM): S.ARMED,
    (S.ARMED, E.START): S.RUNNING,
    (S.ARMED, E.STOP): S.AT_START,
    (S.RUNNING, E.END): S.DONE,
    (S.RUNNING, E.STOP): S.STOPPING,
    (S.GOING_TO_START, E.STOP): S.STOPPING,
    (S.STOPPING, E.REACHED): S.STOPPED,
    (S.RUNNING, E.FAULT): S.STOPPING,
    (S.GOING_TO_START, E.FAULT): S.STOPPING,
    (S.ARMED, E.FAULT): S.FAULTED,
    (S.AT_START, E.FAULT): S.FAULTED,
    (S.IDLE, E.FAULT): S.FAULTED,
    (S.STOPPED, E.FAULT): S.FAULTED,
    (S.DONE, E.FAULT): S.FAULTED,
    (S.STOPPING, E.FAULT): S.STOPPING,
    (S.FAULTED, E.RESET): S.IDLE,
    (S.ESTOPPED, E.RESET): S.IDLE,
}
#: States where the rig is at rest under the streamer's control: it may jog or take another move.
AT_REST = (S.IDLE, S.AT_START, S.STOPPED, S.DONE)
for _state in AT_REST:
    TRANSITIONS[(_state, E.JOG)] = S.JOGGING
    TRANSITIONS[(_state, E.LOAD)] = S.IDLE
TRANSITIONS[(S.JOGGING, E.REACHED)] = S.IDLE          # jog keys released and the rig at rest again
TRANSITIONS[(S.JOGGING, E.FAULT)] = S.FAULTED         # (after the jog has braked to rest)
#: E-stop is accepted in every state.
for _state in RunState:
    TRANSITIONS[(_state, E.ESTOP)] = S.ESTOPPED


@dataclass(frozen=True)
class StreamerOptions:
    following_error_m: float = 0.010          # linear axes
    following_error_rad: float = 0.035        # rotary axes (2 degrees)
    following_error_lens: float = 0.05        # lens axes, in normalised encoder units (5 % of travel)
    following_error_ticks: int = 3            # consecutive ticks over the window before it trips
    stale_feedback_s: float = 0.05
    start_tolerance_m: float = 0.001
    start_tolerance_rad: float = 0.0017       # 0.1 degree
    stall_cycles: int = 3                     # this many missed deadlines in a row: the stream stalled
    chase_gain_per_s: float = 2.0             # timecode chase: speed correction per second of error
    chase_max_slew: float = 0.005             # ... at most +-0.5 % of speed (less upwards if the plan is tight)
    chase_slew_rate_per_s: float = 0.05       # ... changing by at most 5 % per second
    late_budget: float = 0.05                 # fraction of ticks a whole period late tolerated per second
    #: Fault injection on the host itself: (run time s, duration s) at which the servo thread freezes once
    #: (``--fault host-stall@T+D``): what a busy host does, on purpose, to see the rig ride it out.
    host_stall: tuple[float, float] | None = None


@dataclass
class RunSummary:
    state: str = ""
    ticks: int = 0
    max_following_error: dict[str, float] = field(default_factory=dict)
    mean_late_us: float = 0.0
    max_late_us: float = 0.0
    p50_late_us: float = 0.0
    p99_late_us: float = 0.0
    p999_late_us: float = 0.0
    overruns: int = 0
    faults: list[str] = field(default_factory=list)
    link: dict[str, object] = field(default_factory=dict)
    start_error_ticks: float | None = None
    max_sync_error_ticks: float | None = None
    final_sync_error_ticks: float | None = None
    timecode_speed: float | None = None
    scheduling: str = "simulated time" 
