"""The wider search behind a key's verdict: is the pose really unreachable, and by how much?

:class:`~motionctl.kinematics.ik.IKTracker` solves from one seed, which is right along a path (it keeps
the arm on its branch) but wrong as the last word on a *key*: a key far from the previous one, or a
folded pose, can defeat a single seeded solve although the pose has an exact solution in the pinned
configuration.  Calling such a key "out of reach" or "reachable only in another configuration" sends
the operator after the wrong problem (the audit of issue 12 found folded poses whose true problem was
self-clearance).  So before a key is declared unreachable this module

* searches from a fixed, deterministic set of starts: the previous key, park, and Halton points spread
  over the joint ranges on the pinned side of each pinned joint; for rigs with follow axes (the track)
  the follow axes are free in that solve (the chain is redundant there, which makes it converge from
  far away) and start from a grid over their range;
* keeps every exact solution (1e-6 m / 1e-5 rad, our own FK) and sorts it into the pinned configuration
  or another one; among pinned solutions the one the seeded solver would prefer wins (closest to the
  previous key, away from the pinned singularities, within limits first);
* says "another configuration" only when such a solution exists and no pinned one does, and otherwise
  measures the true miss: the smallest distance from the asked camera position to any position the
  rig can put the camera at within its joint limits, orientation aside, over the follow axes' range.

Everything is deterministic (no random numbers) and bounded: a fixed number of starts and iterations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import UnreachableError
from motionctl.rotations import invert, rotation_angle

if TYPE_CHECKING:
    from motionctl.kinematics.ik import IKResult, IKTracker

SPREAD_SEEDS = 14          # Halton starts over the arm's joint ranges (after previous key and park)
HELD_SPREAD_SEEDS = 40     # more of them when the follow axes are held (cheaper 6-DOF solves)
OTHER_SEEDS = 6            # starts per sign combination when looking for another configuration
FOLLOW_GRID = 9            # starts over each follow axis's range
SEARCH_ITERATIONS = 60
MISS_ITERATIONS = 120
MISS_ARM_SEEDS = 6
#: Below this position miss the camera can reach the point: it is the orientation that fails.
POSITION_REACHED_M = 1e-3
_SINGULAR_SIDE_RAD = 0.15  # spread seeds keep this far from a pinned joint's singular value
_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


@dataclass(frozen=True)
class Found:
    """Exact solutions of one pose found by the wide search."""

    pinned: tuple[IKResult, ...]    # in the pinned configuration (within limits or not)
    other: tuple[IKResult, ...]     # in another configuration, within limits


def halton(count: int, dims: int) -> NDArray[np.float64]:
    """The first ``count`` points (after the origin) of the Halton sequence in [0, 1)^dims.

    Low-discrepancy and fixed: the same starts every run, spread evenly however few there are.
    """
    out = np.zeros((count, dims))
    for d in range(dims):
        base = _PRIMES[d % len(_PRIMES)]
        for i in range(count):
            f, r, n = 1.0, 0.0, i + 1
            while n:
                f /= base
                r += f * (n % base)
                n //= base
            out[i, d] = r
    return out


def _side(tracker: IKTracker, column: int, sign: float | None) -> tuple[float, float]:
    """Interval to spread seeds of one joint over: one turn at most, on the ``sign`` side when pinned."""
    axis = tracker.rig.axes[column]
    lo, hi = axis.min, axis.max
    if not axis.linear and hi - lo > 2 * math.pi:
        lo, hi = -math.pi, math.pi
    if sign is None:
        return lo, hi
    if axis.linear:
        side = (max(lo, 0.0), hi) if sign > 0 else (lo, min(hi, 0.0))
    else:
        d = _SINGULAR_SIDE_RAD
        side = (max(lo, d), min(hi, math.pi - d)) if sign > 0 else (max(lo, -math.pi + d), min(hi, -d))
    return side if side[1] > side[0] else (lo, hi)


def spread_seeds(tracker: IKTracker, count: int,
                 signs: dict[int, float] | None = None) -> NDArray[np.float64]:
    """``count`` arm seeds (the columns after the follow axes) over the ranges, pinned joints on ``signs``.

    ``signs`` maps a column to the side to seed on; by default the rig's pinned configuration.
    """
    signs = {c: s for c, s, _ in tracker._config} if signs is None else signs
    n, k = tracker.kin.n, tracker.k
    points = halton(count, n - k)
    out = np.empty_like(points)
    for j, column in enumerate(range(k, n)):
        lo, hi = _side(tracker, column, signs.get(column))
        out[:, j] = lo + points[:, j] * (hi - lo)
    return out


def _follow_grid(tracker: IKTracker, count: int) -> NDArray[np.float64]:
    """Follow-axis starts: ``count`` values over each follow axis's range inside its soft margin."""
    axes = tracker.rig.axes[: tracker.k]
    grids = [np.linspace(a.min + a.soft_margin, a.max - a.soft_margin, count) for a in axes]
    return np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, tracker.k)


