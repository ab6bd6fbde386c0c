"""motionctl: an open robotic motion-control rig sequencer for film and virtual production.

Layers (imports point down only): cli/tui/preview -> runtime -> planner/vcam -> kinematics, collision,
timecode -> spec -> errors.  See ``docs/architecture.md``.
"""

__version__ = "0.1.0"
