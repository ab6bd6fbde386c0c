"""Distance kernels against coal (hpp-fcl), and the trajectory checker against brute force.

coal is the independent reference: a link capsule is ``coal.Capsule(radius, length)`` (coal takes the
full length and centres it on its local z axis), zones are ``coal.Box(2*half)``,
``coal.Cylinder(radius, 2*half_height)``, ``coal.Sphere``, ``coal.Capsule`` and ``coal.Halfspace``.
"""

from __future__ import annotations

import dataclasses

import coal
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from motionctl.collision import (
    EPS_M, TIE_M, ClearanceChecker, capsule_clearance, segment_box_distance, segment_cylinder_distance,
    segment_segment_distance, segment_shape_distance)
from motionctl.kinematics import Kinematics
from motionctl.spec import Stage, Zone, ZoneKind
from motionctl.spec.shapes import Box, Capsule, Cylinder, Plane, Sphere

SCENES = 300
GJK_VARIANTS = tuple(coal.GJKVariant.names.values())


# -- coal reference ---------------------------------------------------------------------------------


def _frame_z(d: np.ndarray) -> np.ndarray:
    """A rotation whose third column points along ``d`` (identity for a zero vector)."""
    n = np.linalg.norm(d)
    if n == 0.0:
        return np.eye(3)
    z = d / n
    x = np.cross([1.0, 0.0, 0.0] if abs(z[0]) < 0.9 else [0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])


def _coal_capsule(a, b, radius):
    d = np.asarray(b, float) - np.asarray(a, float)
    return coal.Capsule(radius, float(np.linalg.norm(d))), coal.Transform3s(_frame_z(d), (a + b) / 2.0)


def _coal_shape(shape):
    if isinstance(shape, Box):
        return coal.Box(2.0 * shape.half), coal.Transform3s(shape.rotation, shape.center)
    if isinstance(shape, Cylinder):
        return (coal.Cylinder(shape.radius, 2.0 * shape.half_height),
                coal.Transform3s(shape.rotation, shape.center))
    if isinstance(shape, Sphere):
        return coal.Sphere(shape.radius), coal.Transform3s(np.eye(3), shape.center)
    if isinstance(shape, Capsule):
        return _coal_capsule(shape.a, shape.b, shape.radius)
    return coal.Halfspace(shape.normal, float(shape.normal @ shape.point)), coal.Transform3s()


def _coal_clearance(p0, p1, radius, shape) -> float:
    """coal's distance; the median of its three GJK variants, because on curved supports (cylinders)
    coal 3.0.3's GJK occasionally stops early and is off by up to ~1e-2 m, each variant on other scenes."""
    g1, t1 = _coal_capsule(p0, p1, radius)
    g2, t2 = _coal_shape(shape)
    out = []
    for variant in GJK_VARIANTS:
        req = coal.DistanceRequest()
        req.gjk_tolerance = 1e-12
        req.gjk_max_iterations = 1000
        req.gjk_variant = variant
        out.append(coal.distance(g1, t1, g2, t2, req, coal.DistanceResult()))
    return float(np.median(out))


def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _random_shape(kind: str, rng):
    center, rot = rng.normal(size=3) * 0.5, _rotation(rng)
    if kind == "box":
        return Box(center, rot, rng.uniform(0.02, 1.0, 3))
    if kind == "cylinder":
        return Cylinder(center, rot, rng.uniform(0.02, 1.0), rng.uniform(0.02, 1.0))
    if kind == "sphere":
        return Sphere(center, rng.uniform(0.02, 1.0))
    if kind == "capsule":
        a = center + rng.normal(size=3) * 0.5
        b = a + rng.normal(size=3) * rng.choice([0.0, 0.5, 1.0])
        return Capsule(a, b, rng.uniform(0.02, 0.5))
    n = rng.normal(size=3)
    return Plane(center, n / np.linalg.norm(n))


def _random_segment(shape, rng):
    """Segments from touching to far: near the shape's centre, sometimes along one of its axes."""
    anchor = shape.point if isinstance(shape, Plane) else getattr(shape, "center", None)
    anchor = (shape.a + shape.b) / 2.0 if anchor is None else anchor
    direction = rng.normal(size=3)
    if hasattr(shape, "rotation") and rng.uniform() < 0.25:
        direction = shape.rotation[:, rng.integers(3)]               # parallel to a face or the axis
    direction /= np.linalg.norm(direction)
    length = rng.choice([0.0, 1e-3, 0.2, 1.0, 3.0])
    mid = anchor + rng.normal(size=3) * rng.choice([0.3, 0.8, 1.5, 3.0])
    return mid - direction * length / 2.0, mid + direction * length / 2.0, rng.uniform(0.005, 0.3)


