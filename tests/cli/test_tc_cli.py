"""``motionctl tc``: the pipeline's frame <-> label converter, end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def tc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "motionctl", "tc", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(("fps", "given", "expected"), [
    ("29.97df", "17982", "00:10:00;00"),
    ("29.97df", "00:10:00;00", "17982"),
    ("29.97df", "1800", "00:01:00;02"),
    ("59.94df", "3600", "00:01:00;04"),
    ("25", "90000", "01:00:00:00"),
    ("23.976", "01:00:00:00", "86400"),
])
def test_conversions(fps, given, expected):
    result = tc("--fps", fps, given)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_json_gives_exact_seconds():
    result = tc("--fps", "29.97df", "17982", "--json")
    data = json.loads(result.stdout)
    assert data == {"fps": "29.97df", "frame": 17982, "label": "00:10:00;00",
                    "seconds": pytest.approx(17982 * 1001 / 30000), "seconds_exact": "2999997/5000"}


@pytest.mark.parametrize(("fps", "given"), [("29.97df", "00:01:00;00"), ("24", "00:00:00:24"),
                                            ("24", "garbage"), ("29.98", "100"), ("25", "-5")])
def test_bad_input_is_one_line_exit_2(fps, given):
    result = tc("--fps", fps, given)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_gen_then_read_ltc_round_trip(tmp_path):
    wav = tmp_path / "tc.wav"
    made = tc("gen", "--fps", "25", "--start", "01:00:00:00", "--seconds", "2", "--out", str(wav))
    assert made.returncode == 0, made.stderr
    read = tc("read", str(wav), "--json")
    assert read.returncode == 0, read.stderr
    frames = [json.loads(line) for line in read.stdout.splitlines()]
    assert [f["label"] for f in frames[:3]] == ["01:00:00:00", "01:00:00:01", "01:00:00:02"]
    assert len(frames) == 50
    assert [f["sample"] for f in frames[:3]] == [0, 1920, 3840]           # 48 kHz / 25 fps


def test_read_rejects_a_file_that_is_not_audio(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_text("hello")
    result = tc("read", str(bad))
    assert result.returncode == 2 and "x.wav" in result.stderr and "Traceback" not in result.stderr
