"""Files -> validated, immutable models (SI units inside; metres and degrees in files).

Import the loaders from here: ``load_rig``, ``load_stage``, ``load_move``, ``load_scene``.
"""

from motionctl.spec.move import CameraKey, Key, Move, Scene, load_move, load_scene
from motionctl.spec.rig import Axis, HardwareBinding, LensAxis, Rig, load_rig
from motionctl.spec.stage import Stage, Zone, ZoneKind, load_stage

__all__ = ["Axis", "CameraKey", "HardwareBinding", "Key", "LensAxis", "Move", "Rig", "Scene", "Stage",
           "Zone", "ZoneKind", "load_move", "load_rig", "load_scene", "load_stage"]
