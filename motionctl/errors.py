"""One exception hierarchy for all of motionctl (a leaf module: it imports nothing from the package).

Why one hierarchy: the CLI, the TUI and pipelines need to tell *bad input* (exit 2, one readable line)
from *a move that is not legal* (exit 1, a report) from *a fault at run time* (a controlled stop),
without string matching.  Like python-can's ``can/exceptions.py``, every error raised on purpose by
motionctl derives from :class:`MotionctlError`.
"""

from __future__ import annotations


class MotionctlError(Exception):
    """Base of every error motionctl raises on purpose."""


class InputError(MotionctlError):
    """Input that cannot be used as given: a file, a command-line value, a label.

    ``file``, ``key`` (a dotted key path such as ``key[2].camera.position``) and ``line`` are filled in
    where known, so the message can point at the exact spot.  ``str()`` gives one readable line.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        super().__init__(self.describe())

    def describe(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"

    def __str__(self) -> str:
        return self.describe()


class SpecError(InputError):
    """A rig, stage or move file (or a URDF it names) is missing, malformed or inconsistent."""


class TimecodeError(InputError, ValueError):
    """A timecode label, frame number or frame rate that does not exist."""


class KinematicsError(MotionctlError):
    """The kinematic model cannot do what was asked (e.g. a pose the arm cannot reach)."""


class UnreachableError(KinematicsError):
    """A camera pose cannot be reached within the joint limits in the rig's pinned configuration.

    ``frame`` names the move frame when the pose came from a move, so the operator knows which key to fix.
    """

    def __init__(self, message: str, *, frame: int | None = None,
                 position_error_m: float | None = None, angle_error_rad: float | None = None) -> None:
        self.frame = frame
        self.reason = message
        self.position_error_m = position_error_m
        self.angle_error_rad = angle_error_rad
        prefix = f"frame {frame}: " if frame is not None else ""
        super().__init__(prefix + message)


class PlanningError(MotionctlError):
    """The planner cannot build a trajectory from a move (as opposed to building one that is illegal)."""


class HardwareError(MotionctlError):
    """The link to the drives failed or a drive reports a fault (a runtime fault: ends in a controlled stop)."""


class ProtocolError(HardwareError):
    """The device spoke, but not the protocol we expect (version mismatch, malformed handshake)."""


class DriveFault(HardwareError):
    """A drive reports a fault; ``axis`` and ``code`` say which and why, the message says it in plain words."""

    def __init__(self, message: str, *, axis: str | None = None, code: int | None = None) -> None:
        self.axis = axis
        self.code = code
        super().__init__(message)
