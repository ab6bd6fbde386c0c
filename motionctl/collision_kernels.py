"""Exact, vectorised distances from a line segment (a capsule's core) to the convex shapes of a stage.

Every kernel broadcasts over leading dimensions and works in float64.  Two design rules run through
this file, both for the trajectory checker in :mod:`motionctl.collision`:

* Kernels are *elementwise*: no reductions whose rounding depends on the batch shape (no ``@``,
  ``einsum`` or ``sum`` over axes; dot products are written out term by term).  The checker evaluates
  a pair at a tick inside whatever batch it happens to build, and the result must be bit-for-bit the
  value a brute-force loop over every tick would get, so that its minima and runs are that loop's.
* Each kernel returns a value that is *attained* by some point of the segment (a candidate minimiser is
  evaluated with the plain point-to-shape distance, never with an algebraic shortcut), and the true
  minimiser is always among the candidates.  Rounding in locating a minimiser therefore costs at most
  the distance function's change over that rounding, never a wrong candidate set.

Distances to solids (box, cylinder, sphere, capsule zone) are 0 when the segment touches or enters the
solid; the plane distance is signed (negative below the surface).  With ``witness=True`` the array
kernels also return the vector from the shape's closest point to the segment's (0 when touching), which
the checker uses as the normal of a separating plane; :func:`stack_shapes` and :func:`support` give it
the zones' support functions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from motionctl.spec.shapes import Box, Capsule, Cylinder, Plane, Shape, Sphere

Array = NDArray[np.float64]
Pair = tuple[Array, Array]        # (distance, witness vector)

#: Bisection steps of the cylinder search: the bracket shrinks to 2**-41 of the segment, i.e. below
#: 5e-12 m for any segment shorter than 10 m (the distance is Lipschitz in t with the segment length).
CYLINDER_ITERATIONS = 40


def _f(x: ArrayLike) -> Array:
    return np.asarray(x, dtype=np.float64)


def _dot(u: Array, v: Array) -> Array:
    """Row-wise dot product written out, so its rounding never depends on the batch layout."""
    return u[..., 0] * v[..., 0] + u[..., 1] * v[..., 1] + u[..., 2] * v[..., 2]


def _to_frame(p0: Array, p1: Array, center: Array, rot: Array) -> tuple[Array, Array]:
    """Segment start and direction in a shape's frame (``rot`` columns are the shape's axes)."""
    d0 = p0 - center
    dv = p1 - p0
    u = np.stack([_dot(d0, rot[..., :, j]) for j in range(3)], axis=-1)
    v = np.stack([_dot(dv, rot[..., :, j]) for j in range(3)], axis=-1)
    return u, v


def _from_frame(w: Array, rot: Array) -> Array:
    """A vector given in a shape's frame, back in the parent frame."""
    return (w[..., 0, None] * rot[..., :, 0] + w[..., 1, None] * rot[..., :, 1]
            + w[..., 2, None] * rot[..., :, 2])


def _point_segment_sq(p: Array, a: Array, d: Array, dd: Array) -> tuple[Array, Array]:
    """Squared distance from ``p`` to segment ``a + t d`` (``dd = d.d``; zero-length segments allowed),
    and the vector from ``p`` to its closest point."""
    safe = np.where(dd > 0.0, dd, 1.0)
    t = np.where(dd > 0.0, np.clip(_dot(p - a, d) / safe, 0.0, 1.0), 0.0)
    diff = a + t[..., None] * d - p
    return _dot(diff, diff), diff


# -- array kernels (per-row shape parameters; used directly by the trajectory checker) -------------


