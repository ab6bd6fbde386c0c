"""Planning: keyframes -> a checked servo-rate trajectory (pure functions of move, rig and stage)."""

from motionctl.planner.check import check_keys
from motionctl.planner.plan import Plan, Retime, plan, plan_scene
from motionctl.planner.report import CheckReport, KeyPose, Violation, ViolationKind
from motionctl.planner.trajectory import Trajectory

__all__ = ["CheckReport", "KeyPose", "Plan", "Retime", "Trajectory", "Violation", "ViolationKind", "check_keys",
           "plan", "plan_scene"]
