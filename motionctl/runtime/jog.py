"""Jogging: per-axis and camera-space jogs, jerk-limited, at reduced speed, only while the key is held.

A terminal sends no key-release events, only a key's auto-repeats (after a delay of 250-660 ms, then
25-40 a second).  So a jog request is a *dead-man* lease: the first press holds for ``FIRST_HOLD_S`` (to
bridge the repeat delay), each repeat extends it by ``REPEAT_HOLD_S``, and when the lease runs out the
target velocity drops to zero and ruckig brakes, jerk-limited.  A quick tap is a small nudge.

Safety is a look-ahead guard.  It costs a few milliseconds (FK and a clearance check of two poses), too
much for every servo tick, so the servo thread only *applies* its verdicts: every ``GUARD_PERIOD_S`` it
posts a snapshot of the jog (:meth:`Jogger.snapshot`), a worker evaluates it (:meth:`Jogger.evaluate`,
pure) and grants a target velocity; a grant older than ``PERMIT_S`` lapses and the jog brakes.  Every
bound below covers the whole horizon: the grant's life, then braking to rest.

* **Soft limits**: an axis may move towards a limit only while its soft limit lies farther away than it
  can travel over the guard horizon (one guard period at jog speed, then braking).
* **Clearance**: every (link, zone) and self pair's clearance is measured exactly at the commanded pose
  and one guard period ahead; a pair the jog brings closer blocks it once its spare clearance is less
  than its predicted approach over the horizon (see ``_clearance_block``).  Moving away is always allowed.

By induction the rig can always brake to rest before any margin.  Requests take effect with the next grant
(within ``GUARD_PERIOD_S`` plus the evaluation time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray
from ruckig import ControlInterface, InputParameter, OutputParameter, Result, Ruckig

from motionctl.collision import ClearanceChecker
from motionctl.kinematics import Kinematics
from motionctl.planner.limits import AxisLimits, axis_limits
from motionctl.spec.rig import Rig
from motionctl.spec.stage import Stage

JOG_SPEED_FRACTION = 0.10       # of each axis's velocity limit
JOG_ACCEL_FRACTION = 0.5        # of each axis's acceleration and jerk limits
FIRST_HOLD_S = 0.7              # a first key press moves at least this long (bridges the repeat delay)
REPEAT_HOLD_S = 0.15            # each auto-repeat extends the lease by this much
GUARD_PERIOD_S = 0.04
PERMIT_S = 0.12                 # a grant lapses this long after the snapshot it judged
APPROACH_TOL_M = 1e-6           # a pair "approaches" when a guard period's step shrinks it by more than this
APPROACH_RESERVE = 2.0          # the first-order prediction of a pair's approach, doubled
CURVATURE_M = 0.003             # ... plus this, for distances not being linear in the joints
CAMERA_LINEAR_MPS = 0.10        # camera-space jog speed (before the per-axis caps)
CAMERA_ANGULAR_RADPS = math.radians(6.0)
DAMPING = 0.02                  # damped least squares near singular configurations


class CameraJog(Enum):
    """Camera-space jog directions (positive sense), in the camera's own terms."""

    DOLLY = "dolly"            # along the lens axis (in: towards what the camera sees)
    TRUCK = "truck"            # sideways, to camera right
    PEDESTAL = "pedestal"      # straight up (stage Z)
    PAN = "pan"                # turn left about the vertical through the nodal point
    TILT = "tilt"              # look up, about the camera's horizontal axis


@dataclass(frozen=True)
class JogRequest:
    """Jog one column (``axis`` = index into arm axes then lens axes) or one camera direction."""

    direction: int                       # +1 or -1
    axis: int | None = None
    camera: CameraJog | None = None

    def __post_init__(self) -> None:
        if (self.axis is None) == (self.camera is None):
            raise ValueError("a jog names one axis or one camera direction")
        if self.direction not in (-1, 1):
            raise ValueError("jog direction is +1 or -1")