def seg_seg(p0: Array, p1: Array, q0: Array, q1: Array, witness: bool = False) -> Array | Pair:
    """Distance between segments ``p0-p1`` and ``q0-q1`` (with ``witness``: and the vector from the
    closest point of the second to the closest point of the first).

    The squared distance is a convex quadratic on the unit square of (s, t); its minimum is either the
    interior stationary point or lies on one of the four edges, and each edge is a point-to-segment
    distance.  Taking the minimum of the four edge distances and of the (clipped, once-refined)
    stationary point is exact, and stays exact for parallel and zero-length segments, where the
    stationary point is undefined but an edge attains the minimum.
    """
    p0, p1, q0, q1 = np.broadcast_arrays(_f(p0), _f(p1), _f(q0), _f(q1))
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e, b = _dot(d1, d1), _dot(d2, d2), _dot(d1, d2)
    c, f = _dot(d1, r), _dot(d2, r)
    den = a * e - b * b
    ok = den > 1e-14 * a * e
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(ok, np.clip((b * f - c * e) / np.where(ok, den, 1.0), 0.0, 1.0), 0.0)
        t = np.where(e > 0.0, np.clip((b * s + f) / np.where(e > 0.0, e, 1.0), 0.0, 1.0), 0.0)
        s = np.where(a > 0.0, np.clip((b * t - c) / np.where(a > 0.0, a, 1.0), 0.0, 1.0), 0.0)
    diff = r + s[..., None] * d1 - t[..., None] * d2
    best = _dot(diff, diff)
    for point, start, d, dd, sign in ((p0, q0, d2, e, -1.0), (p1, q0, d2, e, -1.0),
                                      (q0, p0, d1, a, 1.0), (q1, p0, d1, a, 1.0)):
        sq, vec = _point_segment_sq(point, start, d, dd)
        if witness:
            diff = np.where((sq < best)[..., None], sign * vec, diff)
        best = np.minimum(best, sq)
    return (np.sqrt(best), diff) if witness else np.sqrt(best)


def _box_sq(u: Array, v: Array, half: Array, t: Array) -> Array:
    x = u + t[..., None] * v
    excess = x - np.clip(x, -half, half)
    return _dot(excess, excess)


def seg_box(p0: Array, p1: Array, center: Array, rot: Array, half: Array,
            witness: bool = False) -> Array | Pair:
    """Distance from a segment to a solid oriented box, in closed form.

    In the box frame f(t) = sum_i (x_i(t) - clip(x_i(t), -h_i, h_i))**2 is convex and C1 in t, and
    piecewise quadratic with knots where a coordinate crosses +-h_i.  Its derivative is therefore
    continuous, non-decreasing and *linear between knots*: evaluating f' at the (at most eight) knots
    in [0, 1] brackets the minimiser between the last knot with f' < 0 and the first with f' >= 0, and
    linear interpolation of f' there gives it exactly.  No sorting and no iteration.
    """
    p0, p1 = np.broadcast_arrays(_f(p0), _f(p1))
    u, v = _to_frame(p0, p1, _f(center), _f(rot))
    h = np.broadcast_to(_f(half), u.shape)
    moving = v != 0.0
    safe_v = np.where(moving, v, 1.0)
    knots = [np.zeros(u.shape[:-1]), np.ones(u.shape[:-1])]
    for sign in (-1.0, 1.0):
        for i in range(3):
            tk = np.where(moving[..., i], (sign * h[..., i] - u[..., i]) / safe_v[..., i], 0.0)
            knots.append(np.clip(tk, 0.0, 1.0))
    T = np.stack(knots, axis=-1)                                     # (..., 8)
    x = u[..., None, :] + T[..., None] * v[..., None, :]             # (..., 8, 3)
    hk = h[..., None, :]
    excess = x - np.clip(x, -hk, hk)
    slope = _dot(excess, v[..., None, :])                            # f'/2 at each knot
    neg = slope < 0.0
    i_lo = np.argmax(np.where(neg, T, -1.0), axis=-1)[..., None]
    i_hi = np.argmin(np.where(neg, 2.0, T), axis=-1)[..., None]
    t_lo = np.take_along_axis(T, i_lo, -1)[..., 0]
    t_hi = np.take_along_axis(T, i_hi, -1)[..., 0]
    g_lo = np.take_along_axis(slope, i_lo, -1)[..., 0]
    g_hi = np.take_along_axis(slope, i_hi, -1)[..., 0]
    has_lo, has_hi = neg.any(axis=-1), (~neg).any(axis=-1)
    both = has_lo & has_hi
    step = np.where(both, g_hi - g_lo, 1.0)                         # > 0 where both
    t_star = np.where(both, np.clip(t_lo - g_lo * (t_hi - t_lo) / step, t_lo, t_hi),
                      np.where(has_lo, 1.0, 0.0))
    best, t_best = _box_sq(u, v, h, t_star), t_star
    for end in (0.0, 1.0):
        sq = _box_sq(u, v, h, np.full_like(t_star, end))
        t_best = np.where(sq < best, end, t_best)
        best = np.minimum(best, sq)
    if not witness:
        return np.sqrt(best)
    x = u + t_best[..., None] * v
    return np.sqrt(best), _from_frame(x - np.clip(x, -h, h), _f(rot))


