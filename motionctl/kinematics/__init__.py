"""Kinematics of a rig: batched forward kinematics and a configuration-keeping IK tracker."""

from motionctl.kinematics.fk import CapsuleSet, Kinematics
from motionctl.kinematics.ik import TOL_ANGLE_RAD, TOL_POSITION_M, IKResult, IKTracker

__all__ = ["CapsuleSet", "IKResult", "IKTracker", "Kinematics", "TOL_ANGLE_RAD", "TOL_POSITION_M"]
