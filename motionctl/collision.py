"""Clearance of a rig's collision capsules from the stage and from each other, over whole trajectories.

The distance kernels live in :mod:`motionctl.collision_kernels` and are re-exported here.  This module
adds :class:`ClearanceChecker`: for a trajectory sampled at every servo tick, the minimum clearance of
every (link, zone) and (link, link) pair with the tick where it happens, and every run of consecutive
ticks where a pair is closer than it must be -- the answer of evaluating every pair at every tick (see
:meth:`ClearanceChecker.check` for the argument and the one tolerance), at a fraction of the cost: the
planner checks 60 000-tick moves against ~200 pairs.

Clearance = segment distance - capsule radius (minus both radii for self pairs).  Negative values mean
overlap and are not penetration depths (see :func:`capsule_clearance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from motionctl.collision_kernels import (
    capsule_clearance, seg_box, seg_cylinder, seg_plane, seg_point, seg_seg, segment_box_distance,
    segment_capsule_distance, segment_cylinder_distance, segment_plane_distance, segment_segment_distance,
    segment_shape_distance, segment_sphere_distance, stack_shapes, support)
from motionctl.kinematics.fk import CapsuleSet
from motionctl.spec.rig import Rig
from motionctl.spec.shapes import Box, Capsule, Cylinder, Plane, Sphere
from motionctl.spec.stage import Stage

__all__ = ["ClearanceChecker", "ClearanceResult", "ClearanceRun", "PairClearance", "DEFAULT_LEVELS",
           "EPS_M", "TIE_M", "capsule_clearance", "segment_box_distance", "segment_capsule_distance",
           "segment_cylinder_distance", "segment_plane_distance", "segment_segment_distance",
           "segment_shape_distance", "segment_sphere_distance"]

#: Window sizes (ticks) of the refinement hierarchy, coarsest first; each divides the one before.
DEFAULT_LEVELS = (1024, 128, 16, 1)
#: Slack on every bound: covers rounding in kernels and bounds (~1e-13 m; the cylinder search ~1e-11 m).
EPS_M = 1e-10
#: A window is not searched for a pair's minimum unless it could beat the best value by more than this.
TIE_M = 1e-9

_BOX, _CYLINDER, _SPHERE, _CAPSULE, _PLANE, _SELF = range(6)
_CODES = {Box: _BOX, Cylinder: _CYLINDER, Sphere: _SPHERE, Capsule: _CAPSULE, Plane: _PLANE}
_BATCH = 16384                          # rows per kernel call: keeps temporaries in cache
_MERGE = {"ep": np.add, "el": np.add, "lo": np.minimum, "hi": np.maximum}   # by key suffix


@dataclass(frozen=True)
class PairClearance:
    """Minimum clearance of one link from one zone ("obstacle"/"keepout") or one other link ("self")."""

    kind: str
    link: str
    other: str           # zone name, or the later link in the chain
    required_m: float
    min_m: float
    tick: int            # a tick where ``min_m`` is reached (the first, see ClearanceChecker.check)


@dataclass(frozen=True)
class ClearanceRun:
    """Consecutive ticks ``first_tick..last_tick`` (inclusive) where pair ``pair`` is below required."""

    pair: int            # index into ClearanceResult.pairs
    first_tick: int
    last_tick: int
    min_m: float
    tick_of_min: int     # first tick of the run where ``min_m`` is reached


@dataclass(frozen=True)
class ClearanceResult:
    """Per-pair minima, violation runs (ordered by first tick, then pair) and the smallest clearance.

    With no pairs at all ``min_m`` is ``inf`` and ``min_pair`` is -1.
    """

    pairs: tuple[PairClearance, ...]
    runs: tuple[ClearanceRun, ...]
    min_m: float
    min_pair: int

    @property
    def ok(self) -> bool:
        return not self.runs


def _dot(u: NDArray, v: NDArray) -> NDArray:
    return u[..., 0] * v[..., 0] + u[..., 1] * v[..., 1] + u[..., 2] * v[..., 2]


def _box_high(lo: NDArray, hi: NDArray, n: NDArray) -> NDArray:
    """Highest value of n.p over the axis-aligned boxes ``lo..hi`` (row-wise)."""
    return _dot(np.maximum(n * lo, n * hi), np.ones(3))


def _bodies(rig: Rig) -> list[int]:
    """Rigid-body index per link: joints up to and including it (fixed joints merge links)."""
    out, count = [], 0
    for link in rig.links:
        count += link.joint is not None
        out.append(count)
    return out


class ClearanceChecker:
    """Checks capsule trajectories against a stage and the rig itself.  Build once, call per move.

    A *pair* is (link, zone) or (link, link); a link with several capsules contributes one *item* per
    capsule (or capsule pair), and the pair's clearance at a tick is the minimum over its items.
    Pairs are ordered: zone pairs by link (chain order) then zone (file order), then self pairs by
    (earlier link, later link).  Links in a zone's ``ignore_links``, links on the same or adjacent
    rigid bodies (body indexes differing by < 2) and pairs in ``rig.ignore_pairs`` are not checked.
    """

    def __init__(self, rig: Rig, stage: Stage | None, capsules: CapsuleSet,
                 levels: tuple[int, ...] = DEFAULT_LEVELS) -> None:
        if not levels or levels[-1] != 1 or any(w <= n or w % n for w, n in zip(levels, levels[1:])):
            raise ValueError(f"levels must decrease to 1, each dividing the previous: {levels}")
        self.levels = tuple(int(w) for w in levels)
        self.capsule_count = len(capsules.names)
        zones = stage.zones if stage is not None else ()
        body = _bodies(rig)
        own = [[c for c in range(self.capsule_count) if capsules.link[c] == i] for i in range(len(rig.links))]
        specs: list[tuple[str, str, str, float]] = []
        items: list[tuple[int, int, int, int, float]] = []       # pair, code, capsule, other, radii
        for li, link in enumerate(rig.links):
            for zi, zone in enumerate(zones):
                if own[li] and link.name not in zone.ignore_links:
                    specs.append((zone.kind.value, link.name, zone.name, float(zone.clearance_m)))
                    items += [(len(specs) - 1, _CODES[type(zone.shape)], c, zi, float(capsules.radius[c]))
                              for c in own[li]]
        for li, lj in ((i, j) for i in range(len(rig.links)) for j in range(i + 1, len(rig.links))):
            names = (rig.links[li].name, rig.links[lj].name)
            if own[li] and own[lj] and body[lj] - body[li] >= 2 and frozenset(names) not in rig.ignore_pairs:
                specs.append(("self", *names, float(rig.self_margin_m)))
                items += [(len(specs) - 1, _SELF, c, o, float(capsules.radius[c] + capsules.radius[o]))
                          for c in own[li] for o in own[lj]]
        #: (kind, link, other, required_m) per pair, in the order of ClearanceResult.pairs.
        self.pair_specs = tuple(specs)
        table = np.array(items, dtype=float).reshape(-1, 5)
        self._pair, self._code, self._cap, self._other = table[:, :4].T.astype(np.int64)
        self._radius = table[:, 4]
        self._required = np.array([s[3] for s in specs] or [0.0])[self._pair]
        self._is_self = self._code == _SELF
        self._cap2 = np.where(self._is_self, self._other, self.capsule_count)  # zone items: a still column
        self._zones = stack_shapes([z.shape for z in zones])
        self._moving = np.array([body[i] >= 1 for i in capsules.link], dtype=bool)

    @property
    def self_pairs(self) -> tuple[tuple[int, int], ...]:
        """Capsule index pairs checked against each other (the self pairs' items)."""
        return tuple((int(c), int(o)) for c, o in zip(self._cap[self._is_self], self._other[self._is_self]))

    def _evaluate(self, a: NDArray, b: NDArray, item: NDArray,
                  tick: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Exact clearance of ``item[i]`` at ``tick[i]`` (the public kernels' arithmetic, bit for bit),
        and a unit direction from the zone (or the second capsule) towards the capsule, 0 if touching."""
        out, direction = np.empty(item.shape[0]), np.empty((item.shape[0], 3))
        code, z = self._code[item], self._zones
        for kind, start in ((k, i) for k in range(6) for i in range(0, len(item), _BATCH)):
            sel = start + np.flatnonzero(code[start:start + _BATCH] == kind)   # bounded temporaries
            if not sel.size:
                continue
            it, tk = item[sel], tick[sel]
            cap, other = self._cap[it], self._other[it]
            p0, p1 = a[tk, cap], b[tk, cap]
            if kind == _BOX:
                d, w = seg_box(p0, p1, z["center"][other], z["rot"][other], z["half"][other], witness=True)
            elif kind == _CYLINDER:
                d, w = seg_cylinder(p0, p1, z["center"][other], z["rot"][other], z["radius"][other],
                                    z["half_height"][other], witness=True)
            elif kind == _SPHERE:
                d, w = seg_point(p0, p1, z["center"][other], witness=True)
                d = np.maximum(d - z["radius"][other], 0.0)
            elif kind == _CAPSULE:
                d, w = seg_seg(p0, p1, z["a"][other], z["b"][other], witness=True)
                d = np.maximum(d - z["radius"][other], 0.0)
            elif kind == _PLANE:
                d, w = seg_plane(p0, p1, z["center"][other], z["normal"][other]), z["normal"][other]
            else:
                d, w = seg_seg(p0, p1, a[tk, other], b[tk, other], witness=True)
            out[sel] = d - self._radius[it]
            norm = np.sqrt(_dot(w, w))
            direction[sel] = w / np.where(norm > 0.0, norm, np.inf)[:, None]
        return out, direction

    def _prepare(self, a: NDArray, b: NDArray) -> list[dict[str, NDArray]]:
        """Per refinement level and window: path lengths and endpoint bounding boxes per capsule.

        ``step`` sums each capsule's per-tick motion bound; ``rel`` the same relative to the moving
        capsules' mean motion (a track move translates them alike and changes no self distance).  A zero
        column is appended for zone items' "second capsule".  Ticks are processed in chunks so that the
        temporaries stay small (cache-resident, no fresh pages).
        """
        K, C = a.shape[0], a.shape[1]
        widths = self.levels[:-1]
        fine, top = widths[-1], widths[0]
        count = -(-(K - 1) // top) * top                          # steps, padded to whole windows
        mean = np.kron(self._moving[:, None] / max(2.0 * self._moving.sum(), 1.0), np.eye(3))
        out = {k: np.zeros((count // fine, C + 1)) for k in ("step", "rel")}
        out |= {k: np.empty((count // fine, C, 3)) for k in ("alo", "ahi", "blo", "bhi")}
        chunk = top * max(1, 4096 // top)
        for c0 in range(0, count, chunk):
            c1 = min(c0 + chunk, count)
            rows, n = slice(c0 // fine, c1 // fine), min(c1, K - 1) - c0
            da, db = a[c0 + 1:c0 + n + 1] - a[c0:c0 + n], b[c0 + 1:c0 + n + 1] - b[c0:c0 + n]
            for key in ("step", "rel"):
                if key == "rel":
                    common = (da.reshape(n, -1) @ mean + db.reshape(n, -1) @ mean)[:, None]
                    da, db = da - common, db - common
                per_tick = np.zeros((c1 - c0, C))
                per_tick[:n] = np.sqrt(np.maximum(_dot(da, da), _dot(db, db)))
                out[key][rows, :C] = per_tick.reshape(-1, fine, C).sum(axis=1)
            for key, x in (("a", a), ("b", b)):
                ticks = x[np.minimum(np.arange(c0, c1), K - 1)] if c1 > K else x[c0:c1]
                out[key + "lo"][rows] = ticks.reshape(-1, fine, C, 3).min(axis=1)
                out[key + "hi"][rows] = ticks.reshape(-1, fine, C, 3).max(axis=1)
        levels: list[dict[str, NDArray]] = []
        for width in reversed(widths):                           # finest first; coarser merge it
            group = width // (count // len(out["step"]))
            out = {k: _MERGE[k[-2:]].reduce(v.reshape(len(v) // group, group, *v.shape[1:]), axis=1)
                   for k, v in out.items()}
            last = np.minimum(np.arange(1, len(out["step"]) + 1) * width, K - 1)
            level = dict(out)                                    # boxes so far: ticks s..s+width-1
            for key, x in (("a", a), ("b", b)):                  # windows end at tick s+width
                level[key + "lo"] = np.minimum(out[key + "lo"], x[last])
                level[key + "hi"] = np.maximum(out[key + "hi"], x[last])
            levels.append(level)
        return levels[::-1]

    def _bound(self, prepared: list[dict[str, NDArray]], level: int, item: NDArray, s: NDArray,
               ds: NDArray, de: NDArray, ns: NDArray, ne: NDArray) -> tuple[NDArray, NDArray]:
        """Lower bound of each item's clearance over its window at ``level`` starting at tick ``s``
        (values ``ds``, ``de`` and witness directions ``ns``, ``ne`` at its ends), and whether nothing
        in the window moves at all."""
        win, cap, cap2 = s // self.levels[level], self._cap[item], self._cap2[item]
        data, is_self = prepared[level], self._is_self[item]
        moved = data["step"][win, cap] + data["step"][win, cap2]
        path = np.where(is_self, np.minimum(moved, data["rel"][win, cap] + data["rel"][win, cap2]), moved)
        lb = np.minimum(np.minimum(ds, de), 0.5 * (ds + de - path))
        zsel, ssel = np.flatnonzero(~is_self), np.flatnonzero(is_self)
        mine = [(data[k + "lo"][win, cap], data[k + "hi"][win, cap]) for k in "ab"]
        w2, c2 = win[ssel], cap2[ssel]
        theirs = [(data[k + "lo"][w2, c2], data[k + "hi"][w2, c2]) for k in "ab"]
        for n in (ns, ne):
            low = -np.maximum(*[_box_high(lo, hi, -n) for lo, hi in mine])
            high = np.empty(len(item))
            high[zsel] = support(self._zones, self._other[item[zsel]], n[zsel])
            high[ssel] = np.maximum(*[_box_high(lo, hi, n[ssel]) for lo, hi in theirs])
            lb = np.maximum(lb, low - high - self._radius[item])
        return lb, moved == 0.0

    def check(self, a: ArrayLike, b: ArrayLike) -> ClearanceResult:
        """Clearances of capsules with endpoints ``a``, ``b`` (``(K, C, 3)``, stage frame, every tick).

        Every item is evaluated exactly on a coarse grid (every ``levels[0]`` ticks); then, level by
        level, a window is split and its interior evaluated only if a rigorous *lower bound* on the
        item's clearance inside it could still reveal a violation (bound < required) or a new minimum
        (bound <= pair's best so far - ``TIE_M``).  The bound is the larger of two:

        * Lipschitz: from tick k to k+1 every point of a capsule's core moves at most
          ``max(|a_k+1 - a_k|, |b_k+1 - b_k|)`` (a convex combination of its endpoints' moves); zones
          are static and distance is 1-Lipschitz, so with exact values d_s, d_e at a window's ends and
          the summed moves L, every tick inside has ``d >= (d_s + d_e - L) / 2`` (and <= min(d_s, d_e)
          as a cap against rounding).  Self pairs add both capsules' moves, or their moves relative to
          the rig's mean motion, whichever is less (a track move changes no self distance).
        * Separating plane: for any unit n, distance >= lowest point of the capsule along n - highest
          point of the zone (support function) or other capsule along n.  With n the witness direction
          at the window's ends and the endpoints bounded by their boxes over the window, this stays
          tight while a link slides along a surface (a track move under the truss), where the Lipschitz
          bound is useless.

        Bounds lose ``EPS_M`` for rounding.  Windows where nothing moves (every input bit-identical)
        repeat the value at their start.  The kernels are elementwise, so every value equals, bit for
        bit, what evaluating every item at every tick gives; hence: violation runs, their minima and
        ticks of minima are exact, and so is the minimum of any pair that is ever in violation.  Any
        other pair's ``min_m`` is its true clearance at ``tick`` and at most ``TIE_M`` (1e-9 m) above
        its true minimum; when no other tick comes within ``TIE_M`` of that minimum, both are exactly
        the brute force's (first occurrence).  Plateaus (a link sliding parallel to a wall) are where
        the tolerance matters: their ticks differ only by rounding, and chasing it would cost every tick.

        The cost is a coarse pass plus the ticks near each pair's minimum or in violation, so a move
        that keeps links inside zones for long stretches costs up to every item at those ticks.
        """
        a = np.ascontiguousarray(a, dtype=np.float64)
        b = np.ascontiguousarray(b, dtype=np.float64)
        if a.ndim != 3 or a.shape != b.shape or a.shape[1:] != (self.capsule_count, 3) or not len(a):
            raise ValueError(f"expected a and b of shape (K>0, {self.capsule_count}, 3), got "
                             f"{a.shape}, {b.shape}")
        nitems, K = len(self._pair), a.shape[0]
        if nitems == 0:
            return ClearanceResult((), (), float("inf"), -1)
        grid = np.unique(np.r_[np.arange(0, K, self.levels[0]), K - 1])
        items, ticks = np.repeat(np.arange(nitems), len(grid)), np.tile(grid, nitems)
        vals, dirs = self._evaluate(a, b, items, ticks)
        log = [(items, ticks, vals)]                                   # every exact evaluation
        still: list[tuple[NDArray, NDArray, NDArray]] = []            # motionless violating windows
        best = np.full(len(self.pair_specs), np.inf)
        np.minimum.at(best, self._pair[items], vals)
        vals, dirs = vals.reshape(nitems, len(grid)), dirs.reshape(nitems, len(grid), 3)
        w_item = np.repeat(np.arange(nitems), len(grid) - 1)
        w_s, w_e = np.tile(grid[:-1], nitems), np.tile(grid[1:], nitems)
        w_ds, w_de = vals[:, :-1].ravel(), vals[:, 1:].ravel()
        w_ns, w_ne = dirs[:, :-1].reshape(-1, 3), dirs[:, 1:].reshape(-1, 3)
        prepared = self._prepare(a, b) if K > 1 and len(self.levels) > 1 else []
        for level, sub in enumerate(self.levels[1:]):
            if not w_item.size:
                break
            lb, motionless = self._bound(prepared, level, w_item, w_s, w_ds, w_de, w_ns, w_ne)
            req = self._required[w_item]
            bad = motionless & (w_ds < req)
            still.append((w_item[bad], w_s[bad], w_e[bad]))
            lb -= EPS_M
            keep = ~motionless & (w_e - w_s > 1) & ((lb <= best[self._pair[w_item]] - TIE_M) | (lb < req))
            w_item, w_s, w_e, w_ds, w_de, w_ns, w_ne = (x[keep] for x in (w_item, w_s, w_e, w_ds, w_de,
                                                                          w_ns, w_ne))
            # Interior ticks s + m*sub (m = 1..n) of every kept window, then its sub-windows.
            n = (w_e - w_s - 1) // sub
            owner = np.repeat(np.arange(len(n)), n)
            m = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + 1
            s_item, s_tick = w_item[owner], w_s[owner] + m * sub
            s_val, s_dir = self._evaluate(a, b, s_item, s_tick)
            log.append((s_item, s_tick, s_val))
            np.minimum.at(best, self._pair[s_item], s_val)
            if sub == 1:
                break
            start = np.cumsum(n + 2) - (n + 2)                    # nodes per window: s, interior, e
            node_tick = np.empty(int((n + 2).sum()), dtype=np.int64)
            node_val, node_dir = np.empty(node_tick.shape), np.empty(node_tick.shape + (3,))
            for pos, t, v, d in ((start, w_s, w_ds, w_ns), (start + n + 1, w_e, w_de, w_ne),
                                 (start[owner] + m, s_tick, s_val, s_dir)):
                node_tick[pos], node_val[pos], node_dir[pos] = t, v, d
            first = np.ones(node_tick.shape, dtype=bool)
            first[start + n + 1] = False
            idx = np.flatnonzero(first)                           # sub-window = node, next node
            w_item = np.repeat(w_item, n + 1)
            w_s, w_e, w_ds, w_de = node_tick[idx], node_tick[idx + 1], node_val[idx], node_val[idx + 1]
            w_ns, w_ne = node_dir[idx], node_dir[idx + 1]
        item, tick, val = (np.concatenate(x) for x in zip(*log))
        return self._result(K, best, item, tick, val, still)

    def _result(self, K: int, best: NDArray, item: NDArray, tick: NDArray, val: NDArray,
                still: list[tuple[NDArray, NDArray, NDArray]]) -> ClearanceResult:
        """Per-pair minima and violation runs from every exact evaluation and motionless window."""
        pair = self._pair[item]
        at_best = val == best[pair]
        best_tick = np.full(len(best), K, dtype=np.int64)
        np.minimum.at(best_tick, pair[at_best], tick[at_best])
        pairs = tuple(PairClearance(k, link, other, req, float(best[i]), int(best_tick[i]))
                      for i, (k, link, other, req) in enumerate(self.pair_specs))
        overall = int(np.argmin(best))
        # Violating intervals per pair: evaluated ticks, plus motionless windows (their start is one).
        bad = val < self._required[item]
        ip = np.concatenate([pair[bad]] + [self._pair[w[0]] for w in still])
        st = np.concatenate([tick[bad]] + [w[1] for w in still])
        en = np.concatenate([tick[bad]] + [w[2] for w in still])
        if not len(ip):
            return ClearanceResult(pairs, (), float(best[overall]), overall)
        order = np.lexsort((st, ip))
        ip, st, en, span = ip[order], st[order], en[order], K + 2
        reach = np.maximum.accumulate(ip * span + en)              # furthest end so far, pair-major
        new = np.r_[True, (ip[1:] != ip[:-1]) | (st[1:] > reach[:-1] - ip[1:] * span + 1)]
        heads = np.flatnonzero(new)
        r_pair, r_first, r_last = ip[heads], st[heads], np.maximum.reduceat(en, heads)
        # Each run's minimum over its violating evaluated ticks, first occurrence.
        p_pair, p_tick, p_val = pair[bad], tick[bad], val[bad]
        rid = np.searchsorted(r_pair * span + r_first, p_pair * span + p_tick, side="right") - 1
        order = np.lexsort((p_tick, p_val, rid))
        rid, p_tick, p_val = rid[order], p_tick[order], p_val[order]
        lead = np.flatnonzero(np.r_[True, rid[1:] != rid[:-1]])
        runs = tuple(ClearanceRun(int(r_pair[i]), int(r_first[i]), int(r_last[i]), float(p_val[lead[i]]),
                                  int(p_tick[lead[i]])) for i in np.lexsort((r_pair, r_first)))
        return ClearanceResult(pairs, runs, float(best[overall]), overall)