def _starts(tracker: IKTracker, seed: NDArray[np.float64], follow: NDArray[np.float64] | None,
            arms: NDArray[np.float64]) -> NDArray[np.float64]:
    """Full joint vectors to start from: (follow start) x (arm seed), in a fixed order."""
    k = tracker.k
    if k == 0 or follow is not None:
        follows = np.asarray(seed[:k] if follow is None else follow, dtype=float)[None]
    else:
        follows = np.concatenate([seed[None, :k], _follow_grid(tracker, FOLLOW_GRID)])
    return np.concatenate([np.repeat(follows, len(arms), axis=0), np.tile(arms, (len(follows), 1))], axis=1)


def _reach_bound(tracker: IKTracker) -> float:
    """An upper bound on the distance from the arm's base (after the follow axes) to the camera.

    The sum of the chain's constant offsets and of the prismatic joints' largest travel (rotations keep
    lengths): a start whose camera target is farther than this from the arm's base cannot converge.
    """
    total = float(np.linalg.norm(np.asarray(tracker.rig.camera_mount)[:3, 3]))
    for link in tracker.kin.links[tracker._split_link: tracker.kin.camera_link + 1]:
        total += float(np.linalg.norm(link.pre[:3, 3]) + np.linalg.norm(link.post[:3, 3]))
        if link.joint is not None and link.joint.prismatic:
            axis = tracker.rig.axes[tracker.rig.axis_index(link.joint.variable)]
            total += max(abs(axis.min), abs(axis.max))
    return total


def _solve_starts(tracker: IKTracker, target: NDArray[np.float64], starts: NDArray[np.float64],
                  held: bool) -> NDArray[np.float64]:
    """One LM solve per start (follow axes held, or solved with the arm); rows of NaN where none converged."""
    k, n = tracker.k, tracker.kin.n
    out = np.full((len(starts), n), np.nan)
    if held or k == 0:
        local = invert(tracker.arm_bases(starts[:, :k])) @ target
        reach = _reach_bound(tracker) + 1e-6
        for i, start in enumerate(starts):
            if np.linalg.norm(local[i][:3, 3]) > reach:
                continue
            arm = tracker._lm(local[i], start[k:], iterations=SEARCH_ITERATIONS)
            if arm is not None:
                out[i] = np.concatenate([start[:k], arm])
        return out
    root_target = invert(np.asarray(tracker.rig.base)) @ target
    lower, upper = tracker.rig.lower[:k], tracker.rig.upper[:k]
    for i, start in enumerate(starts):
        q = tracker.lm_full(root_target, start, iterations=SEARCH_ITERATIONS)
        if q is None:
            continue
        if np.any(q[:k] < lower) or np.any(q[:k] > upper):
            # Converged with the track beyond its end: hold it at the end and solve the arm there.
            held_at = np.clip(q[:k], lower, upper)
            local_target = invert(tracker._arm_base(held_at)) @ target
            arm = tracker._lm(local_target, q[k:], iterations=SEARCH_ITERATIONS)
            if arm is None:
                continue
            q = np.concatenate([held_at, arm])
        out[i] = q
    return out


