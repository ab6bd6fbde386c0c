"""Planning: keyframes -> a checked trajectory (pure functions of move, rig and stage)."""

from motionctl.planner.check import check_keys
from motionctl.planner.report import CheckReport, KeyPose, Violation, ViolationKind

__all__ = ["CheckReport", "KeyPose", "Violation", "ViolationKind", "check_keys"]
