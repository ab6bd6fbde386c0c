"""Jerk-limited time-optimal path speed: TOPP with third-order constraints, by sequential linear programming.

Why this is hand-written: toppra (the reference for ``--retime fastest``) is second order, velocity and
acceleration only, and smoothing its bang-bang acceleration after the fact cost 20-45 % in duration
(docs/benchmarks.md).  ruckig plans state-to-state motion, not motion along a given path, and no maintained
Python package parameterises a path under jerk limits.  The linear programs themselves are solved by HiGHS
(through scipy), and the time law is a quintic Hermite spline held as a scipy PPoly.

**Unknown.** ``b(s) = sdot^2`` (squared path speed) as a uniform cubic B-spline in the keyed instant ``s``
with non-negative control points, so ``b >= 0`` everywhere and ``b`` is twice continuously differentiable:
path acceleration ``b'/2`` is continuous and path jerk ``sdot b''/2`` is bounded.

**Constraints**, for every axis ``x(s)`` of the path with derivatives ``x', x'', x'''``, at collocation points:

* velocity ``x' sdot``: ``x'^2 b <= vmax^2``;
* acceleration ``x' b'/2 + x'' b``: linear in the control points;
* jerk ``sdot (x' b''/2 + 3/2 x'' b' + x''' b)``: ``|x' b''/2 + 3/2 x'' b' + x''' b| <= jmax / sqrt(b)``.  The
  right-hand side makes it non-convex; a trust region ``b <= bhat`` with ``jmax / sqrt(bhat)`` on the right is a
  linear constraint that implies the real one, so every iterate is feasible, not just the last.

**Objective.** Duration ``T = integral ds / sqrt(b)`` is convex in ``b``; each linear program minimises its tangent
at the previous iterate, inside a trust region that shrinks (sequential linear programming).

Derivatives at a collocation point are exact for the spline, so the time law walks exactly the profile the
program checked.  Between collocation points the caller samples the law at the servo rate, checks every tick
and adds the points that failed (:meth:`JerkLimitedTopp.add_points`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.interpolate import PPoly
from scipy.optimize import Bounds, LinearConstraint, milp

from motionctl.errors import PlanningError

#: s -> (x', x'', x''') of every axis at those instants, each (len(s), axes)
PathDerivatives = Callable[[NDArray[np.float64]], tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]]

#: Trust-region growth per iteration: large first steps, then small ones that settle the jerk linearisation.
TRUST_SCHEDULE = (1.0, 0.3, 0.1, 0.03, 0.01)
#: A trust-region size is used until a step gains less than this fraction of the duration ...
CONVERGED = 5e-3
#: ... and there are at most this many linear programs per solve.
MAX_STEPS = 20
#: Spans at each end of a segment that are also checked at their midpoints (the speed changes fastest there).
EDGE_SPANS = 10


def _basis(u: NDArray[np.float64], h: float) -> tuple[NDArray[np.float64], ...]:
    """Uniform cubic B-spline weights of the 4 control points of a span at fraction ``u``, and of their first
    and second derivatives with respect to ``s`` (span length ``h``)."""
    w0 = np.stack([(1 - u) ** 3, 3 * u ** 3 - 6 * u ** 2 + 4, -3 * u ** 3 + 3 * u ** 2 + 3 * u + 1, u ** 3], -1) / 6
    w1 = np.stack([-3 * (1 - u) ** 2, 9 * u ** 2 - 12 * u, -9 * u ** 2 + 6 * u + 3, 3 * u ** 2], -1) / (6 * h)
    w2 = np.stack([6 * (1 - u), 18 * u - 12, 6 - 18 * u, 6 * u], -1) / (6 * h * h)
    return w0, w1, w2


@dataclass(frozen=True)
class SpeedSpline:
    """Squared path speed ``b(s)`` on ``[s0, s1]``: a uniform cubic B-spline with ``spans`` spans."""

    s0: float
    s1: float
    control: NDArray[np.float64]        # spans + 3 control points, all >= 0

    @property
    def spans(self) -> int:
        return len(self.control) - 3

    @property
    def h(self) -> float:
        return (self.s1 - self.s0) / self.spans

    def locate(self, s: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Span index and fraction within it of each instant (the end belongs to the last span)."""
        x = np.clip((np.asarray(s, dtype=float) - self.s0) / self.h, 0.0, self.spans)
        span = np.minimum(np.floor(x).astype(np.int64), self.spans - 1)
        return span, x - span

    def design(self, s: NDArray[np.float64]) -> tuple[sparse.csr_matrix, ...]:
        """Matrices mapping control points to ``b``, ``b'`` and ``b''`` at ``s``."""
        span, u = self.locate(s)
        rows = np.repeat(np.arange(len(span)), 4)
        cols = (span[:, None] + np.arange(4)).ravel()
        shape = (len(span), len(self.control))
        return tuple(sparse.csr_matrix((w.ravel(), (rows, cols)), shape=shape) for w in _basis(u, self.h))

    def __call__(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.maximum(self.design(s)[0] @ self.control, 0.0)

    def time_law(self, per_span: int = 8) -> tuple[PPoly, float]:
        """``s(t)`` walking this profile from ``s0``, and its duration.

        Servo-rate jerk is a third difference of positions, so it amplifies any error of the law by
        ``rate^3`` (a nanometre becomes 1 m/s^3 at 1 kHz): the law must be exact to rounding, not merely
        close.  The time of each piece is integrated by 3-point Gauss-Legendre (exact to ``O(ds^6)``), and
        ``s(t)`` is the quintic Hermite spline through ``s``, ``sdot = sqrt(b)`` and ``sddot = b'/2`` at the nodes,
        so position, velocity and acceleration are continuous and jerk follows the profile's.
        """
        s = np.linspace(self.s0, self.s1, self.spans * per_span + 1)
        ds = np.diff(s)
        values, slopes, _ = self.design(s)
        b = np.maximum(values @ self.control, 0.0)
        if np.any(b[1:-1] <= 0.0):
            raise PlanningError("the jerk-limited speed profile stops inside a moving segment")
        mid = 0.5 * (s[:-1] + s[1:])
        gauss = np.stack([self(mid + x * ds / 2) for x in _GAUSS_X], axis=1)
        with np.errstate(divide="ignore"):
            dt = ds / 2 * np.sum(_GAUSS_W / np.sqrt(gauss), axis=1)
        # Where b is zero at an end, 1/sqrt(b) is singular; b is linear there, and so is exact this way:
        linear = 2.0 * ds / np.maximum(np.sqrt(b[:-1]) + np.sqrt(b[1:]), 1e-300)
        dt = np.where(np.isfinite(dt) & (np.minimum(b[:-1], b[1:]) > 1e-9 * b.max()), dt, linear)
        t = np.concatenate([[0.0], np.cumsum(dt)])
        return _quintic_hermite(t, s, np.sqrt(b), (slopes @ self.control) / 2), float(t[-1])


_GAUSS_X = np.array([-np.sqrt(0.6), 0.0, np.sqrt(0.6)])
_GAUSS_W = np.array([5.0, 8.0, 5.0]) / 9.0


def _quintic_hermite(t: NDArray[np.float64], p: NDArray[np.float64], v: NDArray[np.float64],
                     a: NDArray[np.float64]) -> PPoly:
    """Piecewise quintic through position, velocity and acceleration at each node, as a scipy PPoly
    (vectorised; scipy's BPoly.from_derivatives builds the same curve one interval at a time)."""
    h = np.diff(t)
    p0, p1, v0, v1, a0, a1 = p[:-1], p[1:], v[:-1], v[1:], a[:-1], a[1:]
    dp = p1 - p0
    c3 = (20 * dp - (8 * v1 + 12 * v0) * h - (3 * a0 - a1) * h ** 2) / (2 * h ** 3)
    c4 = (-30 * dp + (14 * v1 + 16 * v0) * h + (3 * a0 - 2 * a1) * h ** 2) / (2 * h ** 4)
    c5 = (12 * dp - 6 * (v1 + v0) * h - (a0 - a1) * h ** 2) / (2 * h ** 5)
    return PPoly(np.stack([c5, c4, c3, a0 / 2, v0, p0]), t, extrapolate=True)


class JerkLimitedTopp:
    """The sequential linear program for one rest-to-rest segment of a path (see the module docstring).

    ``virtual_speed`` / ``virtual_accel`` bound the path speed and acceleration themselves, which keeps the
    problem bounded where every real axis is at rest (their derivatives vanish there).
    """

    def __init__(self, derivatives: PathDerivatives, vmax: NDArray[np.float64], amax: NDArray[np.float64],
                 jmax: NDArray[np.float64], s0: float, s1: float, spans: int,
                 virtual_speed: float, virtual_accel: float) -> None:
        self.derivatives = derivatives
        self.vmax, self.amax, self.jmax = (np.asarray(x, dtype=float) for x in (vmax, amax, jmax))
        self.virtual_speed, self.virtual_accel = virtual_speed, virtual_accel
        self.shape = SpeedSpline(s0, s1, np.zeros(spans + 3))
        knots = np.linspace(s0, s1, spans + 1)
        h = self.shape.h
        edges = np.unique(np.concatenate([np.arange(min(EDGE_SPANS, spans)),
                                          np.arange(max(spans - EDGE_SPANS, 0), spans)]))
        self.knots = knots
        self.points = np.unique(np.concatenate([knots, s0 + (edges + 0.5) * h]))
        self._build()

    def add_points(self, s: NDArray[np.float64]) -> None:
        """Check the constraints at these instants too (where the servo-rate check found a tick over)."""
        self.points = np.unique(np.concatenate([self.points, np.clip(s, self.shape.s0, self.shape.s1)]))
        self._build()

    def _build(self) -> None:
        """Constraint rows at the collocation points: acceleration and jerk of every axis (rows that are all
        zero, such as a lens axis that never moves, are dropped), path acceleration, and ``b`` itself."""
        b0, b1, b2 = self.shape.design(self.points)
        d1, d2, d3 = self.derivatives(self.points)
        with np.errstate(divide="ignore"):
            cap = np.min(np.where(np.abs(d1) > 1e-12, self.vmax ** 2 / np.maximum(d1 ** 2, 1e-300), np.inf), axis=1)
        self.speed_cap = np.minimum(cap, self.virtual_speed ** 2)
        blocks, limits = [], []
        for k in range(d1.shape[1]):
            accel = sparse.diags(d1[:, k] / 2) @ b1 + sparse.diags(d2[:, k]) @ b0
            blocks.append(accel)
            limits.append(("a", k))
        blocks.append(b1 / 2)
        limits.append(("virtual", -1))
        for k in range(d1.shape[1]):
            jerk = sparse.diags(d1[:, k] / 2) @ b2 + sparse.diags(1.5 * d2[:, k]) @ b1 + sparse.diags(d3[:, k]) @ b0
            blocks.append(jerk)
            limits.append(("j", k))
        rows = sparse.vstack(blocks + [b0]).tocsr()
        # Each row scaled to a largest coefficient of 1, and coefficients below 1e-12 of it dropped: the raw
        # rows span ten orders of magnitude (1/h^2 against path derivatives that vanish at a stop), which
        # HiGHS can fail on.  Rows that are all zero (a lens axis that never moves) are left out.
        largest = np.asarray(abs(rows).max(axis=1).todense()).ravel()
        self._live = largest > 0
        self._row_scale = 1.0 / np.where(self._live, largest, 1.0)
        rows = (sparse.diags(self._row_scale) @ rows).tocsr()
        rows.data[np.abs(rows.data) < 1e-12] = 0.0
        rows.eliminate_zeros()
        self._rows = rows
        self._kinds = limits
        self._b_at_points = b0
        # Objective: trapezoid rule for T over the knots.
        weights = np.full(len(self.knots), self.shape.h)
        weights[[0, -1]] *= 0.5
        self._quadrature = (weights, self.shape.design(self.knots)[0])

    def _bounds(self, bhat: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        n = len(self.points)
        upper = []
        for kind, k in self._kinds:
            if kind == "a":
                upper.append(np.full(n, self.amax[k]))
            elif kind == "virtual":
                upper.append(np.full(n, self.virtual_accel))
            else:
                upper.append(self.jmax[k] / np.sqrt(np.maximum(bhat, 1e-12)))
        high = np.concatenate(upper + [bhat])
        low = np.concatenate([-x for x in upper] + [np.zeros(n)])
        return low, high

    def duration(self, control: NDArray[np.float64]) -> float:
        weights, design = self._quadrature
        return float(np.sum(weights / np.sqrt(np.maximum(design @ control, 1e-12))))

    def _step(self, control: NDArray[np.float64], bhat: NDArray[np.float64]) -> NDArray[np.float64]:
        weights, design = self._quadrature
        b = design @ control
        # Tangent of T = sum(w / sqrt(b)).  Where b is nearly zero (a segment's ends, early on) the true
        # tangent is so steep that every other weight falls below the solver's tolerance and the rest of
        # the profile collapses; a floor at 1 % of the largest b keeps the weights within a factor 1000.
        b = np.maximum(b, 0.01 * max(float(b.max()), 1e-6))
        gradient = -(design.T @ (weights / (2.0 * b ** 1.5)))
        low, high = (bound * self._row_scale for bound in self._bounds(bhat))
        live = self._live
        result = milp(c=gradient / np.abs(gradient).max(),
                      constraints=[LinearConstraint(self._rows[live], low[live], high[live])],
                      bounds=Bounds(np.zeros(len(control)), np.full(len(control), np.inf)))
        if result.x is None:
            raise PlanningError(f"the jerk-limited timing program failed: {result.message}")
        return np.maximum(result.x, 0.0)

    def solve(self, start: Callable[[NDArray[np.float64]], NDArray[np.float64]]) -> SpeedSpline:
        """Iterate the linear programs from ``start(s)``, an upper estimate of ``b`` such as TOPP-RA's
        time-optimal profile under velocity and acceleration limits only."""
        estimate = start(self.points)
        bhat = np.minimum(np.maximum(estimate, 0.01 * max(float(estimate.max()), 1e-6)), self.speed_cap)
        best = self._step(np.zeros_like(self.shape.control), bhat)
        best_duration = self.duration(best)
        steps = 1
        for delta in TRUST_SCHEDULE:
            while steps < MAX_STEPS:      # a trust-region size is kept while it still gains
                control = self._step(best, self._trust(best, delta))
                steps += 1
                current = self.duration(control)
                gain = (best_duration - current) / current
                if current < best_duration:
                    best_duration, best = current, control
                if gain < CONVERGED:      # including a step that lost: the next, smaller region starts from the best
                    break
        return SpeedSpline(self.shape.s0, self.shape.s1, best)

    def resolve(self, previous: SpeedSpline) -> SpeedSpline:
        """One linear program in a small trust region around ``previous``, after :meth:`add_points`."""
        control = self._step(previous.control, self._trust(previous.control, TRUST_SCHEDULE[-1]))
        return SpeedSpline(self.shape.s0, self.shape.s1, control)

    def _trust(self, control: NDArray[np.float64], delta: float) -> NDArray[np.float64]:
        """Upper bound on ``b`` at the collocation points for the next step: ``1 + delta`` times the current
        profile, plus a little everywhere so that it can grow from (near) zero at the ends."""
        b = self._b_at_points @ control
        return np.minimum(self.speed_cap, b * (1 + delta) + delta * 0.05 * max(float(b.max()), 1e-6))
