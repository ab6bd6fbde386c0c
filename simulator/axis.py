"""One simulated servo axis: a position loop with feed-forward, saturation and an encoder.

The model is what a tuned industrial drive looks like from outside: the motor follows the setpoint
through a velocity loop (feed-forward of the setpoint's own speed plus a proportional correction), the
speed and acceleration saturate at the motor's limits, and the position is read through an encoder
that counts whole increments.  The following error is what is left: a fraction of a millimetre at
speed, zero at rest, and large when the axis is asked for more than it can do or is blocked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Position-loop time constant: the axis closes 1/e of a step in this long.
LOOP_TAU_S = 0.004


@dataclass
class AxisModel:
    name: str
    counts_per_unit: float        # encoder counts per SI unit (per m, per rad, per normalised lens unit)
    vmax: float                   # saturation, SI units (the motor's, above the plan's limits)
    amax: float
    position: float = 0.0         # true position, SI
    velocity: float = 0.0
    target: float = 0.0           # latest setpoint, SI
    target_velocity: float = 0.0  # setpoint speed (feed-forward), from consecutive setpoints
    blocked: bool = False         # mechanically jammed (fault injection: following-error trip)

    def set_target(self, target: float, dt: float) -> float:
        """Latch a new setpoint; returns the jump from the previous one (for the step check)."""
        jump = target - self.target
        self.target_velocity = jump / dt if dt > 0 else 0.0
        self.target = target
        return jump

    def hold(self) -> None:
        """Freeze the setpoint where the axis is (on enable: no jump)."""
        self.target = self.position
        self.target_velocity = 0.0

    def step(self, dt: float) -> None:
        """Follow the setpoint for ``dt`` seconds (sub-stepped at 1 ms)."""
        steps = max(1, int(math.ceil(dt / 0.001)))
        h = dt / steps
        for _ in range(steps):
            if self.blocked:
                self.velocity = 0.0
                continue
            wanted = self.target_velocity + (self.target - self.position) / LOOP_TAU_S
            wanted = max(-self.vmax, min(self.vmax, wanted))
            change = max(-self.amax * h, min(self.amax * h, wanted - self.velocity))
            self.velocity += change
            self.position += self.velocity * h

    def brake(self, dt: float, deceleration: float) -> bool:
        """Quick-stop ramp: decelerate to rest on the drive's own ramp; True once stopped."""
        steps = max(1, int(math.ceil(dt / 0.001)))
        h = dt / steps
        for _ in range(steps):
            if self.velocity == 0.0:
                break
            change = min(abs(self.velocity), deceleration * h)
            self.velocity -= math.copysign(change, self.velocity)
            self.position += self.velocity * h
        self.target = self.position
        self.target_velocity = 0.0
        return self.velocity == 0.0

    @property
    def position_counts(self) -> int:
        return int(math.floor(self.position * self.counts_per_unit + 0.5))

    @property
    def velocity_counts(self) -> int:
        return int(round(self.velocity * self.counts_per_unit))

    @property
    def following_error_counts(self) -> int:
        return int(round(self.target * self.counts_per_unit)) - self.position_counts
