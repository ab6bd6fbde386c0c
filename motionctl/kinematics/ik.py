"""Inverse kinematics that *tracks*: seeded from the previous solution, configuration pinned, tight tolerance.

The numerical solve is roboticstoolbox's compiled Levenberg-Marquardt (``ETS.ik_LM``) started from a
single seed (``slimit=1``: no random restarts, which is what makes elbows and wrists flip silently in
other tools).  Around it this module adds what a camera move needs:

* a tolerance of 1e-6 m / 1e-5 rad, verified with our own FK (the library's default residual allows
  about a millimetre);
* continuation: if a pose is far from the seed, the solver walks there through intermediate poses so
  it stays on the same branch of solutions;
* the rig's pinned configuration (sign of sin q for e.g. elbow and wrist): a solution on another branch
  is refused, not returned;
* *follow* axes (a track under an arm): they lead the chain, are held at given values while the rest of
  the arm is solved, and at keys where nobody pinned them a small search picks the value that moves the
  arm least;
* revolute solutions are shifted by whole turns to the in-range value nearest the seed (same pose).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from roboticstoolbox import ET, ETS

from motionctl.errors import SpecError, UnreachableError
from motionctl.kinematics.fk import Kinematics
from motionctl.kinematics.ik_search import out_of_reach
from motionctl.rotations import invert, rotation_angle

TOL_POSITION_M = 1e-6
TOL_ANGLE_RAD = 1e-5
_LM_TOL = 1e-20          # residual E = 0.5 e^T e of the compiled solver: far below our tolerance
_LM_ITERATIONS = 80
_CONTINUATION = (1, 4, 16)
_FOLLOW_GRID = 25
_SEARCH_ITERATIONS = 30
_WALK_CANDIDATES = 4


@dataclass(frozen=True)
class IKResult:
    """A solution (possibly beyond a joint limit) and how good it is."""

    q: NDArray[np.float64]
    position_error_m: float
    angle_error_rad: float
    beyond_limits: tuple[str, ...] = field(default=())   # axes outside [min, max]

    @property
    def within_limits(self) -> bool:
        return not self.beyond_limits


def _interpolate_pose(a: NDArray[np.float64], b: NDArray[np.float64], s: float) -> NDArray[np.float64]:
    """Pose a fraction ``s`` of the way from ``a`` to ``b`` (straight line, shortest rotation)."""
    from scipy.spatial.transform import Rotation, Slerp
    out = np.eye(4)
    out[:3, 3] = (1 - s) * a[:3, 3] + s * b[:3, 3]
    slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([a[:3, :3], b[:3, :3]])))
    out[:3, :3] = slerp([s]).as_matrix()[0]
    return out


def _converged(sol) -> NDArray[np.float64] | None:
    """The joints of a converged compiled LM solve, else None.

    When a search runs out of iterations the compiled solver does not return its last iterate: it has
    already drawn a fresh *random* start for the next search (``_rand_q``, even with ``slimit=1``) and
    hands that back.  Using it made failures nondeterministic (a "best attempt" that missed by 2690 mm
    in one run and 3075 mm in another) and seeded later solves from noise, so it is never used.
    """
    q = np.asarray(sol[0], dtype=float)
    return q if sol.success and np.all(np.isfinite(q)) else None


class IKTracker:
    """Solve camera poses for one rig, keeping the arm on one branch of solutions."""

    def __init__(self, kinematics: Kinematics, *, tol_position_m: float = TOL_POSITION_M,
                 tol_angle_rad: float = TOL_ANGLE_RAD) -> None:
        self.kin = kinematics
        rig = kinematics.rig
        self.rig = rig
        self.tol_position_m = tol_position_m
        self.tol_angle_rad = tol_angle_rad
        names = list(rig.axis_names)
        self.follow_columns = [names.index(f) for f in rig.follow]
        if self.follow_columns != list(range(len(self.follow_columns))):
            raise SpecError("follow axes must be the first axes of the chain (e.g. the track under an arm)",
                            file=rig.file, key="ik.follow")
        self.k = len(self.follow_columns)
        self._split_link = self._first_link_after_follow()
        self._arm_ets = self._build_ets(self._split_link)
        self._full_ets = self._build_ets(0)
        self._lower, self._upper = rig.lower, rig.upper
        self._config = [(names.index(a), s, rig.axes[names.index(a)].linear)
                        for a, s in rig.configuration.items()]

    # -- chain plumbing -----------------------------------------------------------------------------
    def _first_link_after_follow(self) -> int:
        moved = 0
        for i, link in enumerate(self.kin.links):
            if moved == self.k:
                return i
            if link.joint is not None:
                moved += 1
        return len(self.kin.links)

    def _build_ets(self, start: int) -> ETS:
        """roboticstoolbox ETS from link ``start`` to the camera, joints numbered from 0."""
        elements: list[ET] = []
        column = 0
        for link in self.kin.links[start: self.kin.camera_link + 1]:
            if not np.allclose(link.pre, np.eye(4)):
                elements.append(ET.SE3(np.array(link.pre)))
            if link.joint is not None:
                maker = {(True, 0): ET.tx, (True, 1): ET.ty, (True, 2): ET.tz,
                         (False, 0): ET.Rx, (False, 1): ET.Ry, (False, 2): ET.Rz}[
                    (link.joint.prismatic, link.joint.direction)]
                elements.append(maker(jindex=column, flip=link.joint.sign < 0))
                column += 1
            if not np.allclose(link.post, np.eye(4)):
                elements.append(ET.SE3(np.array(link.post)))
        elements.append(ET.SE3(np.array(self.rig.camera_mount)))
        return ETS(elements)

    def _arm_base(self, follow: NDArray[np.float64]) -> NDArray[np.float64]:
        """Stage frame of the link before the solved part, for given follow-axis values."""
        return self.arm_bases(np.asarray(follow, dtype=float)[None])[0]

    # -- checks ---------------------------------------------------------------------------------------
    def errors(self, q: NDArray[np.float64], target: NDArray[np.float64]) -> tuple[float, float]:
        pose = self.kin.camera(q)
        return (float(np.linalg.norm(pose[:3, 3] - target[:3, 3])),
                float(rotation_angle(pose[:3, :3], target[:3, :3])))

    def configuration_ok(self, q: NDArray[np.float64]) -> bool:
        for column, sign, linear in self._config:
            value = q[column] if linear else math.sin(q[column])
            if value * sign <= 0:
                return False
        return True

    def singularity_penalty(self, q: NDArray[np.float64]) -> float:
        """Grows as a pinned joint nears its singular value (sin q = 0)."""
        penalty = 0.0
        for column, _, linear in self._config:
            if not linear:
                penalty += 0.05 / max(math.sin(q[column]) ** 2, 1e-6)
        return penalty

    def configuration_of(self, q: NDArray[np.float64]) -> dict[str, str]:
        return {self.rig.axes[c].name: ("positive" if (q[c] if lin else math.sin(q[c])) > 0 else "negative")
                for c, _, lin in self._config}

    def _nearest_turn(self, q: NDArray[np.float64], seed: NDArray[np.float64]) -> NDArray[np.float64]:
        """Shift revolute joints by whole turns to the value nearest the seed that lies in [min, max].

        The same pose, but the joint does not unwind a full turn between neighbouring samples.
        """
        out = q.copy()
        for i, axis in enumerate(self.rig.axes):
            if axis.linear:
                continue
            turns = np.round((seed[i] - q[i]) / (2 * math.pi)) + np.array([0.0, -1.0, 1.0])
            options = q[i] + 2 * math.pi * turns
            inside = [v for v in options if axis.min <= v <= axis.max]
            if inside:
                out[i] = min(inside, key=lambda v: abs(v - seed[i]))
        return out

    def _result(self, q: NDArray[np.float64], target: NDArray[np.float64]) -> IKResult:
        pe, ae = self.errors(q, target)
        beyond = tuple(a.name for i, a in enumerate(self.rig.axes) if not a.min <= q[i] <= a.max)
        return IKResult(q, pe, ae, beyond)

    # -- solving --------------------------------------------------------------------------------------
    def _lm(self, local_target: NDArray[np.float64], seed_arm: NDArray[np.float64],
            iterations: int = _LM_ITERATIONS) -> NDArray[np.float64] | None:
        # The compiled solver wants a writable, contiguous float64 seed (models hold read-only arrays).
        return _converged(self._arm_ets.ik_LM(np.ascontiguousarray(local_target, dtype=float),
                                              q0=np.array(seed_arm, dtype=float), ilimit=iterations, slimit=1,
                                              tol=_LM_TOL, joint_limits=False))

    def lm_full(self, root_target: NDArray[np.float64], start: NDArray[np.float64],
                iterations: int = _LM_ITERATIONS) -> NDArray[np.float64] | None:
        """One LM solve of the whole chain, follow axes included (``root_target`` in the rig's root frame).

        With the follow axes free the chain is redundant, which lets the wide search at keys
        (:mod:`motionctl.kinematics.ik_search`) converge from starts far from the answer.
        """
        return _converged(self._full_ets.ik_LM(np.ascontiguousarray(root_target, dtype=float),
                                               q0=np.array(start, dtype=float), ilimit=iterations, slimit=1,
                                               tol=_LM_TOL, joint_limits=False))

    def cost(self, q: NDArray[np.float64], seed: NDArray[np.float64]) -> float:
        """How much a solution is disliked: joint motion from the seed, nearness to the pinned singularities.

        Metres of follow axis and radians of arm joint weigh alike: move as little as possible, and stay
        away from the singularities the configuration pins (elbow straight, wrist flip), where the wrist
        would have to spin fast to follow a smooth camera path.  Out-of-range solutions come last.
        """
        return (float(np.sum((q - seed) ** 2)) + self.singularity_penalty(q) + 1e3 * (not self._in_range(q)))

    def solve_arm(self, target: NDArray[np.float64], seed: NDArray[np.float64],
                  follow: NDArray[np.float64] | None = None, *,
                  steps: tuple[int, ...] = _CONTINUATION) -> IKResult | None:
        """Solve with follow axes held (at ``follow``, default the seed's); None if no branch-keeping solution."""
        seed = np.asarray(seed, dtype=float)
        fixed = seed[: self.k] if follow is None else np.asarray(follow, dtype=float)
        base_inv = invert(self._arm_base(fixed))
        start_pose = self.kin.camera(np.concatenate([fixed, seed[self.k:]]))
        for count in steps:
            arm = seed[self.k:].copy()
            for step in range(1, count + 1):
                pose = target if step == count else _interpolate_pose(start_pose, target, step / count)
                solved = self._lm(base_inv @ pose, arm)
                if solved is None:
                    break
                arm = solved
            else:
                q = self._nearest_turn(np.concatenate([fixed, arm]), seed)
                result = self._result(q, target)
                if (result.position_error_m <= self.tol_position_m and result.angle_error_rad <= self.tol_angle_rad
                        and self.configuration_ok(q)):
                    return result
        return None

    def solve(self, target: NDArray[np.float64], seed: NDArray[np.float64], *,
              follow: NDArray[np.float64] | None = None, frame: int | None = None) -> IKResult:
        """Solve one camera pose near ``seed`` (see :meth:`solve_near`).

        Raises :class:`UnreachableError` (naming ``frame``) when no solution near the seed keeps the
        pinned configuration.  Keys use :func:`~motionctl.kinematics.ik_search.solve_key`, which searches
        wider before it says a pose is unreachable.
        """
        target = np.asarray(target, dtype=float)
        seed = np.asarray(seed, dtype=float)
        result = self.solve_near(target, seed, follow)
        if result is None:
            free = self.k > 0 and follow is None
            raise self._unreachable(target, seed, frame, follow, free=free)
        return result

    def solve_near(self, target: NDArray[np.float64], seed: NDArray[np.float64],
                   follow: NDArray[np.float64] | None = None) -> IKResult | None:
        """Solve one camera pose near ``seed``; None when no solution near it keeps the pinned configuration.

        ``follow`` pins the follow axes; when it is None and the rig has follow axes, they are searched
        over their range for the solution closest to the seed (within limits if any is).
        """
        target = np.asarray(target, dtype=float)
        seed = np.asarray(seed, dtype=float)
        if self.k == 0 or follow is not None:
            return self.solve_arm(target, seed, follow)
        axes = self.rig.axes[: self.k]
        grids = [np.linspace(a.min + a.soft_margin, a.max - a.soft_margin, _FOLLOW_GRID) for a in axes]
        candidates = np.concatenate([seed[None, : self.k],
                                     np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, self.k)])
        # One LM solve per candidate from the seed's arm, verified together with one batched FK.
        local = invert(self.arm_bases(candidates)) @ target
        solutions = np.full((len(candidates), self.kin.n), np.nan)
        for i, values in enumerate(candidates):
            arm = self._lm(local[i], seed[self.k:], iterations=_SEARCH_ITERATIONS)
            if arm is not None:
                solutions[i] = self._nearest_turn(np.concatenate([values, arm]), seed)
        usable = np.flatnonzero(np.all(np.isfinite(solutions), axis=1))
        ok = usable[self.reaches(solutions[usable], target)] if len(usable) else usable
        if not len(ok):
            # Nothing converged in one go: walk there by continuation, trying the follow positions that
            # put the arm's base nearest the camera first.
            bases = self.arm_bases(candidates)
            order = np.argsort(np.linalg.norm(bases[:, :2, 3] - target[:2, 3], axis=1), kind="stable")
            walked = [r for r in (self.solve_arm(target, seed, candidates[i]) for i in order[:_WALK_CANDIDATES])
                      if r is not None]
            if not walked:
                return None
            return min(walked, key=lambda r: self.cost(r.q, seed))
        costs = [self.cost(solutions[i], seed) for i in ok]
        return self._result(solutions[ok[int(np.argmin(costs))]], target)

    # -- batched helpers for tracking a path ----------------------------------------------------------
    def arm_bases(self, follow: NDArray[np.float64]) -> NDArray[np.float64]:
        """Stage frames (N, 4, 4) of the link before the solved part, for N follow-axis vectors."""
        if self._split_link == 0:
            return np.broadcast_to(np.asarray(self.rig.base), (len(follow), 4, 4))
        q = np.zeros((len(follow), self.kin.n))
        q[:, : self.k] = follow
        return self.kin.link_frames(q, upto=self._split_link - 1)[:, -1]

    def reaches(self, q: NDArray[np.float64], targets: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Which solutions (N, n) hit their targets within tolerance in the pinned configuration."""
        poses = self.kin.camera(q)
        pos = np.linalg.norm(poses[..., :3, 3] - targets[..., :3, 3], axis=-1) <= self.tol_position_m
        ang = rotation_angle(poses[..., :3, :3], targets[..., :3, :3]) <= self.tol_angle_rad
        conf = np.ones(len(q), dtype=bool)
        for column, sign, linear in self._config:
            value = q[:, column] if linear else np.sin(q[:, column])
            conf &= value * sign > 0
        return pos & ang & conf

    def _in_range(self, q: NDArray[np.float64]) -> bool:
        return bool(np.all((q >= self._lower) & (q <= self._upper)))

    def track(self, targets: NDArray[np.float64], follow: NDArray[np.float64], seed: NDArray[np.float64],
              frames: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
        """Solve a sequence of nearby poses in order, each seeded from the previous solution.

        ``follow`` (N, k) holds the follow axes at every pose.  Fast path: one LM call per pose, then one
        batched check; poses that fail it are solved again with continuation from their predecessor.
        Raises :class:`UnreachableError` naming the frame (``frames[i]``) of the first pose that fails.
        """
        count = len(targets)
        local = invert(self.arm_bases(follow)) @ targets
        out = np.empty((count, self.kin.n))
        previous = np.asarray(seed, dtype=float)
        for i in range(count):
            arm = self._lm(local[i], previous[self.k:])
            out[i, : self.k] = follow[i]
            out[i, self.k:] = arm if arm is not None else np.nan
            if arm is not None:
                previous = out[i]
        # The compiled solver returns angles wrapped to one turn: unwrap along the sequence (neighbours
        # are close), then put the whole sequence on the turn nearest the seed.
        revolute = [i for i, a in enumerate(self.rig.axes) if not a.linear and i >= self.k]
        finite = np.all(np.isfinite(out), axis=1)
        if finite.any():
            rows = np.flatnonzero(finite)
            out[np.ix_(rows, revolute)] = np.unwrap(out[np.ix_(rows, revolute)], axis=0)
            first = out[rows[0]]
            shift = self._nearest_turn(first, np.asarray(seed, dtype=float)) - first
            out[np.ix_(rows, revolute)] += shift[revolute]
        good = np.all(np.isfinite(out), axis=1)
        good[good] = self.reaches(out[good], targets[good])
        for i in np.flatnonzero(~good):
            before = out[i - 1] if i else np.asarray(seed, dtype=float)
            result = self.solve_arm(targets[i], before, follow[i])
            if result is None:
                raise self._unreachable(targets[i], before, None if frames is None else int(frames[i]))
            out[i] = result.q
        return out

    def _singular_axes(self, q: NDArray[np.float64]) -> str:
        """Names of the axes that combine into a lost direction when the arm's Jacobian is singular."""
        jac = self._arm_ets.jacob0(np.array(q[self.k:], dtype=float))
        _, sv, vt = np.linalg.svd(jac)
        if sv[-1] > 1e-6 * sv[0]:
            return ""
        names = self.rig.axis_names[self.k:]
        weights = np.abs(vt[-1])
        involved = [names[i] for i in np.argsort(-weights) if weights[i] > 0.2]
        return " and ".join(involved[:3]) or "several axes"

    def pinned_text(self) -> str:
        """The pinned configuration in words (from the rig, not from any solution)."""
        return ", ".join(f"{self.rig.axes[c].name} {'positive' if sign > 0 else 'negative'}"
                         for c, sign, _ in self._config)

    def _unreachable(self, target: NDArray[np.float64], seed: NDArray[np.float64], frame: int | None,
                     follow: NDArray[np.float64] | None = None, *, free: bool = False) -> UnreachableError:
        """Explain a failure of the seeded solver (along a path: continuing from ``seed``).

        What is said must be true of the solve that failed, which looked near the seed only: the nearest
        solution is on another branch (following it would flip the arm), the seed is singular, or the
        position is out of reach by the *measured* closest approach (with the follow axes held, or over
        their range when ``free``).  Keys get the wide search first (:func:`ik_search.solve_key`).
        """
        held = seed[: self.k] if follow is None else np.asarray(follow, dtype=float)
        loose = self._lm(invert(self._arm_base(held)) @ target, seed[self.k:])
        if loose is not None:
            q = np.concatenate([held, loose])
            pe, ae = self.errors(q, target)
            if pe <= self.tol_position_m and ae <= self.tol_angle_rad and not self.configuration_ok(q):
                found = ", ".join(f"{k} {v}" for k, v in self.configuration_of(q).items())
                return UnreachableError(
                    f"from the previous solution the solver reaches this camera pose only in another arm "
                    f"configuration ({found}; pinned: {self.pinned_text()}): following it would flip the arm",
                    frame=frame, position_error_m=pe, angle_error_rad=ae)
        singular = self._singular_axes(seed)
        if singular:
            return UnreachableError(f"the rig is at a singular configuration here ({singular} move the camera the "
                                    "same way), so it cannot follow this camera path; change the path, or key "
                                    "joints through this stretch", frame=frame)
        return out_of_reach(self, target, np.concatenate([held, seed[self.k:]]), np.asarray(self.rig.park),
                            None if free else held, frame, searched=False)