def _sort(tracker: IKTracker, target: NDArray[np.float64], seed: NDArray[np.float64],
          solutions: NDArray[np.float64]) -> Found:
    """The exact solutions among ``solutions`` by configuration (another configuration: within limits only).

    Revolute joints are first shifted by whole turns to the in-range value nearest the previous key.
    """
    rows = solutions[np.all(np.isfinite(solutions), axis=1)]
    if not len(rows):
        return Found((), ())
    rows = np.array([tracker._nearest_turn(q, seed) for q in rows])
    poses = tracker.kin.camera(rows)
    exact = ((np.linalg.norm(poses[:, :3, 3] - target[:3, 3], axis=1) <= tracker.tol_position_m)
             & (rotation_angle(poses[:, :3, :3], target[:3, :3]) <= tracker.tol_angle_rad))
    pinned, other = [], []
    for q in rows[exact]:
        result = tracker._result(q, target)
        if tracker.configuration_ok(q):
            pinned.append(result)
        elif result.within_limits:
            other.append(result)
    return Found(tuple(pinned), tuple(other))


def search_pinned(tracker: IKTracker, target: NDArray[np.float64], seed: NDArray[np.float64],
                  park: NDArray[np.float64], follow: NDArray[np.float64] | None = None) -> Found:
    """Exact solutions of ``target`` from the fixed starts, in stages (cheap starts first).

    Stage one starts from the previous key's and park's arm, stage two from the spread seeds (on the
    pinned side of each pinned joint); a stage that finds a pinned solution within limits ends the search.
    The follow axes start from the previous key's value and a grid over their range, unless held.
    """
    target, seed = np.asarray(target, dtype=float), np.asarray(seed, dtype=float)
    k = tracker.k
    held = k == 0 or follow is not None
    stages = [np.stack([seed[k:], np.asarray(park, dtype=float)[k:]]),
              spread_seeds(tracker, HELD_SPREAD_SEEDS if held else SPREAD_SEEDS)]
    pinned: list[IKResult] = []
    other: list[IKResult] = []
    for arms in stages:
        starts = _starts(tracker, seed, follow, arms)
        found = _sort(tracker, target, seed, _solve_starts(tracker, target, starts, held))
        pinned += found.pinned
        other += found.other
        if any(r.within_limits for r in pinned):
            break
    return Found(tuple(pinned), tuple(other))


def search_other(tracker: IKTracker, target: NDArray[np.float64], seed: NDArray[np.float64],
                 follow: NDArray[np.float64] | None = None) -> tuple[IKResult, ...]:
    """Exact solutions within limits in another configuration than the pinned one (the first side with any).

    Only asked when the pinned search found nothing and the position is reachable: it is what decides
    between "only in another configuration" and "not in this orientation".
    """
    target, seed = np.asarray(target, dtype=float), np.asarray(seed, dtype=float)
    held = tracker.k == 0 or follow is not None
    config = [(c, s) for c, s, _ in tracker._config]
    for mask in range(1, 2 ** len(config)):
        side = {c: (-s if mask >> i & 1 else s) for i, (c, s) in enumerate(config)}
        arms = spread_seeds(tracker, OTHER_SEEDS, side)
        starts = _starts(tracker, seed, follow, arms)
        other = _sort(tracker, target, seed, _solve_starts(tracker, target, starts, held)).other
        if other:
            return other
    return ()


