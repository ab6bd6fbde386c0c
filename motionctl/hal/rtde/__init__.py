"""The Universal Robots backend: RTDE and the servo program sent to the robot (docs/ur-rtde.md)."""