def _cylinder_sdf(u: Array, v: Array, t: Array, radius: Array, half_height: Array) -> Array:
    x = u[..., 0] + t * v[..., 0]
    y = u[..., 1] + t * v[..., 1]
    z = u[..., 2] + t * v[..., 2]
    qr = np.sqrt(x * x + y * y) - radius
    qz = np.abs(z) - half_height
    out_r, out_z = np.maximum(qr, 0.0), np.maximum(qz, 0.0)
    return np.sqrt(out_r * out_r + out_z * out_z) + np.minimum(np.maximum(qr, qz), 0.0)


def seg_cylinder(p0: Array, p1: Array, center: Array, rot: Array, radius: ArrayLike,
                 half_height: ArrayLike, iterations: int = CYLINDER_ITERATIONS,
                 witness: bool = False) -> Array | Pair:
    """Distance from a segment to a solid finite cylinder (axis = ``rot``'s third column).

    The exact minimum needs the roots of a quartic near the rim, so instead: the *signed* distance to
    a convex solid is convex, hence along the segment it is a convex function of t, and the sign of a
    subgradient says on which side of t the minimiser lies.  Bisection on that sign halves the bracket
    every step (``CYLINDER_ITERATIONS`` = 40 steps -> 2**-41 of the segment), fully vectorised.  The
    signed distance (rather than the distance clipped at 0) keeps the function strictly informative
    inside the solid; the result is clipped to 0 at the end.
    """
    p0, p1 = np.broadcast_arrays(_f(p0), _f(p1))
    u, v = _to_frame(p0, p1, _f(center), _f(rot))
    R = np.broadcast_to(_f(radius), u.shape[:-1])
    H = np.broadcast_to(_f(half_height), u.shape[:-1])
    lo, hi = np.zeros(u.shape[:-1]), np.ones(u.shape[:-1])
    for _ in range(iterations):
        t = 0.5 * (lo + hi)
        x = u[..., 0] + t * v[..., 0]
        y = u[..., 1] + t * v[..., 1]
        z = u[..., 2] + t * v[..., 2]
        r = np.sqrt(x * x + y * y)
        qr, qz = r - R, np.abs(z) - H
        radial = np.where(r > 0.0, (x * v[..., 0] + y * v[..., 1]) / np.where(r > 0.0, r, 1.0), 0.0)
        axial = np.sign(z) * v[..., 2]
        outside = (qr > 0.0) | (qz > 0.0)
        g = np.where(outside, np.maximum(qr, 0.0) * radial + np.maximum(qz, 0.0) * axial,
                     np.where(qr > qz, radial, axial))
        hi = np.where(g >= 0.0, t, hi)
        lo = np.where(g <= 0.0, t, lo)
    t = 0.5 * (lo + hi)
    best = _cylinder_sdf(u, v, t, R, H)
    for end in (0.0, 1.0):
        sdf = _cylinder_sdf(u, v, np.full_like(t, end), R, H)
        t = np.where(sdf < best, end, t)
        best = np.minimum(best, sdf)
    if not witness:
        return np.maximum(best, 0.0)
    x = u + t[..., None] * v
    r = np.sqrt(x[..., 0] * x[..., 0] + x[..., 1] * x[..., 1])
    scale = np.where(r > R, R / np.where(r > 0.0, r, 1.0), 1.0)
    proj = np.stack([x[..., 0] * scale, x[..., 1] * scale, np.clip(x[..., 2], -H, H)], axis=-1)
    return np.maximum(best, 0.0), _from_frame(x - proj, _f(rot))


