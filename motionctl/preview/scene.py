"""What a preview shows, as plain data: the set, the rig's capsules at each frame coloured by clearance,
the camera path and frustum, the check verdict.  Pure (no I/O); the HTML page, the pictures and the
animation all draw from one :class:`PreviewData`, so they cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from motionctl.collision import ClearanceChecker
from motionctl.kinematics import Kinematics
from motionctl.spec.rig import Rig
from motionctl.spec.shapes import Box, Capsule, Cylinder, Plane, Sphere
from motionctl.spec.stage import Stage

#: Clearance colours: red inside a pair's margin, amber within this much beyond it, green beyond.
AMBER_BAND_M = 0.05
GREEN, AMBER, RED = 0, 1, 2
FLOOR_HALF_M = 8.0
SENSOR_WIDTH_MM = 36.0           # full-frame width, for the frustum when the lens has a zoom axis
DEFAULT_HFOV_DEG = 40.0


@dataclass(frozen=True)
class Approach:
    """The closest the rig comes to one thing: a person's keep-out zone, an obstacle, or itself."""

    other: str                  # the zone or obstacle; SELF for the arm against itself
    kind: str                   # "keepout" (people), "obstacle" (the set) or "self"
    link: str                   # the rig's link that comes closest
    min_m: float
    required_m: float
    frame: int
    timecode: str

    @property
    def spare_m(self) -> float:
        return self.min_m - self.required_m


SELF = "the arm itself"
#: People first, then the set, then the arm against itself.
KIND_ORDER = {"keepout": 0, "obstacle": 1, "self": 2}


def people_first(pairs: list[Approach]) -> list[Approach]:
    """One approach per zone or obstacle (and one for the arm against itself): the least spare of its
    pairs; people first, then the set, then the arm, each by spare."""
    best: dict[str, Approach] = {}
    for pair in pairs:
        key = SELF if pair.kind == "self" else pair.other
        if key not in best or pair.spare_m < best[key].spare_m:
            best[key] = pair if pair.kind != "self" else Approach(SELF, "self", f"{pair.link} to {pair.other}",
                                                                  pair.min_m, pair.required_m, pair.frame,
                                                                  pair.timecode)
    return sorted(best.values(), key=lambda a: (KIND_ORDER.get(a.kind, 1), a.spare_m))


def approach_text(a: Approach) -> str:
    """``actor_mark_a: 1555 mm from flange (needs 600), frame 105 (03:00:04:05)``."""
    what = a.other if a.kind != "self" else f"{a.other} ({a.link})"
    by = "" if a.kind == "self" else f" from {a.link}"
    return (f"{what}: {a.min_m * 1000:.0f} mm{by} (needs {a.required_m * 1000:.0f}), frame {a.frame} "
            f"({a.timecode})")


def closest_person_text(data: PreviewData) -> str:
    """``closest to people: <approach>; `` (empty without people): what leads the summary line, the
    contact sheet's footer and the clearance plot's title, in the same words."""
    person = next((a for a in data.approaches if a.kind == "keepout"), None)
    return f"closest to people: {approach_text(person)}; " if person is not None else ""


@dataclass(frozen=True)
class Solid:
    """A zone drawn as polygons (boxes, cylinders, planes), a sphere, or a capsule."""

    name: str
    kind: str                                 # "obstacle" or "keepout"
    clearance_m: float
    faces: list[list[list[float]]] = field(default_factory=list)
    sphere: tuple[list[float], float] | None = None
    capsule: tuple[list[float], list[float], float] | None = None


