"""Daemons refuse to send a group to its starts when the group's moves are not legal together: two UR
track arms 2.4 m apart, each reaching towards the other (each move legal alone), as rig daemons in their
own processes on 127.0.0.1.  Each asks the other for the trajectory it would run and checks both."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import RIGS, ROOT
from tests.planner.test_together import _move
from tests.stage.test_network import _free_port

pytestmark = pytest.mark.wall_clock


def test_a_group_whose_moves_meet_is_refused(tmp_path):
    shutil.copytree(RIGS / "urdf", tmp_path / "urdf")
    text = (RIGS / "ur10e_track.toml").read_text()
    arm_b = tmp_path / "arm_b.toml"
    arm_b.write_text(text.replace("position = [-3.0, -1.5, 0.0]", "position = [-3.0, -3.9, 0.0]", 1))
    reach_a = _move(tmp_path / "reach_a.toml", "reach-a", RIGS / "ur10e_track.toml", 90.0)
    reach_b = _move(tmp_path / "reach_b.toml", "reach-b", arm_b, -90.0)
    net = tmp_path / "net.toml"
    net.write_text(f'''stage = "group"
[[station]]
name = "operator-1"
[[rig]]
name = "arm-a"
rig = "{RIGS / "ur10e_track.toml"}"
listen = "tcp/127.0.0.1:{_free_port()}"
move = "{reach_a}"
[[rig]]
name = "arm-b"
rig = "{arm_b}"
listen = "tcp/127.0.0.1:{_free_port()}"
move = "{reach_b}"
''')
    daemons = [subprocess.Popen([sys.executable, "-m", "motionctl", "serve", "--stage-net", str(net), "--rig", rig,
                                 "--sim", "--clock", "sim", "--insecure", "--takes", str(tmp_path / "takes")],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for rig in ("arm-a", "arm-b")]

    def stage(*args: str) -> tuple[int, dict]:
        result = subprocess.run([sys.executable, "-m", "motionctl", "stage", "--net", str(net), "--json", *args],
                                cwd=ROOT, capture_output=True, text=True, timeout=180)
        return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}

    try:
        for daemon in daemons:
            assert "motionctl serve" in daemon.stdout.readline()
        for _ in range(120):
            code, status = stage("status")
            if code == 0 and all(r.get("state") == "idle" for r in status["rigs"]):
                break
        else:
            pytest.fail(f"the rigs did not come up: {status}")
        code, replies = stage("go")
        assert code == 4
        for rig in ("arm-a", "arm-b"):
            assert not replies[rig]["accepted"]
            assert "not legal together" in replies[rig]["reason"] and "wrist_2_link" in replies[rig]["reason"]
        _, status = stage("status")
        assert {r["state"] for r in status["rigs"]} == {"idle"}               # nothing moved
        code, replies = stage("go", "arm-a")             # alone, no group to check (whatever its own go says)
        assert "together" not in replies["arm-a"]["reason"] and "group" not in replies["arm-a"]["reason"]
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
