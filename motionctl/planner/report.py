"""What a check found, as plain data: violations and the report, serialisable to JSON.

Pure: no I/O.  The CLI renders a :class:`CheckReport` as text or JSON; pipelines read the JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class ViolationKind(Enum):
    """What went wrong.  The value is the stable name written into JSON reports."""

    UNREACHABLE = "unreachable"          # no IK solution in the pinned configuration
    POSITION = "position"                # joint or lens beyond its range or in its soft margin (keys too)
    VELOCITY = "velocity"
    ACCELERATION = "acceleration"
    JERK = "jerk"
    COLLISION = "collision"              # clearance below the margin to a stage obstacle
    KEEPOUT = "keepout"                  # clearance below a keep-out zone's own clearance
    SELF_COLLISION = "self_collision"    # two non-adjacent links of the rig too close
    PATH = "path"                        # the keys ask for a path the planner cannot build (e.g. a turn over
                                         # 170 deg within one run of keys): no trajectory
    DURATION = "duration"                # the move is longer than one plan can hold at this servo rate


@dataclass(frozen=True)
class Violation:
    """One run of consecutive frames where one thing is wrong, with its worst value."""

    kind: ViolationKind
    subject: str                # axis name, "link vs obstacle", or "key 3"
    first_frame: int
    last_frame: int
    first_timecode: str
    last_timecode: str
    peak: float | None          # worst value (SI units; for clearances: the smallest distance)
    limit: float | None         # the limit it broke (SI)
    unit: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        return out


@dataclass(frozen=True)
class KeyPose:
    """A solved key: joint values in file units (m, deg) and the camera pose it gives."""

    index: int
    frame: int
    timecode: str
    label: str
    kind: str                    # "camera" or "joints"
    reached: bool
    joints: dict[str, float]     # axis -> m or deg (empty when unreachable)
    camera: dict[str, float]     # x_m, y_m, z_m, pan_deg, tilt_deg, roll_deg
    lens: dict[str, float]


#: The planner's measurements in every report's JSON (``extra``); null for a move that could not be planned.
MEASUREMENT_KEYS = ("rate_hz", "min_clearance_m", "min_clearance_at", "tightest_at", "clearances", "axis_peaks",
                    "peak_camera_speed_mps", "max_path_error_mm", "max_path_error_deg",
                    "shortest_legal_duration_s", "ik_knots")


@dataclass
class CheckReport:
    """Everything ``motionctl check`` says about a move."""

    move: str
    file: str
    rig: str
    stage: str | None
    fps: str
    start: str
    frames: int
    duration_s: float
    keys: list[KeyPose] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    axes: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)   # planner measurements (clearance, speed, ...)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok, "move": self.move, "file": self.file, "rig": self.rig, "stage": self.stage,
            "fps": self.fps, "start": self.start, "frames": self.frames, "duration_s": self.duration_s,
        }
        out.update(self.extra)
        for key in MEASUREMENT_KEYS:
            out.setdefault(key, None)        # every documented key, null where the move could not be measured
        out["violations"] = [v.to_dict() for v in self.violations]
        out["keys"] = [asdict(k) for k in self.keys]
        out["axes"] = self.axes
        return out