@dataclass(frozen=True)
class PreviewData:
    title: str
    verdict: str                               # "LEGAL" / "ILLEGAL" / "TAKE"
    violations: list[str]
    fps: float
    frames: list[int]                          # frame numbers shown
    timecodes: list[str]
    capsules: NDArray[np.float64]              # (F, C, 2, 3) endpoints, stage frame
    radii: NDArray[np.float64]                 # (C,)
    capsule_links: list[str]                   # link name of each capsule
    colours: NDArray[np.int64]                 # (F, C): GREEN / AMBER / RED
    slack_m: NDArray[np.float64]               # (F, C): clearance minus the margin, per capsule's link
    camera: NDArray[np.float64]                # (F, 4, 4) camera pose
    hfov_deg: NDArray[np.float64]              # (F,)
    speed_mps: NDArray[np.float64]             # (F,) camera-head speed
    joints: NDArray[np.float64]                # (F, axes) SI
    solids: list[Solid]
    min_frame_index: int                       # index into ``frames`` of the minimum clearance
    min_text: str
    ghost: NDArray[np.float64] | None = None   # (F, C, 2, 3): the plan under a take (overlay)
    #: Closest approach per person, obstacle and the arm itself (:func:`people_first` order).
    approaches: list[Approach] = field(default_factory=list)
    #: Per zone or obstacle (SELF for the arm), its least spare over the links at each shown frame (m).
    spare_by_other: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    #: (F, axes, 4) SI: lowest and highest velocity, lowest and highest acceleration over the servo ticks
    #: from each shown frame to the next (a plan's; a take has only its frames' positions)
    rate_bands: NDArray[np.float64] | None = None


