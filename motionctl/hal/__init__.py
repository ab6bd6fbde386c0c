"""Hardware abstraction: one driver contract, backends chosen by transport URL and imported lazily.

Imports only ``errors`` and ``spec`` types; knows nothing of planning.
"""

from motionctl.hal.driver import AxisState, Driver, DriveStatus, LinkStats, RigState
from motionctl.hal.registry import BACKENDS, TransportUrl, open_driver

__all__ = ["AxisState", "BACKENDS", "DriveStatus", "Driver", "LinkStats", "RigState", "TransportUrl", "open_driver"]