def seg_point(p0: Array, p1: Array, point: Array, witness: bool = False) -> Array | Pair:
    """Distance from a segment to a point (the core of a sphere); ``witness``: point -> segment vector."""
    p0, p1, point = np.broadcast_arrays(_f(p0), _f(p1), _f(point))
    d = p1 - p0
    sq, vec = _point_segment_sq(point, p0, d, _dot(d, d))
    return (np.sqrt(sq), vec) if witness else np.sqrt(sq)


def seg_plane(p0: Array, p1: Array, point: Array, normal: Array) -> Array:
    """Signed distance of a segment above a plane: the lower endpoint's (the distance is affine in t)."""
    p0, p1 = _f(p0), _f(p1)
    point, normal = _f(point), _f(normal)
    return np.minimum(_dot(p0 - point, normal), _dot(p1 - point, normal))


# -- many shapes at once (for the trajectory checker) ------------------------------------------------


def stack_shapes(shapes: tuple[Shape, ...] | list[Shape]) -> dict[str, Array]:
    """Parameters of many shapes stacked row by row (zeros where a field does not apply), plus each
    shape as a Minkowski sum box (+) disc (+) ball for :func:`support`: a box is its three half-axis
    vectors ``E``, a cylinder its axis half-vector and a disc (``rho``, normal ``w``), a sphere a ball
    (``beta``), a capsule its half-segment and a ball.  A plane is only probed along its own normal."""
    z = len(shapes)
    out = {k: np.zeros((z, 3)) for k in ("center", "half", "a", "b", "normal", "sup_w")}
    out |= {k: np.zeros(z) for k in ("radius", "half_height", "sup_rho", "sup_beta")}
    out["rot"], out["sup_E"] = np.tile(np.eye(3), (z, 1, 1)), np.zeros((z, 3, 3))
    for i, s in enumerate(shapes):
        if isinstance(s, Box):
            out["center"][i], out["rot"][i], out["half"][i] = s.center, s.rotation, s.half
            out["sup_E"][i] = (_f(s.rotation) * _f(s.half)).T
        elif isinstance(s, Cylinder):
            out["center"][i], out["rot"][i] = s.center, s.rotation
            out["radius"][i] = out["sup_rho"][i] = s.radius
            out["half_height"][i] = s.half_height
            out["sup_w"][i] = _f(s.rotation)[:, 2]
            out["sup_E"][i, 0] = out["sup_w"][i] * s.half_height
        elif isinstance(s, Sphere):
            out["center"][i], out["radius"][i], out["sup_beta"][i] = s.center, s.radius, s.radius
        elif isinstance(s, Capsule):
            out["a"][i], out["b"][i], out["radius"][i], out["sup_beta"][i] = s.a, s.b, s.radius, s.radius
            out["center"][i], out["sup_E"][i, 0] = (_f(s.a) + _f(s.b)) / 2.0, (_f(s.b) - _f(s.a)) / 2.0
        elif isinstance(s, Plane):
            out["center"][i], out["normal"][i] = s.point, s.normal
    return out


