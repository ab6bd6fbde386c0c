"""Several rigs in one set, checked together: clearance between their links at every tick of one
timeline (pure: plans in, a report out).

Each rig's move is planned and checked on its own first (limits, the set, the people, itself).  Run
together, two legal moves can still meet: an arm swinging into the crane's boom.  Here the moves are put
on one timeline by their start timecodes (each rig's frame 0 at its own start; before it, the rig waits
at its start pose, armed; after its end it holds its last pose), every rig's capsules are placed in the
stage frame by its own forward kinematics (its rig file's ``[base]`` puts it in the set), and every link
of every rig is measured against every link of every other rig at every servo tick, exactly (the same
segment-to-segment kernel as the single-rig check, on every tick: no sampling between ticks).

Why rounding to ticks: the rigs start on the servo tick nearest their start frame (the runtime's chase
does the same), so an offset between two start timecodes becomes a whole number of ticks.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from motionctl.collision_kernels import seg_seg
from motionctl.errors import PlanningError
from motionctl.kinematics import Kinematics
from motionctl.planner.plan import Plan
from motionctl.spec.rig import Rig
from motionctl.timecode import FrameRate, Timecode

#: Ticks measured at once (memory: ticks x capsules x capsules x 3 floats per pair of rigs).
CHUNK_TICKS = 2048


@dataclass(frozen=True)
class RigPairClearance:
    """The closest approach of two rigs' links over the whole timeline."""

    rig_a: str
    link_a: str
    rig_b: str
    link_b: str
    min_m: float                    # surface to surface (capsule cores' distance minus both radii)
    tick: int                       # on the common timeline
    timecode: str
    ticks_inside_margin: int        # how many ticks any link pair of the two was closer than the margin
    first_inside: str               # the timecode of the first such tick ("" when none)


@dataclass(frozen=True)
class TogetherReport:
    rate_hz: int
    margin_m: float
    ticks: int
    offsets: dict[str, int]         # each rig's first tick on the common timeline
    pairs: tuple[RigPairClearance, ...]

    @property
    def ok(self) -> bool:
        return all(p.ticks_inside_margin == 0 for p in self.pairs)

    def violations(self) -> list[str]:
        """Each pair of rigs that comes closer than the margin, in words."""
        return [f"{p.rig_a}'s {p.link_a} and {p.rig_b}'s {p.link_b} come within {p.min_m * 1000:.0f} mm at "
                f"{p.timecode} (margin {self.margin_m * 1000:.0f} mm; {p.ticks_inside_margin} ticks inside it "
                f"from {p.first_inside})" for p in self.pairs if p.ticks_inside_margin]


@dataclass(frozen=True, eq=False)
class RigRun:
    """What the check needs of one rig's run: the rig, its joint trajectory at the servo rate, and when
    its frame 0 is (its move's start timecode).  A daemon gets one from another over the network, without
    planning the other's move again: the trajectory checked is the one that rig will run."""

    rig: Rig
    q: NDArray[np.float64]          # (ticks, axes), SI
    rate_hz: int
    move_rate: FrameRate
    start: Timecode

    @classmethod
    def of(cls, plan: Plan) -> RigRun:
        if plan.trajectory is None:
            raise PlanningError(f"{plan.move.name} could not be planned: check it on its own first")
        return cls(plan.rig, plan.trajectory.q, plan.rate_hz, plan.move.rate, plan.move.start)


def _offsets(runs: dict[str, RigRun], rate: int, by_timecode: bool) -> dict[str, int]:
    """Each move's start on the common timeline, in ticks from the earliest start."""
    if not by_timecode:
        return {name: 0 for name in runs}
    rates = {r.move_rate.fps for r in runs.values()}
    if len(rates) != 1:
        raise PlanningError("moves run together must share one frame rate (one timecode): "
                            + ", ".join(f"{n} {r.move_rate.label}" for n, r in runs.items()))
    starts = {name: Fraction(run.start.frame) / run.move_rate.fps for name, run in runs.items()}
    first = min(starts.values())
    return {name: int(round((start - first) * rate)) for name, start in starts.items()}


def _capsules(run: RigRun, offset: int, ticks: int) -> tuple[NDArray, NDArray, NDArray, tuple[str, ...]]:
    """The rig's capsule endpoints on the common timeline ``(ticks, C, 3)`` twice, radii, link names."""
    index = np.clip(np.arange(ticks) - offset, 0, len(run.q) - 1)   # wait at the start, hold at the end
    kin = Kinematics(run.rig)
    a, b = kin.capsules_world(kin.link_frames(run.q[index]))
    return a, b, kin.capsules.radius, kin.capsules.names


def _timecode(runs: dict[str, RigRun], offsets: dict[str, int], tick: int, rate: int) -> str:
    """The timecode of a common tick, on the first-starting move's clock."""
    run = runs[min(offsets, key=offsets.get)]
    frame = int(Fraction(tick, rate) * run.move_rate.fps + Fraction(1, 10**6))
    return (run.start + frame).label


def check_together(plans: dict[str, Plan | RigRun], margin_m: float, *, by_timecode: bool = True) -> TogetherReport:
    """Clearance between every two rigs (name -> its checked plan, or its :class:`RigRun`) on one timeline:
    by their start timecodes, or all starting at once (``by_timecode=False``: a group run started together)."""
    if len(plans) < 2:
        raise PlanningError("checking rigs together needs two rigs or more")
    runs = {name: p if isinstance(p, RigRun) else RigRun.of(p) for name, p in plans.items()}
    rates = {r.rate_hz for r in runs.values()}
    if len(rates) != 1:
        raise PlanningError("moves run together must be planned at one servo rate")
    rate = rates.pop()
    offsets = _offsets(runs, rate, by_timecode)
    ticks = max(offsets[n] + len(r.q) for n, r in runs.items())
    shapes = {name: _capsules(run, offsets[name], ticks) for name, run in runs.items()}
    names = list(runs)
    pairs = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            pairs.append(_pair(first, second, shapes[first], shapes[second], margin_m, runs, offsets, rate, ticks))
    return TogetherReport(rate, margin_m, ticks, offsets, tuple(pairs))


def _pair(first: str, second: str, a, b, margin_m: float, runs, offsets, rate: int, ticks: int) -> RigPairClearance:
    a0, a1, ra, na = a
    b0, b1, rb, nb = b
    radii = ra[:, None] + rb[None, :]
    best, best_tick, best_pair = np.inf, 0, (0, 0)
    inside, first_inside = 0, -1
    for start in range(0, ticks, CHUNK_TICKS):
        stop = min(ticks, start + CHUNK_TICKS)
        d = seg_seg(a0[start:stop, :, None], a1[start:stop, :, None], b0[start:stop, None, :],
                    b1[start:stop, None, :]) - radii                     # (K, Ca, Cb)
        per_tick = d.reshape(d.shape[0], -1).min(axis=1)
        close = np.flatnonzero(per_tick < margin_m)
        if close.size:
            inside += int(close.size)
            if first_inside < 0:
                first_inside = start + int(close[0])
        k = int(np.argmin(per_tick))
        if per_tick[k] < best:
            best, best_tick = float(per_tick[k]), start + k
            best_pair = np.unravel_index(int(np.argmin(d[k])), d[k].shape)
    return RigPairClearance(first, na[best_pair[0]], second, nb[best_pair[1]], best, best_tick,
                            _timecode(runs, offsets, best_tick, rate), inside,
                            _timecode(runs, offsets, first_inside, rate) if first_inside >= 0 else "")