def solids_of(stage: Stage | None) -> list[Solid]:
    out: list[Solid] = []
    if stage is None:
        return out
    for zone in stage.zones:
        shape, kind, name = zone.shape, zone.kind.value, zone.name
        if isinstance(shape, Box):
            corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
            world = shape.center + (corners * shape.half) @ np.asarray(shape.rotation).T
            quads = ((0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5))
            out.append(Solid(name, kind, zone.clearance_m, [[world[i].tolist() for i in q] for q in quads]))
        elif isinstance(shape, Cylinder):
            angles = np.linspace(0, 2 * math.pi, 17)[:-1]
            ring = np.stack([np.cos(angles) * shape.radius, np.sin(angles) * shape.radius, np.zeros_like(angles)], 1)
            top = shape.center + (ring + [0, 0, shape.half_height]) @ np.asarray(shape.rotation).T
            bottom = shape.center + (ring - [0, 0, shape.half_height]) @ np.asarray(shape.rotation).T
            faces = [top.tolist(), bottom.tolist()]
            faces += [[top[i].tolist(), top[(i + 1) % 16].tolist(), bottom[(i + 1) % 16].tolist(), bottom[i].tolist()]
                      for i in range(16)]
            out.append(Solid(name, kind, zone.clearance_m, faces))
        elif isinstance(shape, Sphere):
            out.append(Solid(name, kind, zone.clearance_m, sphere=(np.asarray(shape.center).tolist(), shape.radius)))
        elif isinstance(shape, Capsule):
            out.append(Solid(name, kind, zone.clearance_m,
                             capsule=(np.asarray(shape.a).tolist(), np.asarray(shape.b).tolist(), shape.radius)))
        elif isinstance(shape, Plane):
            n = np.asarray(shape.normal, dtype=float)
            u = np.cross(n, [1.0, 0, 0] if abs(n[0]) < 0.9 else [0, 1.0, 0])
            u /= np.linalg.norm(u)
            v = np.cross(n, u)
            p = np.asarray(shape.point, dtype=float)
            quad = [(p + FLOOR_HALF_M * (su * u + sv * v)).tolist() for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            out.append(Solid(name, kind, zone.clearance_m, [quad]))
    return out


def frame_samples(count: int, limit: int) -> NDArray[np.int64]:
    """Which of ``count`` frames to show: all, or ``limit`` spread evenly (first and last included)."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(int))


@dataclass(frozen=True)
class SetClearance:
    """Clearances at the shown frames, per capsule and per thing approached."""

    slack: NDArray[np.float64]            # (F, C) the worst pair of each capsule's link, of every kind
    people_and_set: NDArray[np.float64]   # (F, C) the same without the arm against itself
    spare_by_other: dict[str, NDArray[np.float64]]
    approaches: list[Approach]


def set_clearance(rig: Rig, stage: Stage | None, kin: Kinematics, a: NDArray[np.float64],
                  b: NDArray[np.float64], frames: list[int], timecodes: list[str]) -> SetClearance:
    """Clearance minus the required margin at every shown frame, per capsule (the worst pair of its link)
    and per zone or obstacle (the least over the links).  ``a``, ``b``: the capsules' endpoints at each
    frame, ``(F, C, 3)`` (from the caller's FK pass)."""
    checker = ClearanceChecker(rig, stage, kin.capsules)
    capsule_link = np.asarray(kin.capsules.link)
    columns = {link.name: capsule_link == i for i, link in enumerate(rig.links)}
    slack = np.full(a.shape[:2], np.inf)
    people_and_set = np.full(a.shape[:2], np.inf)
    by_other: dict[str, NDArray[np.float64]] = {}
    closest: list[Approach] = []
    for k in range(len(a)):
        for pair in checker.check(a[k:k + 1], b[k:k + 1]).pairs:
            spare = pair.min_m - pair.required_m
            for link in (pair.link, pair.other):
                if link in columns:
                    slack[k, columns[link]] = np.minimum(slack[k, columns[link]], spare)
                    if pair.kind != "self":
                        people_and_set[k, columns[link]] = np.minimum(people_and_set[k, columns[link]], spare)
            key = SELF if pair.kind == "self" else pair.other
            row = by_other.setdefault(key, np.full(len(a), np.inf))
            row[k] = min(row[k], spare)
            closest.append(Approach(pair.other, pair.kind, pair.link, pair.min_m, pair.required_m, frames[k],
                                    timecodes[k]))
    return SetClearance(slack, people_and_set, by_other, people_first(closest))


def colour_of(slack: NDArray[np.float64], people_and_set: NDArray[np.float64] | None = None) -> NDArray[np.int64]:
    """Red inside any margin; amber within the band of a person's or the set's margin (the arm close to
    itself is not what people on set need to see coming); green otherwise."""
    near = slack if people_and_set is None else people_and_set
    return np.where(slack < 0, RED, np.where(near < AMBER_BAND_M, AMBER, GREEN)).astype(np.int64)


def hfov(rig: Rig, lens: NDArray[np.float64]) -> NDArray[np.float64]:
    names = [l.name for l in rig.lens]
    if "zoom" in names and len(lens):
        focal = np.maximum(lens[:, names.index("zoom")], 1.0)
        return np.degrees(2 * np.arctan(SENSOR_WIDTH_MM / 2 / focal))
    return np.full(len(lens), DEFAULT_HFOV_DEG)


def build(title: str, verdict: str, violations: list[str], fps: float, frames: list[int], timecodes: list[str],
          rig: Rig, stage: Stage | None, q: NDArray[np.float64], lens: NDArray[np.float64],
          ghost_q: NDArray[np.float64] | None = None) -> PreviewData:
    """Preview data for joint samples ``q`` (one row per shown frame) of ``rig`` in ``stage``."""
    kin = Kinematics(rig)
    frames_all = kin.link_frames(q)
    a, b = kin.capsules_world(frames_all)
    capsules = np.stack([a, b], axis=2)
    camera = kin.camera_from_frames(frames_all)
    clearance = set_clearance(rig, stage, kin, a, b, list(frames), list(timecodes))
    slack = clearance.slack
    positions = camera[:, :3, 3]
    steps = np.diff(frames) if len(frames) > 1 else np.ones(1)
    speed = np.zeros(len(q))
    if len(q) > 1:
        speed[1:] = np.linalg.norm(np.diff(positions, axis=0), axis=1) * fps / np.maximum(steps, 1)
    worst = np.min(np.where(np.isfinite(slack), slack, np.inf), axis=1)
    index = int(np.argmin(worst)) if len(worst) else 0
    col = int(np.argmin(slack[index])) if len(slack) else 0
    link = rig.links[int(kin.capsules.link[col])].name if len(slack) else ""
    min_text = (f"tightest at frame {frames[index]} ({timecodes[index]}): {link} "
                f"{'inside its margin by' if worst[index] < 0 else 'clear of its margin by'} "
                f"{abs(worst[index]) * 1000:.0f} mm") if len(worst) and np.isfinite(worst[index]) else "no clearance pairs"
    ghost = None
    if ghost_q is not None:
        ga, gb = kin.capsules_world(kin.link_frames(ghost_q))
        ghost = np.stack([ga, gb], axis=2)
    return PreviewData(title, verdict, violations, fps, list(frames), list(timecodes), capsules,
                       np.asarray(kin.capsules.radius, dtype=float),
                       [rig.links[int(i)].name for i in kin.capsules.link],
                       colour_of(slack, clearance.people_and_set),
                       np.where(np.isfinite(slack), slack, 99.0), camera, hfov(rig, lens), speed, q,
                       solids_of(stage), index, min_text, ghost, clearance.approaches,
                       {k: np.where(np.isfinite(v), v, 99.0) for k, v in clearance.spare_by_other.items()})