def support(stacked: dict[str, Array], index: NDArray[np.int64], n: Array) -> Array:
    """Support function: the highest value of ``n[i] . q`` over shape ``index[i]`` (any length of n).

    ``h(n) = n.c + sum_j |n.E_j| + rho sqrt(|n|^2 - (n.w)^2) + beta |n|``.  For a plane this is only
    right along its normal (the half-space is unbounded in every other direction)."""
    nn = _dot(n, n)
    return (_dot(n, stacked["center"][index])
            + sum(np.abs(_dot(n, stacked["sup_E"][index, j])) for j in range(3))
            + stacked["sup_rho"][index] * np.sqrt(np.maximum(nn - _dot(n, stacked["sup_w"][index]) ** 2, 0.0))
            + stacked["sup_beta"][index] * np.sqrt(nn))


# -- public kernels on shape models ----------------------------------------------------------------


def segment_segment_distance(p0: ArrayLike, p1: ArrayLike, q0: ArrayLike, q1: ArrayLike) -> Array:
    """Closest distance between segments ``p0-p1`` and ``q0-q1`` (``(..., 3)`` arrays, broadcast)."""
    return seg_seg(_f(p0), _f(p1), _f(q0), _f(q1))


def segment_box_distance(p0: ArrayLike, p1: ArrayLike, box: Box) -> Array:
    """Distance from a segment to a solid oriented box; 0 when it touches or enters the box."""
    return seg_box(_f(p0), _f(p1), _f(box.center), _f(box.rotation), _f(box.half))


def segment_cylinder_distance(p0: ArrayLike, p1: ArrayLike, cyl: Cylinder) -> Array:
    """Distance from a segment to a solid finite cylinder, to ~1e-11 m; 0 when it touches or enters."""
    return seg_cylinder(_f(p0), _f(p1), _f(cyl.center), _f(cyl.rotation), float(cyl.radius),
                        float(cyl.half_height))


def segment_sphere_distance(p0: ArrayLike, p1: ArrayLike, sphere: Sphere) -> Array:
    """Distance from a segment to a solid sphere; 0 when it touches or enters."""
    return np.maximum(seg_point(_f(p0), _f(p1), _f(sphere.center)) - float(sphere.radius), 0.0)


def segment_capsule_distance(p0: ArrayLike, p1: ArrayLike, capsule: Capsule) -> Array:
    """Distance from a segment to a solid capsule zone; 0 when it touches or enters."""
    d = seg_seg(_f(p0), _f(p1), _f(capsule.a), _f(capsule.b))
    return np.maximum(d - float(capsule.radius), 0.0)


def segment_plane_distance(p0: ArrayLike, p1: ArrayLike, plane: Plane) -> Array:
    """Signed height of the segment's lowest point above a plane; negative when it dips below."""
    return seg_plane(_f(p0), _f(p1), _f(plane.point), _f(plane.normal))


def segment_shape_distance(p0: ArrayLike, p1: ArrayLike, shape: Shape) -> Array:
    """Distance from a segment to any stage shape (dispatch on the shape's type)."""
    if isinstance(shape, Box):
        return segment_box_distance(p0, p1, shape)
    if isinstance(shape, Cylinder):
        return segment_cylinder_distance(p0, p1, shape)
    if isinstance(shape, Sphere):
        return segment_sphere_distance(p0, p1, shape)
    if isinstance(shape, Capsule):
        return segment_capsule_distance(p0, p1, shape)
    if isinstance(shape, Plane):
        return segment_plane_distance(p0, p1, shape)
    raise TypeError(f"unsupported shape {type(shape).__name__}")


def capsule_clearance(a: ArrayLike, b: ArrayLike, radius: ArrayLike, shape: Shape) -> Array:
    """Clearance of a capsule (core ``a``-``b``, ``radius``) from a shape: segment distance - radius.

    Negative means overlap but is *not* a penetration depth: for solids the segment distance bottoms
    out at 0, so the clearance bottoms out at ``-radius`` (for a plane it keeps falling below it).
    """
    return segment_shape_distance(a, b, shape) - _f(radius)
