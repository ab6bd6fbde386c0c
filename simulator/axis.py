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

from motionctl.errors import HardwareError
from motionctl.spec.rig import Rig

#: Position-loop time constant: the axis closes 1/e of a step in this long.
LOOP_TAU_S = 0.004

#: Encoder resolution of an axis the rig file gives no ``[hardware] counts`` for: per metre (linear), per
#: revolution (rotary), over the full travel (lens).  The rig file is the contract between host and
#: device; these fill its gaps the way a drive would ship (both rigs in ``rigs/`` give every axis).
DEFAULT_COUNTS_LINEAR = 1_000_000
DEFAULT_COUNTS_PER_REV = 2 ** 20
DEFAULT_COUNTS_LENS = 65536


@dataclass(frozen=True)
class DrivenAxis:
    """An axis a simulated drive moves, with its encoder scale (counts per SI unit)."""

    name: str
    counts_per_unit: float        # per m (linear), per rad (rotary), per normalised lens unit
    lens: bool


def driven_axes(rig: Rig) -> tuple[DrivenAxis, ...]:
    """Every axis of ``rig`` that has a drive, in the rig's order: the chain's axes that the ``[hardware]
    address`` table binds (all of them, but for one group of a rig that spans several controllers), then
    the lens axes it gives a drive (``docs/formats.md``)."""
    hw = rig.hardware
    if hw is None:
        raise HardwareError(f'rig "{rig.name}" has no [hardware] section: no drives to simulate')
    axes = []
    for axis in rig.axes:
        if axis.name not in hw.address:
            continue                      # on another controller of a rig that spans several
        if axis.linear:
            axes.append(DrivenAxis(axis.name, hw.counts.get(axis.name, DEFAULT_COUNTS_LINEAR), False))
        else:
            per_rev = hw.counts.get(axis.name, DEFAULT_COUNTS_PER_REV)
            axes.append(DrivenAxis(axis.name, per_rev / (2 * math.pi), False))
    axes += [DrivenAxis(lens.name, hw.counts.get(lens.name, DEFAULT_COUNTS_LENS), True)
             for lens in rig.lens if lens.name in hw.address]
    return tuple(axes)


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
