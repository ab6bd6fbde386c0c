"""Rigs checked together (``motionctl check --stage-net``): two UR track arms 2.4 m apart, each reaching
towards the other.  Alone each move is legal; together their forearm and wrist meet.  The same pair with
the second arm reaching away is legal together.  Distances are checked against coal (independent)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motionctl.errors import PlanningError
from motionctl.kinematics import Kinematics
from motionctl.planner import plan_scene
from motionctl.planner.together import check_together
from motionctl.spec import load_scene
from motionctl.spec.shapes import Capsule
from tests.conftest import RIGS, ROOT
from tests.test_collision import _coal_clearance

POSE = "track = 0.5, shoulder_pan = {pan}, shoulder_lift = -20.0, elbow = 20.0, wrist_1 = -90.0, " \
       "wrist_2 = -90.0, wrist_3 = 0.0"


def _move(path: Path, name: str, rig: Path, pan: float, start: str = "12:00:00:00", fps: str = "25") -> Path:
    path.write_text(f'''name = "{name}"
rig = "{rig}"
stage = "{RIGS / "stages" / "led_volume.toml"}"
fps = "{fps}"
start = "{start}"

[[key]]
frame = 0
joints = {{ {POSE.format(pan=0.0)} }}
hold = 10

[[key]]
frame = 100
joints = {{ {POSE.format(pan=pan)} }}
hold = 10
''')
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Arm A is the shipped rig; arm B the same arm 2.4 m further along -y (its own rig file)."""
    folder = tmp_path_factory.mktemp("pair")
    shutil.copytree(RIGS / "urdf", folder / "urdf")
    text = (RIGS / "ur10e_track.toml").read_text()
    assert "position = [-3.0, -1.5, 0.0]" in text
    arm_b = folder / "arm_b.toml"
    arm_b.write_text(text.replace("position = [-3.0, -1.5, 0.0]", "position = [-3.0, -3.9, 0.0]", 1))
    return folder, {
        "a": _move(folder / "reach_a.toml", "reach-a", RIGS / "ur10e_track.toml", 90.0),
        "b": _move(folder / "reach_b.toml", "reach-b", arm_b, -90.0),
        "b_away": _move(folder / "away_b.toml", "away-b", arm_b, 0.0),
        "b_late": _move(folder / "late_b.toml", "late-b", arm_b, -90.0, start="12:00:02:00"),
        "b_24": _move(folder / "b_24.toml", "b-24", arm_b, -90.0, fps="24"),
    }


def _plans(moves: dict, *names: str) -> dict:
    return {name: plan_scene(load_scene(moves[name])) for name in names}


def test_two_legal_moves_that_meet_are_not_legal_together(pair):
    _, moves = pair
    plans = _plans(moves, "a", "b")
    assert all(p.ok for p in plans.values())                      # each alone is legal
    report = check_together(plans, 0.05)
    assert not report.ok and report.offsets == {"a": 0, "b": 0}
    closest = report.pairs[0]
    assert closest.min_m < 0.05 and closest.ticks_inside_margin > 0
    assert "come within" in report.violations()[0] and closest.timecode.startswith("12:00:0")

    # coal, at the tick the check names: the closest of every capsule pair of the two arms.
    kin = {name: Kinematics(plans[name].rig) for name in plans}
    caps = {}
    for name, plan in plans.items():
        a, b = kin[name].capsules_world(kin[name].link_frames(plan.trajectory.q[closest.tick][None]))
        caps[name] = [(a[0, c], b[0, c], r, kin[name].capsules.names[c]) for c, r in enumerate(kin[name].capsules.radius)]
    reference = min((_coal_clearance(p0, p1, r, Capsule(q0, q1, s)), n, m)
                    for p0, p1, r, n in caps["a"] for q0, q1, s, m in caps["b"])
    assert closest.min_m == pytest.approx(reference[0], abs=1e-6)
    assert (closest.link_a, closest.link_b) == reference[1:]


def test_the_same_pair_reaching_away_is_legal_together(pair):
    _, moves = pair
    report = check_together(_plans(moves, "a", "b_away"), 0.05)
    assert report.ok and report.violations() == [] and report.pairs[0].min_m > 0.5


def test_moves_are_put_on_one_timeline_by_their_start_timecodes(pair):
    _, moves = pair
    plans = _plans(moves, "a", "b_late")
    report = check_together(plans, 0.05)
    assert report.offsets == {"a": 0, "b_late": 500}              # 2 s later at 250 Hz
    assert report.ticks == 500 + len(plans["b_late"].trajectory.q)
    # Arm A holds its end pose, reaching out, while B starts late and reaches in: they still meet, later.
    assert not report.ok and report.pairs[0].tick > 500
    with pytest.raises(PlanningError, match="one frame rate"):
        check_together(_plans(moves, "a", "b_24"), 0.05)


def test_check_stage_net_reports_each_move_and_the_pair(pair, tmp_path):
    folder, moves = pair
    net = tmp_path / "net.toml"
    net.write_text(f'''stage = "pair"
margin = 0.05
[[rig]]
name = "arm-a"
rig = "{RIGS / "ur10e_track.toml"}"
listen = "tcp/127.0.0.1:7500"
move = "{moves["a"]}"
[[rig]]
name = "arm-b"
rig = "{folder / "arm_b.toml"}"
listen = "tcp/127.0.0.1:7501"
move = "{moves["b"]}"
''')
    result = subprocess.run([sys.executable, "-m", "motionctl", "check", "--stage-net", str(net), "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["ok"] for line in lines] == [True, True, False]
    together = lines[-1]
    assert together["together"] and together["pairs"][0]["rig_a"] == "arm-a"
    assert "arm-a's wrist_2_link and arm-b's forearm_link" in together["violations"][0]
    text = subprocess.run([sys.executable, "-m", "motionctl", "check", "--stage-net", str(net)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert text.returncode == 1 and "NOT LEGAL together" in text.stdout and "VIOLATION" in text.stdout
    assert np.isfinite(together["pairs"][0]["min_m"])


def test_the_shipped_stage_network_is_legal_together():
    result = subprocess.run([sys.executable, "-m", "motionctl", "check", "--stage-net",
                             str(RIGS / "stage_net" / "demo.toml")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "LEGAL together" in result.stdout