@pytest.mark.parametrize("kind", ["box", "cylinder", "sphere", "capsule", "plane"])
def test_kernels_match_coal(kind):
    rng = np.random.default_rng(["box", "cylinder", "sphere", "capsule", "plane"].index(kind) + 11)
    near = overlapping = far = 0
    for i in range(SCENES):
        shape = _random_shape(kind, rng)
        p0, p1, radius = _random_segment(shape, rng)
        core = float(segment_shape_distance(p0, p1, shape))
        if i % 3 == 0 and core > 0.06:             # near miss: choose the radius to leave a small gap
            radius = core - rng.uniform(1e-5, 0.05)
        ours = float(capsule_clearance(p0, p1, radius, shape))
        ref = _coal_clearance(p0, p1, radius, shape)
        if kind == "plane":                       # both are exact signed distances, also below it
            assert ours == pytest.approx(ref, abs=1e-9)
        if ref > 1e-6 or ours > 1e-6:
            assert ours == pytest.approx(ref, abs=1e-6), (shape, p0, p1, radius)
        else:
            assert ours <= 1e-6 and ref <= 1e-6
        near += 1e-6 < ref < 0.05
        overlapping += ref <= 0.0
        far += ref > 0.5
    assert near >= 30 and overlapping >= 20 and far >= 20


def test_degenerate_segments():
    p = np.array([1.0, 2.0, 3.0])
    assert segment_segment_distance(p, p, p + [0, 0, 1], p + [0, 0, 1]) == pytest.approx(1.0)
    # Parallel, overlapping in projection, and collinear disjoint.
    assert segment_segment_distance([0, 0, 0], [2, 0, 0], [1, 0.5, 0], [3, 0.5, 0]) == pytest.approx(0.5)
    assert segment_segment_distance([0, 0, 0], [1, 0, 0], [3, 0, 0], [5, 0, 0]) == pytest.approx(2.0)
    box = Box(np.zeros(3), np.eye(3), np.array([0.5, 0.5, 0.5]))
    assert segment_box_distance([0.7, 0.7, -3], [0.7, 0.7, 3], box) == pytest.approx(np.hypot(0.2, 0.2))
    assert segment_box_distance([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], box) == 0.0
    cyl = Cylinder(np.zeros(3), np.eye(3), 0.5, 1.0)
    assert segment_cylinder_distance([1.0, 0, -5], [1.0, 0, 5], cyl) == pytest.approx(0.5, abs=1e-12)
    assert segment_cylinder_distance([0.0, 0, 2.0], [0.0, 0, 2.0], cyl) == pytest.approx(1.0, abs=1e-12)
    # Broadcasting over leading dimensions.
    many = segment_shape_distance(np.zeros((4, 5, 3)) + [0, 0, 2], np.zeros((4, 5, 3)) + [0, 0, 3], box)
    assert many.shape == (4, 5) and np.allclose(many, 1.5)


def test_nearly_parallel_crossing_segments():
    for angle in (1e-2, 1e-4, 1e-6, 1e-8, 0.0):
        q0, q1 = [-1.0, -np.sin(angle), 0.1], [1.0, np.sin(angle), 0.1]
        assert segment_segment_distance([-1.0, 0, 0], [1.0, 0, 0], q0, q1) == pytest.approx(0.1, abs=1e-12)