def solve_key(tracker: IKTracker, target: NDArray[np.float64], seed: NDArray[np.float64], *,
              park: NDArray[np.float64], follow: NDArray[np.float64] | None = None,
              frame: int | None = None) -> IKResult:
    """Solve a key's camera pose: seeded first, then the wide search if that fails or leaves a joint limit.

    Returns the pinned-configuration solution the seeded solver would prefer (closest to the previous key,
    within limits first; one beyond a limit is returned so that the key check names the axis).  Raises
    :class:`UnreachableError` with the true reason, in this order: out of reach (the camera cannot get to
    the position in any orientation: by the measured distance), reachable only in another configuration
    (one was found, and no pinned one), or the position is reachable but not in this orientation.
    """
    target, seed, park = (np.asarray(x, dtype=float) for x in (target, seed, park))
    seeded = tracker.solve_near(target, seed, follow)
    if seeded is not None and seeded.within_limits:
        return seeded
    found = search_pinned(tracker, target, seed, park, follow)
    candidates = list(found.pinned) + ([seeded] if seeded is not None else [])
    if candidates:
        return min(candidates, key=lambda r: tracker.cost(r.q, seed))
    other, miss = found.other, 0.0
    if not other:
        miss = closest_approach(tracker, target[:3, 3], seed, park, follow)[0]
        if miss > POSITION_REACHED_M:
            raise out_of_reach(tracker, target, seed, park, follow, frame, miss=miss)
        other = search_other(tracker, target, seed, follow)
    if other:
        nearest = min(other, key=lambda r: tracker.cost(r.q, seed))
        has = ", ".join(f"{name} {side}" for name, side in tracker.configuration_of(nearest.q).items())
        raise UnreachableError(f"camera pose is reachable only in another arm configuration ({has}; pinned: "
                               f"{tracker.pinned_text()}): no solution in the pinned one",
                               frame=frame, position_error_m=0.0, angle_error_rad=0.0)
    raise out_of_reach(tracker, target, seed, park, follow, frame, miss=miss)


def out_of_reach(tracker: IKTracker, target: NDArray[np.float64], seed: NDArray[np.float64],
                 park: NDArray[np.float64], follow: NDArray[np.float64] | None, frame: int | None, *,
                 searched: bool = True, miss: float | None = None) -> UnreachableError:
    """The error for a pose no solve reached, with the measured closest approach of the camera (``miss``).

    ``searched``: the wide search found no exact solution in any configuration, so when the position
    itself is reachable it is the orientation that cannot be had.  Without it (a seeded solve along a
    path failed) all that is known is that no solution continues from the previous one.
    """
    if miss is None:
        miss = closest_approach(tracker, target[:3, 3], seed, park, follow)[0]
    where = np.round(target[:3, 3], 3).tolist()
    scope = _scope(tracker, seed if follow is None else np.concatenate([follow, seed[tracker.k:]]),
                   held=follow is not None)
    if miss > POSITION_REACHED_M:
        text = (f"camera pose at {where} m is out of reach: the closest the camera can get to that position "
                f"is {miss * 1000:.0f} mm away (any orientation, {scope})")
    elif searched:
        text = (f"camera pose at {where} m cannot be reached in this orientation: the camera can reach the "
                f"position ({scope}), but no arm solution found gives this orientation")
    else:
        pinned = f" in the pinned configuration ({tracker.pinned_text()})" if tracker._config else ""
        text = (f"the solver found no solution{pinned} that continues from the previous one to the camera "
                f"pose at {where} m (the camera can reach the position, {scope})")
    return UnreachableError(text, frame=frame, position_error_m=miss)


def _scope(tracker: IKTracker, q: NDArray[np.float64], held: bool) -> str:
    """Where the follow axes were allowed to be while measuring the miss, in words."""
    if tracker.k == 0:
        return "within the joint limits"
    axes = tracker.rig.axes[: tracker.k]
    if held:
        values = ", ".join(f"{a.name} at {a.to_file(q[i]):.3f} {a.file_unit}" for i, a in enumerate(axes))
        return f"{values}, arm within its joint limits"
    return " and ".join(f"anywhere along {a.name}" for a in axes) + ", within the joint limits"


