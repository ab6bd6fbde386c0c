"""End-to-end ``motionctl plan`` and ``motionctl export``: real files on disk, real subprocesses."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import MOVES


def motionctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "motionctl", *args], capture_output=True, text=True, timeout=300)


def test_plan_writes_one_row_per_tick_with_the_documented_columns(tmp_path):
    out = tmp_path / "plan.csv"
    result = motionctl("plan", str(MOVES / "push_in.toml"), "--out", str(out), "--rate", "250", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = list(csv.reader(out.open()))
    header = rows[0]
    assert header[:3] == ["t_s", "frame", "timecode"]
    assert header[3:10] == ["track", "shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3"]
    assert header[10:16] == ["x_m", "y_m", "z_m", "pan_deg", "tilt_deg", "roll_deg"]
    assert header[16:] == ["focus", "iris", "zoom"]
    body = rows[1:]
    assert len(body) == int(np.ceil(report["duration_s"] * 250 - 1e-9)) + 1
    assert body[0][2] == "01:00:00:00" and body[0][1] == "0"
    t = np.array([float(r[0]) for r in body])
    np.testing.assert_allclose(np.diff(t), 1 / 250)
    last_frame = int(body[-1][1])
    assert last_frame == report["frames"] - 1


@pytest.mark.parametrize("retime", [(), ("--retime", "fastest")], ids=["as-keyed", "fastest"])
def test_plan_files_are_byte_identical_between_runs(tmp_path, retime):
    """Each run in a fresh process: the fastest timing's linear programs must not depend on the run."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for out in (a, b):
        done = motionctl("plan", str(MOVES / "orbit.toml"), "--out", str(out), "--rate", "250", *retime)
        assert done.returncode == 0, done.stderr
    assert a.read_bytes() == b.read_bytes()


def test_check_names_every_violation_of_the_illegal_moves():
    result = motionctl("check", *map(str, sorted((MOVES / "illegal").glob("*.toml"))))
    assert result.returncode == 1
    text = result.stdout
    assert "[unreachable] key 1" in text
    assert "[position] elbow" in text
    assert "[velocity] track" in text
    assert "vs plinth" in text and "[collision]" in text
    assert "[keepout] flange vs stunt_lane" in text                   # into_stunt_lane: the person alone


def test_retime_stretch_makes_the_too_fast_move_slow_enough(tmp_path):
    out = tmp_path / "slow.csv"
    result = motionctl("plan", str(MOVES / "illegal" / "too_fast_through_obstacle.toml"), "--out", str(out),
                       "--retime", "stretch", "--json")
    report = json.loads(result.stdout)
    kinds = {v["kind"] for v in report["violations"]}
    assert not kinds & {"velocity", "acceleration", "jerk"}
    assert "collision" in kinds                       # slower does not make it miss the plinth
    assert report["retime"]["frames_before"] == 13
    assert report["retime"]["frames_after"] > 13
    assert result.returncode == 1


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_camera_track_per_frame(tmp_path, fmt):
    out = tmp_path / f"track.{fmt}"
    result = motionctl("export", str(MOVES / "crane_reveal.toml"), "--format", fmt, "--out", str(out))
    assert result.returncode == 0, result.stderr
    if fmt == "json":
        data = json.loads(out.read_text())
        frames = data["frames"]
        assert data["fps"] == "29.97df" and data["frame_count"] == len(frames) == 271
        assert frames[0]["timecode"] == "00:59:50;00"
        assert frames[-1]["timecode"] == "00:59:59;00"   # 270 frames (9 s of labels) after 00:59:50;00
    else:
        rows = list(csv.DictReader(line for line in out.open() if not line.startswith("#")))
        assert len(rows) == 271
        assert set(rows[0]) >= {"frame", "timecode", "t_s", "x_m", "y_m", "z_m", "pan_deg", "tilt_deg", "roll_deg"}


def test_plan_on_bad_input_is_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    result = motionctl("plan", str(bad), "--out", str(tmp_path / "x.csv"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.csv").exists()