def test_cylinder_search_is_exact_to_1e10():
    """Against a tight scalar minimisation of the (convex) signed distance along the segment."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        cyl = _random_shape("cylinder", rng)
        p0, p1, _ = _random_segment(cyl, rng)

        def sdf(t):
            x = cyl.rotation.T @ (p0 + t * (p1 - p0) - cyl.center)
            qr, qz = np.hypot(x[0], x[1]) - cyl.radius, abs(x[2]) - cyl.half_height
            return np.hypot(max(qr, 0.0), max(qz, 0.0)) + min(max(qr, qz), 0.0)

        ref = minimize_scalar(sdf, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-13}).fun
        ref = max(min(ref, sdf(0.0), sdf(1.0)), 0.0)
        assert float(segment_cylinder_distance(p0, p1, cyl)) == pytest.approx(ref, abs=1e-10)


_coord = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
_point = st.tuples(_coord, _coord, _coord).map(np.array)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(_point, _point, _point, _point)
def test_segment_distance_is_the_minimum_over_the_segments(p0, p1, q0, q1):
    d = float(segment_segment_distance(p0, p1, q0, q1))
    assert d == pytest.approx(float(segment_segment_distance(q1, q0, p1, p0)), abs=1e-12)
    t = np.linspace(0.0, 1.0, 201)
    dense = np.linalg.norm((p0 + t[:, None] * (p1 - p0))[:, None] - (q0 + t[:, None] * (q1 - q0))[None],
                           axis=-1)
    step = (np.linalg.norm(p1 - p0) + np.linalg.norm(q1 - q0)) / 200.0
    assert dense.min() - step - 1e-12 <= d <= dense.min() + 1e-12


# -- trajectory checker -----------------------------------------------------------------------------


def _brute_force(checker: ClearanceChecker, stage: Stage | None, caps, a, b):
    """Every pair at every tick with the public kernels -> (pairs, K) clearance table and runs."""
    table = np.full((len(checker.pair_specs), a.shape[0]), np.inf)
    zones = {z.name: z for z in stage.zones} if stage is not None else {}
    own = {name: [c for c, n in enumerate(caps.names) if n == name] for name in caps.names}
    for p, (kind, link, other, _) in enumerate(checker.pair_specs):
        for c in own[link]:
            if kind == "self":
                for o in own[other]:
                    d = segment_segment_distance(a[:, c], b[:, c], a[:, o], b[:, o])
                    table[p] = np.minimum(table[p], d - (caps.radius[c] + caps.radius[o]))
            else:
                d = segment_shape_distance(a[:, c], b[:, c], zones[other].shape)
                table[p] = np.minimum(table[p], d - caps.radius[c])
    runs = []
    for p, (_, _, _, required) in enumerate(checker.pair_specs):
        bad = np.r_[False, table[p] < required, False]
        edges = np.flatnonzero(np.diff(bad.astype(int)))
        for first, end in zip(edges[::2], edges[1::2]):
            seg = table[p, first:end]
            runs.append((first, p, end - 1, seg.min(), first + int(np.argmin(seg))))
    return table, sorted(runs)


def _assert_exact(checker, stage, caps, a, b):
    result = checker.check(a, b)
    table, runs = _brute_force(checker, stage, caps, a, b)
    for p, pc in enumerate(result.pairs):
        lowest = table[p].min()
        assert table[p, pc.tick] == pc.min_m                              # a real value, at its tick
        assert lowest <= pc.min_m <= lowest + TIE_M + EPS_M
        if np.count_nonzero(table[p] <= lowest + 2 * TIE_M) == 1:         # unique minimum: identical
            assert (pc.min_m, pc.tick) == (lowest, int(np.argmin(table[p])))
        if lowest < pc.required_m:                                         # violating pairs: identical
            assert (pc.min_m, pc.tick) == (lowest, int(np.argmin(table[p])))
    got = [(r.first_tick, r.pair, r.last_tick, r.min_m, r.tick_of_min) for r in result.runs]
    assert got == runs
    assert result.min_m == min(pc.min_m for pc in result.pairs)
    assert result.pairs[result.min_pair].min_m == result.min_m
    return result


def _smooth_motion(rng, K: int, C: int, lengths: np.ndarray):
    """Random smooth capsule motion with holds (bit-identical ticks) and a pure translation stretch."""
    dt = np.where(rng.uniform(size=K) < 0.2, 0.0, 1.0 / K)                # short holds: time stops
    dt[K // 2:K // 2 + K // 8] = 0.0                                     # a long hold
    dolly = slice(K // 4, K // 4 + K // 6)
    dt[dolly] = 0.0                                                      # shapes frozen ...
    time = np.cumsum(dt)
    shift = np.zeros((K, 1, 3))
    shift[dolly, 0, 0] = np.linspace(0.0, 0.8, dolly.stop - dolly.start)  # ... while everything slides
    shift[dolly.stop:, 0, 0] = 0.8
    centre = rng.uniform(-1.5, 1.5, (1, C, 3))
    amp, freq, phase = (rng.uniform(lo, hi, (3, C, 3)) for lo, hi in ((0.2, 1.0), (1.0, 6.0), (0.0, 6.0)))

    def wave(k):
        return amp[k] * np.sin(freq[k] * time[:, None, None] * 2 + phase[k])

    a = centre + wave(0) + shift
    axis = wave(1) + 0.3 * wave(2)
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    return a, a + axis * lengths[None, :, None]


def _synthetic_stage(rng) -> Stage:
    """One zone of every shape kind around the motion, one of them ignoring the flange."""
    obstacle, keepout = ZoneKind.OBSTACLE, ZoneKind.KEEPOUT
    v = np.array
    zones = [Zone("floor", obstacle, Plane(v([0, 0, -1.2]), v([0, 0, 1.0])), 0.05),
             Zone("crate", obstacle, Box(rng.normal(size=3) * 0.5, _rotation(rng), v([0.4, 0.3, 0.5])), 0.05),
             Zone("post", obstacle, Cylinder(rng.normal(size=3) * 0.5, _rotation(rng), 0.2, 0.8), 0.05),
             Zone("ball", keepout, Sphere(rng.normal(size=3) * 0.8, 0.3), 0.4),
             Zone("boom", keepout, Capsule(v([-1.0, 0.5, 0.3]), v([1.0, -0.5, 0.6]), 0.15), 0.3, ("flange",)),
             Zone("wall", obstacle, Box(v([0, 2.5, 0]), np.eye(3), v([4.0, 0.1, 3.0])), 0.05)]
    return Stage("synthetic", "synthetic", "", tuple(zones), np.eye(4), 1.0)


@pytest.mark.parametrize("levels", [(64, 8, 1), (1024, 128, 16, 1), (16, 1), (1,)])
def test_checker_equals_brute_force_on_synthetic_motion(ur_rig, levels):
    caps = Kinematics(ur_rig).capsules
    lengths = np.linalg.norm(caps.b - caps.a, axis=1)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        stage = _synthetic_stage(rng)
        checker = ClearanceChecker(ur_rig, stage, caps, levels=levels)
        a, b = _smooth_motion(rng, 400, len(caps.names), lengths)
        result = _assert_exact(checker, stage, caps, a, b)
        assert result.runs                                                # violations were exercised


def _random_joint_motion(rig, rng, K: int) -> np.ndarray:
    keys = rig.park + rng.uniform(-1, 1, (5, len(rig.axes))) * np.radians([0, 60, 40, 40, 60, 60, 90])
    keys[:, 0] = rng.uniform(0.5, 5.5, 5)
    s = np.linspace(0, 4, K)
    i = np.minimum(s.astype(int), 3)
    f = s - i
    f = (10 * f**3 - 15 * f**4 + 6 * f**5)[:, None]
    return keys[i] + f * (keys[i + 1] - keys[i])


def test_checker_equals_brute_force_on_the_shipped_rig(ur_rig, stage):
    kin = Kinematics(ur_rig)
    for seed, levels in ((0, (1024, 128, 16, 1)), (1, (64, 8, 1)), (2, (32, 4, 1))):
        q = _random_joint_motion(ur_rig, np.random.default_rng(seed), 600)
        a, b = kin.capsules_world(kin.link_frames(q))
        checker = ClearanceChecker(ur_rig, stage, kin.capsules, levels=levels)
        _assert_exact(checker, stage, kin.capsules, a, b)


def _pair_keys(checker):
    return {spec[:3] for spec in checker.pair_specs}


def test_pairs_follow_ignore_links_adjacency_and_ignore_pairs(ur_rig, stage):
    caps = Kinematics(ur_rig).capsules
    checker = ClearanceChecker(ur_rig, stage, caps)
    keys = _pair_keys(checker)
    links_with_capsules = [l.name for l in ur_rig.links if l.capsules]
    for zone in stage.zones:
        for link in links_with_capsules:
            assert ((zone.kind.value, link, zone.name) in keys) == (link not in zone.ignore_links)
    assert ("obstacle", "track_base", "floor") not in keys and ("obstacle", "carriage", "floor") not in keys
    assert ("obstacle", "base_link", "floor") in keys
    required = {spec[:3]: spec[3] for spec in checker.pair_specs}
    assert required[("keepout", "flange", "actor_mark_a")] == 0.6
    assert required[("obstacle", "flange", "floor")] == 0.03
    assert required[("obstacle", "flange", "desk")] == 0.05
    # Bodies: track_base 0 | carriage, base_link 1 | shoulder 2 | upper arm 3 | forearm 4 | wrist 1..3
    # 5, 6, 7 | flange 7 (fixed to wrist 3).  Only bodies two or more apart are checked.
    body = {"track_base": 0, "carriage": 1, "base_link": 1, "shoulder_link": 2, "upper_arm_link": 3,
            "forearm_link": 4, "wrist_1_link": 5, "wrist_2_link": 6, "wrist_3_link": 7, "flange": 7}
    expected = {("self", x, y) for i, x in enumerate(links_with_capsules)
                for y in links_with_capsules[i + 1:] if abs(body[x] - body[y]) >= 2}
    assert {k for k in keys if k[0] == "self"} == expected
    assert ("self", "wrist_1_link", "flange") in keys and ("self", "track_base", "shoulder_link") in keys
    for absent in (("track_base", "carriage"), ("carriage", "base_link"), ("wrist_3_link", "flange"),
                   ("wrist_2_link", "flange"), ("carriage", "shoulder_link")):
        assert ("self", *absent) not in keys
    assert all(spec[3] == ur_rig.self_margin_m for spec in checker.pair_specs if spec[0] == "self")
    # shoulder_link has two capsules: one pair per zone, the minimum over both capsules.
    assert sum(1 for k in keys if k[:2] == ("obstacle", "shoulder_link") and k[2] == "desk") == 1

    rig = dataclasses.replace(ur_rig, ignore_pairs=frozenset({frozenset({"flange", "wrist_1_link"})}),
                              self_margin_m=0.02)
    ignoring = ClearanceChecker(rig, stage, caps)
    assert _pair_keys(ignoring) == keys - {("self", "wrist_1_link", "flange")}
    assert all(spec[3] == 0.02 for spec in ignoring.pair_specs if spec[0] == "self")
    no_stage = ClearanceChecker(ur_rig, None, caps)
    assert _pair_keys(no_stage) == expected


def test_ignored_links_never_report_a_violation(ur_rig):
    """A zone around the flange's whole workspace: only links not ignored by it can violate it."""
    kin = Kinematics(ur_rig)
    everywhere = Box(np.zeros(3), np.eye(3), np.array([20.0, 20.0, 20.0]))
    others = tuple(link.name for link in ur_rig.links if link.name != "flange")
    stage = Stage("s", "s", "", (Zone("fog", ZoneKind.KEEPOUT, everywhere, 0.1, others),), np.eye(4), 1.0)
    q = _random_joint_motion(ur_rig, np.random.default_rng(5), 50)
    a, b = kin.capsules_world(kin.link_frames(q))
    result = ClearanceChecker(ur_rig, stage, kin.capsules).check(a, b)
    zone_runs = [r for r in result.runs if result.pairs[r.pair].kind == "keepout"]
    assert [(result.pairs[r.pair].link, r.first_tick, r.last_tick) for r in zone_runs] == [("flange", 0, 49)]
    assert result.pairs[zone_runs[0].pair].min_m == pytest.approx(-kin.capsules.radius[-1])


def test_checker_edge_cases(ur_rig, stage):
    kin = Kinematics(ur_rig)
    checker = ClearanceChecker(ur_rig, stage, kin.capsules)
    a, b = kin.capsules_world(kin.link_frames(np.array(ur_rig.park)[None]))
    one = checker.check(a, b)
    assert one.ok and all(p.tick == 0 for p in one.pairs) and one.min_pair >= 0
    two = checker.check(np.concatenate([a, a]), np.concatenate([b, b]))
    assert [p.min_m for p in two.pairs] == [p.min_m for p in one.pairs]
    with pytest.raises(ValueError):
        checker.check(a[:, :3], b[:, :3])
    with pytest.raises(ValueError):
        ClearanceChecker(ur_rig, stage, kin.capsules, levels=(64, 24, 1))
    empty = dataclasses.replace(ur_rig, ignore_pairs=frozenset(
        frozenset({x.name, y.name}) for x in ur_rig.links for y in ur_rig.links if x is not y))
    nothing = ClearanceChecker(empty, None, kin.capsules).check(a, b)
    assert nothing.pairs == () and nothing.min_pair == -1 and nothing.min_m == float("inf")