# -- the closest approach: position only, follow axes free or held -----------------------------------
def _position_jacobian(tracker: IKTracker,
                       q: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Camera positions (N, 3) and their Jacobians (N, 3, n) from one batched FK pass."""
    kin = tracker.kin
    frames = kin.link_frames(q, upto=kin.camera_link)
    position = (frames[:, -1] @ np.asarray(kin.rig.camera_mount))[:, :3, 3]
    jac = np.zeros((len(q), 3, kin.n))
    names = kin.rig.axis_names
    base = np.broadcast_to(np.asarray(kin.rig.base), (len(q), 4, 4))
    for i, link in enumerate(kin.links[: kin.camera_link + 1]):
        if link.joint is None:
            continue
        pivot = (frames[:, i - 1] if i else base) @ link.pre
        axis = pivot[:, :3, link.joint.direction] * link.joint.sign
        column = names.index(link.joint.variable)
        jac[:, :, column] += axis if link.joint.prismatic else np.cross(axis, position - pivot[:, :3, 3])
    return position, jac


def closest_approach(tracker: IKTracker, position: NDArray[np.float64], seed: NDArray[np.float64],
                     park: NDArray[np.float64], follow: NDArray[np.float64] | None = None,
                     ) -> tuple[float, NDArray[np.float64]]:
    """Smallest distance from ``position`` to any camera position within the joint limits, and the joints.

    Orientation is left free (that is what makes the number a distance one can act on: move the key this
    far).  The follow axes are free over their range unless ``follow`` holds them.  Bounded Levenberg-
    Marquardt on the position error, batched over a fixed set of starts (follow grid x a few arm seeds),
    steps projected onto the joint limits.
    """
    position = np.asarray(position, dtype=float)
    seed = np.asarray(seed, dtype=float)
    k, n = tracker.k, tracker.kin.n
    arms = np.concatenate([seed[None, k:], np.asarray(park, dtype=float)[None, k:],
                           spread_seeds(tracker, MISS_ARM_SEEDS, signs={})])
    if k == 0 or follow is not None:
        follows = np.asarray(seed[:k] if follow is None else follow, dtype=float)[None]
    else:
        follows = np.concatenate([seed[None, :k], _follow_grid(tracker, FOLLOW_GRID)])
    q = np.concatenate([np.repeat(follows, len(arms), axis=0), np.tile(arms, (len(follows), 1))], axis=1)
    lower, upper = tracker.rig.lower.copy(), tracker.rig.upper.copy()
    free = np.ones(n, dtype=bool)
    if follow is not None:
        free[:k] = False
    q = np.clip(q, lower, upper)
    p, jac = _position_jacobian(tracker, q)
    err = p - position
    cost = np.einsum("ij,ij->i", err, err)
    damping = np.full(len(q), 1e-3)
    eye = np.eye(int(free.sum()))
    for _ in range(MISS_ITERATIONS):
        j = jac[:, :, free]
        jtj = np.einsum("nki,nkj->nij", j, j)
        grad = np.einsum("nki,nk->ni", j, err)
        step = -np.linalg.solve(jtj + damping[:, None, None] * eye, grad[..., None])[..., 0]
        trial = q.copy()
        trial[:, free] = np.clip(q[:, free] + step, lower[free], upper[free])
        tp, tjac = _position_jacobian(tracker, trial)
        terr = tp - position
        tcost = np.einsum("ij,ij->i", terr, terr)
        better = tcost < cost
        q[better], err[better], jac[better] = trial[better], terr[better], tjac[better]
        cost[better] = tcost[better]
        damping = np.where(better, np.maximum(damping / 3, 1e-9), np.minimum(damping * 4, 1e6))
        if np.all(damping >= 1e6):
            break
    best = int(np.argmin(cost))
    return float(math.sqrt(cost[best])), q[best]
