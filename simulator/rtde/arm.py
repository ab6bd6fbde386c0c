"""The fake UR arm and the model of motionctl's servo program (``docs/ur-rtde-facts.md`` §9-§10).

:class:`UrArm` is six joints moved once per 2 ms control cycle: ``servo`` approximates URScript's
``servoj(q, t=0.002, lookahead_time, gain)`` (UR does not publish its algorithm), ``brake`` is ``stopj``
and the stops of the controller.  :class:`ServoProgram` is what motionctl's URScript program does every
cycle with its registers; the fake does not interpret URScript, it runs this model when it recognises the
program's first line.  Both are pure functions of what they are given: no clock, no randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PERIOD_S = 0.002
JOINTS = 6
LOOKAHEAD_S = 0.1              # the values motionctl's program passes to servoj
GAIN = 300.0
STALE_CYCLES = 10              # the program ends after this many cycles without a new counter while following

# Program states (output_int_register_24).
NOT_RUNNING, HOLDING, FOLLOWING, STOPPED, ENDED_STALE, ENDED_ASKED = 0, 1, 2, 3, 4, 5
HOLD, FOLLOW, STOP, END = 0, 1, 2, 3
PROGRAM_MARK = "# motionctl servo program 1"


@dataclass
class Joint:
    vmax: float
    amax: float
    lower: float = -math.inf
    upper: float = math.inf
    q: float = 0.0                 # actual position, rad
    v: float = 0.0                 # actual speed, rad/s
    a: float = 0.0                 # acceleration of the last cycle
    ref: float = 0.0               # the servo target (target_q)
    ref_v: float = 0.0             # the target's speed, from consecutive targets (target_qd)
    ref_a: float = 0.0             # its change per cycle (target_qdd)

    def servo(self, target: float, omega: float, dt: float = PERIOD_S) -> None:
        """One cycle of servoj towards ``target``: critically damped about the moving target, with the
        target's speed fed forward, the error taken against where the joint will be at the cycle's end."""
        ref_v = (target - self.ref) / dt
        self.ref_a = (ref_v - self.ref_v) / dt
        self.ref, self.ref_v = target, ref_v
        ahead = self.q + self.v * dt
        wanted = omega * omega * (target - ahead) + 2.0 * omega * (ref_v - self.v)
        self._move(max(-self.amax, min(self.amax, wanted)), dt)

    def brake(self, dt: float = PERIOD_S) -> None:
        """One cycle of a stop at the joint's own deceleration limit; the target follows the stopping arm."""
        v = 0.0 if abs(self.v) <= self.amax * dt else self.v - math.copysign(self.amax * dt, self.v)
        self.a = (v - self.v) / dt
        self.v = v
        self.q += v * dt
        self.ref, self.ref_v, self.ref_a = self.q, self.v, self.a

    def hold_here(self) -> None:
        """Make where the joint is its target, with no target speed (before holding or on a new program)."""
        self.ref, self.ref_v, self.ref_a = self.q, 0.0, 0.0

    def _move(self, accel: float, dt: float) -> None:
        v = max(-self.vmax, min(self.vmax, self.v + accel * dt))
        self.a = (v - self.v) / dt
        self.v = v
        self.q += v * dt


@dataclass
class UrArm:
    joints: list[Joint]
    omega: float = math.sqrt(GAIN / LOOKAHEAD_S)
    dt: float = PERIOD_S

    @property
    def q(self) -> list[float]:
        return [j.q for j in self.joints]

    @property
    def qd(self) -> list[float]:
        return [j.v for j in self.joints]

    @property
    def target(self) -> list[float]:
        return [j.ref for j in self.joints]

    @property
    def target_qd(self) -> list[float]:
        return [j.ref_v for j in self.joints]

    @property
    def target_qdd(self) -> list[float]:
        return [j.ref_a for j in self.joints]

    @property
    def at_rest(self) -> bool:
        return all(j.v == 0.0 for j in self.joints)

    def servo(self, target: list[float]) -> None:
        for joint, value in zip(self.joints, target):
            joint.servo(value, self.omega, self.dt)

    def brake(self) -> None:
        for joint in self.joints:
            joint.brake(self.dt)

    def hold_here(self) -> None:
        for joint in self.joints:
            joint.hold_here()

    def outside_limits(self, target: list[float]) -> int | None:
        """The first joint (0-based) whose target is beyond its position limits, or None."""
        for i, (joint, value) in enumerate(zip(self.joints, target)):
            if not joint.lower <= value <= joint.upper:
                return i
        return None


@dataclass
class ServoProgram:
    """motionctl's control program, one :meth:`cycle` per 2 ms.  ``state`` is output_int_register_24."""

    counter: int                        # the counter it saw last (output_int_register_25)
    target: list[float] = field(default_factory=list)
    state: int = HOLDING
    stale: int = 0

    @property
    def ended(self) -> bool:
        return self.state in (ENDED_STALE, ENDED_ASKED)

    def cycle(self, arm: UrArm, counter: int, command: int, q: list[float]) -> str | None:
        """Read the registers, move the arm for one cycle; returns an event when the program ends."""
        fresh = counter != self.counter
        self.counter = counter
        if command not in (HOLD, FOLLOW, STOP, END):
            command = HOLD
        if command == END:
            self.state = ENDED_ASKED
            arm.brake()
            return "program ended: asked"
        if command == STOP or (self.state == STOPPED and not arm.at_rest):
            self.state = STOPPED            # stopj, then wait for the next command once at rest
            arm.brake()
            return None
        if self.state == STOPPED:
            arm.hold_here()
            self.target = arm.q
        if command == HOLD:
            self.state = HOLDING
            arm.servo(self.target)
            return None
        if self.state != FOLLOWING:
            self.state, self.stale = FOLLOWING, 0
        if fresh:
            self.stale = 0
            self.target = list(q)
        else:
            self.stale += 1
            if self.stale >= STALE_CYCLES:
                self.state = ENDED_STALE
                arm.brake()
                return "program ended: registers went stale"
        arm.servo(self.target)
        return None
