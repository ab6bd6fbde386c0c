"""``motionctl run`` of the KUKA rig over RSI: UDP on 127.0.0.1 between motionctl and the simulated KUKA
controller (simulator/rsi/controller.py, written from KUKA's description, sharing no code with the driver), in
simulated time; and the fault matrix of that interface."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motionctl.runtime.takes import read_take
from tests.conftest import MOVES, RIGS, dry_run

KUKA_MOVE = MOVES / "kuka_product_push.toml"


def test_a_kuka_move_runs_over_rsi_and_two_runs_write_the_same_take(tmp_path):
    takes = []
    for run in ("a", "b"):
        result = dry_run(str(KUKA_MOVE), "--takes", str(tmp_path / run))       # the rig's own wire: rsi://
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        summary = json.loads(result.stdout)
        assert summary["state"] == "done" and not summary["faults"], summary["faults"]
        assert summary["link"]["dropped"] == {}                     # the robot counted no late answer
        take = read_take(summary["take"])
        assert take.complete and take.meta["transport"].startswith("rsi://127.0.0.1:")
        takes.append(Path(summary["take"]))
    for name in ("samples.csv", "events.jsonl"):
        assert (takes[0] / name).read_bytes() == (takes[1] / name).read_bytes(), name


@pytest.mark.parametrize("fault, words", [
    # The operator stops the program (or releases the enabling switch): the controller ends RSI.
    ("robotstop@2", "the KUKA controller stopped sending RSI datagrams: RSI has ended on the robot"),
    # The cable: nothing arrives either way; the controller times out and ends RSI.
    ("unplug@2", "the KUKA controller stopped sending RSI datagrams"),
    # Answers late past the controller's limit (100 in a row) while the rig holds still.
    ("late@0+1", "; it had counted 99 late answers"),
    # motionctl's own servo thread freezes for longer than the lookahead (60 ms): the queue runs dry.
    ("host-stall@2+0.2", "setpoints stopped arriving (the host fell more than the lookahead behind): the driver "
                         "brought the arm to rest along its last direction"),
    # The robot's program says RSI_ON(#RELATIVE): it adds each absolute correction to the last.
    ("relative", "as RSI_ON(#RELATIVE) does: motionctl sends absolute corrections, so its program must say "
                 "RSI_ON(#ABSOLUTE, #IPO_FAST)"),
])
def test_rsi_faults_end_in_a_stop_explained_in_plain_words(fault, words, tmp_path):
    result = dry_run(str(KUKA_MOVE), "--takes", str(tmp_path), "--fault", fault)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "faulted"
    assert any(words in f for f in summary["faults"]), summary["faults"]
    assert read_take(summary["take"]).meta["summary"]["state"] == "faulted"


def test_a_robot_that_reads_corrections_as_relative_is_stopped_before_it_runs_away(tmp_path):
    """Summed, the corrections of a move run the arm away faster and faster: it is told apart from an arm
    that lags and stopped within about a millimetre or degree of the planned path."""
    import re

    result = dry_run(str(KUKA_MOVE), "--takes", str(tmp_path), "--fault", "relative")
    fault = next(f for f in json.loads(result.stdout)["faults"] if "RSI_ON(#RELATIVE)" in f)
    off = float(re.search(r"stopped with [AE]\d ([0-9.]+) (mm|deg) off the path", fault)[1])
    assert 0.5 < off < 1.5


def test_a_host_stall_shorter_than_the_lookahead_is_ridden_through(tmp_path):
    result = dry_run(str(KUKA_MOVE), "--takes", str(tmp_path), "--fault", "host-stall@2+0.03")
    summary = json.loads(result.stdout)
    assert summary["state"] == "done" and not summary["faults"] and summary["link"]["dropped"] == {}


def test_hw_info_says_what_rsi_carries():
    import subprocess
    import sys

    from tests.conftest import RIGS
    out = subprocess.run([sys.executable, "-m", "motionctl", "hw", "info", "--rig", str(RIGS / "kuka_kr_track.toml")],
                         capture_output=True, text=True, timeout=120).stdout
    assert "KUKA RSI over UDP: the robot sends one datagram every 4 ms" in out and "axes track, a1," in out


def _kuka_with_lens_at_500_hz(tmp_path: Path) -> Path:
    """The KUKA rig with its lens motors on a serial controller of their own, the rig at 500 Hz: the KUKA
    controller plays every other tick (its 4 ms cycle), the lens controller every tick."""
    rig_text = (RIGS / "kuka_kr_track.toml").read_text()
    head = rig_text[: rig_text.index("[hardware]")].replace('urdf = "urdf/', f'urdf = "{RIGS}/urdf/')
    rig = tmp_path / "kuka_lens_500.toml"
    rig.write_text(head + """[hardware]
servo_rate_hz = 500

[[hardware.group]]
name = "arm"
transport = "rsi://127.0.0.1:49152"
address = { track = 7, a1 = 1, a2 = 2, a3 = 3, a4 = 4, a5 = 5, a6 = 6 }

[[hardware.group]]
name = "lens"
transport = "serial:///dev/ttyUSB0?baud=1000000"
address = { focus = 8, iris = 9, zoom = 10 }
counts = { focus = 65536, iris = 65536, zoom = 65536 }
""")
    move_text = KUKA_MOVE.read_text()
    move = tmp_path / "kuka_lens_500_move.toml"
    move.write_text(move_text.replace('rig = "../rigs/kuka_kr_track.toml"', f'rig = "{rig}"')
                    .replace('stage = "../rigs/', f'stage = "{RIGS}/'))
    return move


def test_a_rig_at_500_hz_plays_every_other_tick_on_the_kuka_controller(tmp_path):
    """Each controller at the rate it needs in one servo tick: RSI's 4 ms cycle in a 500 Hz rig whose lens
    controller takes every tick; the arm plays the same path as the 250 Hz rig's."""
    move = _kuka_with_lens_at_500_hz(tmp_path)
    result = dry_run(str(move), "--takes", str(tmp_path / "mixed"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "done" and not summary["faults"], summary["faults"]
    groups = summary["link"]["groups"]
    # The robot's cycles every 4 ms, the lens controller's every 2 ms; each group's longest gap its own.
    assert groups["arm"]["longest_gap_ms"] == 4.0 and groups["lens"]["longest_gap_ms"] == 2.0, groups
    assert 0.49 < groups["arm"]["received"] / groups["lens"]["sent"] < 0.51, groups
    alone = json.loads(dry_run(str(KUKA_MOVE), "--takes", str(tmp_path / "alone")).stdout)
    assert summary["max_following_error"]["a1"] == pytest.approx(alone["max_following_error"]["a1"], rel=0.05)


def test_the_12_ms_ipo_cycle_plays_every_third_tick_of_a_250_hz_rig(tmp_path):
    """RSI's slower cycle (RSI_ON(..., #IPO), 12 ms), named by the URL as the KRL program says it: the robot
    answers once per three ticks and still follows the move."""
    result = dry_run(str(KUKA_MOVE), "--takes", str(tmp_path), "--hw", "rsi://127.0.0.1:49152?ipo_ms=12")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "done" and not summary["faults"], summary["faults"]
    assert summary["link"]["longest_gap_ms"] == 12.0
    assert 0.32 < summary["link"]["received"] / summary["link"]["sent"] < 0.35
    assert summary["max_following_error"]["track"] < 0.01        # m: it follows, three ticks at a time
