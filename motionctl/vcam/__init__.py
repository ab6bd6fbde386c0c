"""Virtual-camera output: the rig's camera pose and lens as FreeD D1 and OpenTrackIO over UDP.

Layer: above ``spec``, ``kinematics``, ``rotations``, ``timecode`` and ``errors``; nothing here imports
``runtime`` or ``cli``.  Conventions, units, ports and encoder scaling: ``docs/vcam.md``.
"""

from motionctl.vcam.freed import (FREED_DEFAULT_PORT, FreedPose, FreedRangeError, decode_d1, encode_d1,
                                  engine_pose_from_freed, freed_from_pose)
from motionctl.vcam.frames import engine_pose
from motionctl.vcam.opentrackio import (OPENTRACKIO_PORT, PROTOCOL_VERSION, build_sample, decode_udp,
                                        encode_udp, multicast_group, new_source_id)
from motionctl.vcam.sender import VcamSender, VcamStats, camera_pose_from_joints

__all__ = [
    "FREED_DEFAULT_PORT", "FreedPose", "FreedRangeError", "OPENTRACKIO_PORT", "PROTOCOL_VERSION",
    "VcamSender", "VcamStats", "build_sample", "camera_pose_from_joints", "decode_d1", "decode_udp",
    "encode_d1", "encode_udp", "engine_pose", "engine_pose_from_freed", "freed_from_pose", "multicast_group",
    "new_source_id",
]
