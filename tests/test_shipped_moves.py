"""The shipped stage and moves exercise the people (issue 12, item 6).

The stage puts a keep-out zone within the UR10e's reach (the stunt lane, a foreground cross between the
track and the lead actor's mark), and the shipped moves include a legal move that passes close to it,
so that its tightest moment is a person, and an illegal move that is rejected for the person alone.

"Tightest moment" is the pair closest to its own requirement (least ``min_m - required_m``): the report's
``tightest_at`` and the pair the preview's "go to the tightest clearance" shows.  The report's
``min_clearance_at`` is the smallest distance in metres, and that is always one of the arm's own link
pairs for a legal move: no two of its non-adjacent links are ever more than about 22 mm apart, while a
person needs 0.5-0.6 m.
"""

from __future__ import annotations

import numpy as np
import pytest

from motionctl.collision import ClearanceChecker
from motionctl.kinematics import Kinematics
from motionctl.planner import ViolationKind, plan_scene
from motionctl.planner.limits import axis_limits
from motionctl.spec import load_scene
from tests.conftest import MOVES

STUNT_CROSS = MOVES / "stunt_cross.toml"
INTO_STUNT_LANE = MOVES / "illegal" / "into_stunt_lane.toml"
#: The legal cross passes the stunt lane no further than this outside the lane's required clearance.
PASS_WITHIN_M = 0.02


def tightest(report: dict) -> dict:
    """The clearance pair with the least room against its own requirement."""
    return min(report["clearances"], key=lambda c: c["min_m"] - c["required_m"])


@pytest.fixture(scope="module", params=[250, 1000], ids=lambda r: f"{r}Hz")
def cross(request) -> dict:
    return plan_scene(load_scene(STUNT_CROSS), request.param).report.to_dict()


def test_stunt_cross_is_legal_and_its_tightest_moment_is_the_stunt_lane(cross):
    assert cross["ok"], [v["message"] for v in cross["violations"]]
    closest = tightest(cross)
    assert (closest["kind"], closest["other"]) == ("keepout", "stunt_lane"), closest
    assert closest["required_m"] == pytest.approx(0.5)
    assert 0 < closest["min_m"] - closest["required_m"] <= PASS_WITHIN_M, closest
    # while the camera slides along the lane with the runner: after the "edge of the lane" hold (frames
    # 60-75), before the "runner past" key (frame 120)
    assert 75 <= closest["frame"] <= 120
    # no other pair comes as close to its requirement: not the arm against itself, not the set
    others = [c for c in cross["clearances"] if c is not closest]
    assert min(c["min_m"] - c["required_m"] for c in others) > closest["min_m"] - closest["required_m"]
    # and the report says so itself
    at = cross["extra"]["tightest_at"] if "extra" in cross else cross["tightest_at"]
    assert (at["kind"], at["other"]) == ("keepout", "stunt_lane")
    assert at["spare_m"] == pytest.approx(closest["min_m"] - closest["required_m"])


@pytest.mark.parametrize("rate", [250, 1000])
def test_into_stunt_lane_is_rejected_for_the_stunt_lane_alone(rate):
    plan = plan_scene(load_scene(INTO_STUNT_LANE), rate)
    assert not plan.ok
    violations = plan.report.violations
    assert violations
    assert {v.kind for v in violations} == {ViolationKind.KEEPOUT}, [v.message for v in violations]
    assert all(v.subject.endswith(" vs stunt_lane") for v in violations)
    report = plan.report.to_dict()
    assert all(key["reached"] for key in report["keys"])
    for peak in report["axis_peaks"]:
        assert max(peak["v_pct"], peak["a_pct"], peak["j_pct"]) < 100, peak
    # well inside the lane's 0.5 m clearance, but not in the performer's zone itself
    flange = next(v for v in violations if v.subject == "flange vs stunt_lane")
    assert 0.3 < flange.peak < 0.45 and flange.limit == pytest.approx(0.5)
    assert "stunt_lane" in flange.message


def test_a_keepout_zone_is_within_the_arms_reach(ur_rig, stage):
    """A pose of the UR10e within its joint limits, clear of every obstacle and of itself, is inside the
    clearance of a keep-out zone: the arm can reach a person, so the check must guard them."""
    for zone in stage.keepouts:
        assert 0.5 <= zone.clearance_m <= 0.6, zone.name
    plan = plan_scene(load_scene(INTO_STUNT_LANE), 250)
    kin = Kinematics(ur_rig)
    checker = ClearanceChecker(ur_rig, stage, kin.capsules)
    a, b = kin.capsules_world(kin.link_frames(plan.trajectory.q))
    result = checker.check(a, b)
    lane = next(p for p in result.pairs if p.kind == "keepout" and p.link == "flange" and p.other == "stunt_lane")
    assert lane.min_m < lane.required_m
    q = plan.trajectory.q[lane.tick]
    for value, lim in zip(q, axis_limits(ur_rig)):
        assert lim.lower + lim.margin <= value <= lim.upper - lim.margin, lim.name
    pose = checker.check(a[lane.tick:lane.tick + 1], b[lane.tick:lane.tick + 1])
    assert all(p.min_m >= p.required_m for p in pose.pairs if p.kind != "keepout")
    assert {p.other for p in pose.pairs if p.kind == "keepout" and p.min_m < p.required_m} == {"stunt_lane"}
    # the camera really is where the key puts it (the pose is reached, not approximated)
    key = plan.report.to_dict()["keys"][-1]
    camera = kin.camera(q)[:3, 3]
    np.testing.assert_allclose(camera, [key["camera"][k] for k in ("x_m", "y_m", "z_m")], atol=1e-3)
