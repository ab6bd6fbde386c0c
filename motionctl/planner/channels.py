"""Interpolation channels: smooth functions of time through key values that rest where the move rests.

A *channel* is one thing that moves (camera position, look-at target, orientation, roll, a follow
axis, a joint, a lens axis).  Its keys are split at *rest points*: the first and last key, every key
where the value holds into or out of a hold, and any key the caller forces (where the move changes
between camera-space and joint-space interpolation).  Between rest points the channel is one quintic
interpolating spline (scipy) with zero velocity and acceleration at both ends, so it is C4 inside a run,
starts and stops with zero velocity and acceleration, and a hold is perfectly still (a spline drawn
*through* a hold would wiggle).

Orientation runs are interpolated as rotation vectors relative to the run's middle key, so there is no
Euler-angle gimbal anywhere on the path; a run may turn up to 170 degrees either side of that key.  A
larger turn raises :class:`UnplannablePathError`, which the planner reports as a verdict on the move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import BSpline, make_interp_spline
from scipy.spatial.transform import Rotation

from motionctl.errors import PlanningError

#: Values closer than this count as "the same" when finding holds (metres, radians, lens units).
HOLD_EPS = 1e-12
MAX_RUN_TURN_RAD = math.radians(170.0)


class UnplannablePathError(PlanningError):
    """The keys, valid each on its own, ask for a path the planner cannot build.

    That is a verdict on the move as written (the operator fixes it by changing keys), not bad input and
    not a fault: :func:`motionctl.planner.plan.plan` turns it into a ``path`` violation of an illegal
    plan.  It carries the frames (of the move file) and the measured value, so the report can say where
    and by how much.
    """

    def __init__(self, reason: str, *, subject: str, first_frame: int, last_frame: int,
                 peak: float | None = None, limit: float | None = None, unit: str = "") -> None:
        self.reason = reason
        self.subject = subject              # what cannot be built ("orientation"), the violation's subject
        self.first_frame = first_frame
        self.last_frame = last_frame
        self.peak = peak
        self.limit = limit
        self.unit = unit
        super().__init__(reason)


@dataclass(frozen=True, eq=False)
class _Piece:
    t0: float
    t1: float
    spline: BSpline | None          # None: constant at ``value``
    value: NDArray[np.float64]


def rest_points(values: NDArray[np.float64], forced: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
    """Which keys are rest points for ``values`` of shape (n, d)."""
    n = len(values)
    rest = np.zeros(n, dtype=bool)
    rest[0] = rest[-1] = True
    if n > 1:
        same = np.all(np.abs(np.diff(values, axis=0)) <= HOLD_EPS, axis=1)
        rest[:-1] |= same
        rest[1:] |= same
    if forced is not None:
        rest |= forced
    return rest


def _rest_bc(d: int) -> tuple[list, list]:
    zero = np.zeros(d)
    return ([(1, zero), (2, zero)], [(1, zero), (2, zero)])


class Channel:
    """A vector channel: ``values`` (n, d) at strictly increasing ``times`` (n,)."""

    def __init__(self, times: NDArray[np.float64], values: NDArray[np.float64],
                 forced_rest: NDArray[np.bool_] | None = None) -> None:
        times = np.asarray(times, dtype=float)
        values = np.asarray(values, dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        self.times = times
        self.values = values
        self.rest = rest_points(values, forced_rest)
        self.pieces = self._build()

    def _build(self) -> list[_Piece]:
        pieces: list[_Piece] = []
        anchors = np.flatnonzero(self.rest)
        for a, b in zip(anchors[:-1], anchors[1:]):
            t0, t1 = float(self.times[a]), float(self.times[b])
            chunk = self.values[a: b + 1]
            if np.all(np.abs(chunk - chunk[0]) <= HOLD_EPS):
                pieces.append(_Piece(t0, t1, None, chunk[0].copy()))
            else:
                spline = make_interp_spline(self.times[a: b + 1], chunk, k=5, bc_type=_rest_bc(chunk.shape[1]))
                pieces.append(_Piece(t0, t1, spline, chunk[0].copy()))
        if not pieces:   # a single key: constant
            pieces.append(_Piece(float(self.times[0]), float(self.times[0]), None, self.values[0].copy()))
        return pieces

    @property
    def rest_times(self) -> NDArray[np.float64]:
        return self.times[self.rest]

    def __call__(self, t: NDArray[np.float64], order: int = 0) -> NDArray[np.float64]:
        """Value (or derivative ``order``) at times ``t``; constant before the first and after the last key."""
        t = np.asarray(t, dtype=float)
        out = np.zeros((t.size, self.values.shape[1]))
        flat = t.ravel()
        starts = np.array([p.t0 for p in self.pieces])
        index = np.clip(np.searchsorted(starts, flat, side="right") - 1, 0, len(self.pieces) - 1)
        for i, piece in enumerate(self.pieces):
            mask = index == i
            if not mask.any():
                continue
            if piece.spline is None:
                out[mask] = piece.value if order == 0 else 0.0
                continue
            local = np.clip(flat[mask], piece.t0, piece.t1)
            values = piece.spline(local, nu=order)
            if order:
                values[(flat[mask] < piece.t0) | (flat[mask] > piece.t1)] = 0.0
            out[mask] = values
        return out.reshape(t.shape + (self.values.shape[1],))


class OrientationChannel:
    """Rotations (n, 3, 3) at ``times``: rotation vectors about each run's middle key, splined."""

    def __init__(self, times: NDArray[np.float64], rotations: NDArray[np.float64],
                 forced_rest: NDArray[np.bool_] | None = None, frames: list[int] | None = None) -> None:
        times = np.asarray(times, dtype=float)
        rots = Rotation.from_matrix(np.asarray(rotations, dtype=float))
        rel_to_prev = np.zeros((len(times), 3))
        if len(times) > 1:
            rel_to_prev[1:] = (rots[:-1].inv() * rots[1:]).as_rotvec()
        # Holds are where consecutive rotations are equal; express that as a 1-D "value" for rest_points.
        cumulative = np.cumsum(np.linalg.norm(rel_to_prev, axis=1))[:, None]
        self.rest = rest_points(cumulative, forced_rest)
        self.times = times
        self.runs: list[tuple[float, float, Rotation, BSpline | None]] = []
        anchors = np.flatnonzero(self.rest)
        for a, b in zip(anchors[:-1], anchors[1:]):
            middle = (a + b) // 2
            reference = rots[middle]
            vectors = (reference.inv() * rots[a: b + 1]).as_rotvec()
            worst = int(np.argmax(np.linalg.norm(vectors, axis=1)))
            turn = float(np.linalg.norm(vectors[worst]))
            if turn > MAX_RUN_TURN_RAD:
                at = list(frames) if frames is not None else list(range(len(times)))
                raise UnplannablePathError(
                    f"the camera turns {math.degrees(turn):.1f} degrees between frame {at[middle]} and "
                    f"frame {at[a + worst]}, within one run of keys (frames {at[a]}-{at[b]}); a run may turn "
                    f"at most {math.degrees(MAX_RUN_TURN_RAD):.0f} degrees either side of its middle key: "
                    "add a hold or use look_at keys",
                    subject="orientation", first_frame=int(at[a]), last_frame=int(at[b]), peak=turn,
                    limit=MAX_RUN_TURN_RAD, unit="rad")
            if np.all(np.abs(vectors - vectors[0]) <= HOLD_EPS):
                self.runs.append((float(times[a]), float(times[b]), rots[a], None))
            else:
                spline = make_interp_spline(times[a: b + 1], vectors, k=5, bc_type=_rest_bc(3))
                self.runs.append((float(times[a]), float(times[b]), reference, spline))
        if not self.runs:
            self.runs.append((float(times[0]), float(times[0]), rots[0], None))

    @property
    def rest_times(self) -> NDArray[np.float64]:
        return self.times[self.rest]

    def __call__(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        flat = np.asarray(t, dtype=float).ravel()
        out = np.empty((flat.size, 3, 3))
        starts = np.array([r[0] for r in self.runs])
        index = np.clip(np.searchsorted(starts, flat, side="right") - 1, 0, len(self.runs) - 1)
        for i, (t0, t1, reference, spline) in enumerate(self.runs):
            mask = index == i
            if not mask.any():
                continue
            if spline is None:
                out[mask] = reference.as_matrix()
            else:
                vectors = spline(np.clip(flat[mask], t0, t1))
                out[mask] = (reference * Rotation.from_rotvec(vectors)).as_matrix()
        return out