class Jogger:
    """The jog's state and guard; ``step()`` once per servo tick gives the next setpoint.

    Pure: no I/O, no clock of its own (the caller passes its tick times), so it is testable tick by tick.
    Columns are the rig's arm axes then its lens axes (SI units).
    """

    def __init__(self, rig: Rig, stage: Stage | None, rate_hz: int, position: NDArray[np.float64], *,
                 speed_fraction: float = JOG_SPEED_FRACTION) -> None:
        self.rig, self.rate = rig, rate_hz
        self.limits: list[AxisLimits] = axis_limits(rig)
        self.n_arm = len(rig.axes)
        n = len(self.limits)
        self.kin = Kinematics(rig)
        self.checker = ClearanceChecker(rig, stage, self.kin.capsules)
        self.required = np.array([spec[3] for spec in self.checker.pair_specs])
        self.vjog = np.array([l.vmax * speed_fraction for l in self.limits])
        self.ajog = np.array([l.amax * JOG_ACCEL_FRACTION for l in self.limits])
        self.jjog = np.array([l.jmax * JOG_ACCEL_FRACTION for l in self.limits])
        self.lo = np.array([l.lower + l.margin for l in self.limits])
        self.hi = np.array([l.upper - l.margin for l in self.limits])
        self.guard_ticks = max(1, int(round(GUARD_PERIOD_S * rate_hz)))
        self.permit_ticks = max(self.guard_ticks + 1, int(round(PERMIT_S * rate_hz)))
        self.permit_s = self.permit_ticks / rate_hz
        self._otg = Ruckig(n, 1.0 / rate_hz)
        self._inp = InputParameter(n)
        self._out = OutputParameter(n)
        self._inp.control_interface = ControlInterface.Velocity
        self._inp.current_position = np.asarray(position, dtype=float).tolist()
        self._inp.current_velocity = [0.0] * n
        self._inp.current_acceleration = [0.0] * n
        self._inp.target_velocity = [0.0] * n
        self._inp.target_acceleration = [0.0] * n
        self._inp.max_velocity = self.vjog.tolist()
        self._inp.max_acceleration = self.ajog.tolist()
        self._inp.max_jerk = self.jjog.tolist()
        self.position = np.asarray(position, dtype=float).copy()
        self.velocity = np.zeros(n)
        self.request: JogRequest | None = None
        self._lease_until_ns = 0
        self._tick = 0
        self._target = np.zeros(n)
        self._grant: tuple[int, JogRequest | None, NDArray[np.float64]] | None = None   # (tick, request, v)
        self.blocked = ""                      # why the last request is held back, in plain words

    # -- requests -----------------------------------------------------------------------------------
    def press(self, request: JogRequest, now_ns: int) -> None:
        """A key press (first or auto-repeat) asking for ``request``."""
        if request != self.request or now_ns >= self._lease_until_ns:
            self.request = request
            self._lease_until_ns = now_ns + int(FIRST_HOLD_S * 1e9)
        else:
            self._lease_until_ns = max(self._lease_until_ns, now_ns + int(REPEAT_HOLD_S * 1e9))

    def release(self) -> None:
        self.request = None
        self._lease_until_ns = 0

    @property
    def at_rest(self) -> bool:
        return self.request is None and not np.any(self.velocity) and not np.any(self._target)

    # -- per tick -------------------------------------------------------------------------------------
    def step(self, now_ns: int, *, inline_guard: bool = False) -> NDArray[np.float64]:
        """Advance one servo tick; returns the setpoint (arm axes then lens axes).

        ``inline_guard`` evaluates the guard here on every guard tick (tests and offline use); the
        streamer instead posts :meth:`snapshot` to a worker and hands the verdict to :meth:`grant`.
        """
        if self.request is not None and now_ns >= self._lease_until_ns:
            self.request = None                 # the key is no longer held: brake
        if inline_guard and self.guard_due:
            self.grant(*self.evaluate(self.snapshot()))
        self._target = self._granted_target()
        self._tick += 1
        self._inp.target_velocity = self._target.tolist()
        result = self._otg.update(self._inp, self._out)
        if result not in (Result.Working, Result.Finished):
            self._target[:] = 0.0
            self._inp.target_velocity = [0.0] * len(self._target)
            self._otg.update(self._inp, self._out)
        self._out.pass_to_input(self._inp)
        self.position = np.array(self._out.new_position)
        velocity = np.array(self._out.new_velocity)
        acceleration = np.array(self._out.new_acceleration)
        if not np.any(self._target) and np.all(np.abs(velocity) < 1e-9) and np.all(np.abs(acceleration) < 1e-9):
            velocity[:] = 0.0                   # at rest: say so exactly
            self._inp.current_velocity = [0.0] * len(velocity)
            self._inp.current_acceleration = [0.0] * len(velocity)
        self.velocity = velocity
        return self.position

    @property
    def guard_due(self) -> bool:
        """A guard snapshot is due on this tick (while a key is held)."""
        return self.request is not None and self._tick % self.guard_ticks == 0

    def snapshot(self) -> tuple[int, JogRequest | None, NDArray, NDArray, NDArray]:
        """What the guard judges: (tick, request, position, velocity, acceleration), copied."""
        return (self._tick, self.request, self.position.copy(), self.velocity.copy(),
                np.array(self._inp.current_acceleration))

    def grant(self, tick: int, request: JogRequest | None, target: NDArray[np.float64], reason: str) -> None:
        self._grant = (tick, request, target)
        self.blocked = reason

    def _granted_target(self) -> NDArray[np.float64]:
        """The guard's latest grant while it is fresh and for the request still held; else zero (brake)."""
        grant = self._grant
        if (self.request is None or grant is None or grant[1] != self.request
                or self._tick - grant[0] >= self.permit_ticks):
            return np.zeros(len(self.limits))
        return grant[2]

    # -- the guard --------------------------------------------------------------------------------------
    def evaluate(self, snapshot: tuple) -> tuple[int, JogRequest | None, NDArray[np.float64], str]:
        """The guard's verdict on ``snapshot``: (tick, request, target velocity, why held back or "")."""
        tick, request, position, velocity, acceleration = snapshot
        desired = self._desired(request, position)
        if not np.any(desired):
            return tick, request, desired, ""
        reason = (self._limit_block(desired, position, velocity, acceleration)
                  or self._clearance_block(desired, position, velocity, acceleration))
        return tick, request, (np.zeros_like(desired) if reason else desired), reason

    def _desired(self, request: JogRequest | None, position: NDArray[np.float64]) -> NDArray[np.float64]:
        n = len(self.limits)
        if request is None:
            return np.zeros(n)
        if request.axis is not None:
            out = np.zeros(n)
            out[request.axis] = request.direction * self.vjog[request.axis]
            return out
        return self._camera_velocity(request.camera, request.direction, position)

    def _camera_velocity(self, kind: CameraJog, direction: int, position: NDArray[np.float64]) -> NDArray[np.float64]:
        """Joint velocities for a camera twist, by damped least squares on a numerical Jacobian.

        Follow axes (the track) stay put: the arm alone moves the camera, the operator jogs the track
        on its own.  The result is scaled so no axis exceeds its jog speed.

        Numerical rather than roboticstoolbox's ``jacob0``: that gives the flange of the arm's own chain
        in its base frame, while the jog needs the camera's nodal point (the mount offset) in the stage
        frame, which is exactly what :meth:`Kinematics.camera` evaluates (one batched FK call).
        """
        q = position[: self.n_arm]
        h = 1e-6
        batch = np.vstack([q, q + h * np.eye(self.n_arm)])
        poses = self.kin.camera(batch)
        r0 = poses[0, :3, :3]
        jac = np.empty((6, self.n_arm))
        jac[:3] = ((poses[1:, :3, 3] - poses[0, :3, 3]) / h).T
        for i in range(self.n_arm):
            delta = poses[1 + i, :3, :3] @ r0.T
            jac[3:, i] = np.array([delta[2, 1] - delta[1, 2], delta[0, 2] - delta[2, 0],
                                   delta[1, 0] - delta[0, 1]]) / (2 * h)
        right, forward = r0[:, 0], r0[:, 1]
        twist = np.zeros(6)
        if kind is CameraJog.DOLLY:
            twist[:3] = forward * CAMERA_LINEAR_MPS
        elif kind is CameraJog.TRUCK:
            twist[:3] = right * CAMERA_LINEAR_MPS
        elif kind is CameraJog.PEDESTAL:
            twist[:3] = np.array([0.0, 0.0, CAMERA_LINEAR_MPS])
        elif kind is CameraJog.PAN:
            twist[3:] = np.array([0.0, 0.0, CAMERA_ANGULAR_RADPS])
        else:
            twist[3:] = right * CAMERA_ANGULAR_RADPS
        twist *= direction
        follow = [i for i, a in enumerate(self.rig.axes) if a.name in self.rig.follow]
        jac[:, follow] = 0.0
        qd = jac.T @ np.linalg.solve(jac @ jac.T + DAMPING ** 2 * np.eye(6), twist)
        out = np.zeros(len(self.limits))
        out[: self.n_arm] = qd
        scale = np.max(np.abs(out) / self.vjog)
        return out / scale if scale > 1.0 else out

    def _travel(self, desired: NDArray, velocity: NDArray, acceleration: NDArray) -> NDArray[np.float64]:
        """How far each axis can go over the horizon (a grant's life, then braking to rest).

        Its speed never exceeds the larger of the target's and the current one (plus what the present
        acceleration adds before the jerk limit takes it off): ``v``.  Braking from ``v`` at the jog's
        acceleration ``a`` and jerk ``j`` covers at most ``v^2 / 2a + v a / j`` (the constant-deceleration
        distance plus the jerk ramps' share).
        """
        v = np.minimum(np.maximum(np.abs(desired), np.abs(velocity)) + acceleration ** 2 / (2 * self.jjog), self.vjog)
        return v * self.permit_s + v ** 2 / (2 * self.ajog) + v * self.ajog / self.jjog

    def _limit_block(self, desired: NDArray, position: NDArray, velocity: NDArray, acceleration: NDArray) -> str:
        travel = self._travel(desired, velocity, acceleration)
        towards_hi = (desired > 0) & (self.hi - position < travel)
        towards_lo = (desired < 0) & (position - self.lo < travel)
        hit = np.flatnonzero(towards_hi | towards_lo)
        if not len(hit):
            return ""
        limit = self.limits[int(hit[0])]
        side = "upper" if towards_hi[hit[0]] else "lower"
        return f"{limit.name} is at its {side} soft limit"

    def _clearance_block(self, desired: NDArray, position: NDArray, velocity: NDArray, acceleration: NDArray) -> str:
        """Hold the jog back if a pair it brings closer could run out of spare clearance over the horizon.

        Each pair's distance is measured exactly now and one guard period ahead at the desired velocity:
        that is its rate of approach.  Over the horizon the jog covers at most ``horizon_equivalent_s``
        seconds' worth of that motion (a grant's life, then braking), so the predicted approach is the
        rate times that, doubled, plus ``CURVATURE_M`` for the distance not being linear in the joints.
        """
        n = self.n_arm
        q = position[:n]
        speed = np.abs(desired[:n])
        if not np.any(speed):
            return ""
        step = desired[:n] * GUARD_PERIOD_S
        frames = self.kin.link_frames(np.vstack([q, q + step]))
        now, ahead = self._pair_clearances(*self.kin.capsules_world(frames))
        rate = (ahead - now) / GUARD_PERIOD_S                       # m/s, negative when approaching
        travel = self._travel(desired, velocity, acceleration)[:n]
        moving = speed > 0
        equivalent_s = float(np.max(travel[moving] / speed[moving]))
        spare = now - self.required
        predicted = APPROACH_RESERVE * np.maximum(-rate, 0.0) * equivalent_s + CURVATURE_M
        blocked = (rate < -APPROACH_TOL_M / GUARD_PERIOD_S) & (spare < predicted)
        if not blocked.any():
            return ""
        worst = int(np.flatnonzero(blocked)[np.argmin(spare[blocked])])
        _, link, other, required = self.checker.pair_specs[worst]
        return (f"{link} would come within {required * 1000:.0f} mm of {other} "
                f"(now {now[worst] * 1000:.0f} mm): jog another way")

    def _pair_clearances(self, a: NDArray, b: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-pair clearance at the two poses (current, one guard period ahead)."""
        out = []
        for k in range(2):
            result = self.checker.check(a[k:k + 1], b[k:k + 1])
            out.append(np.array([p.min_m for p in result.pairs]))
        return out[0], out[1]
