"""A rig on three controllers (rigs/ur10e_rtde_track.toml: the UR arm over RTDE, the track over CANopen,
the lens over serial), run end to end in simulated time, each group on its own real wire to its own
simulated controller; a fault on any one of them stops the rig, in plain words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motionctl.runtime.takes import read_take
from tests.conftest import MOVES, dry_run

MOVE = MOVES / "ur_rtde_push_in.toml"


def test_a_rig_on_three_controllers_runs_and_two_runs_write_the_same_take(tmp_path):
    takes = []
    for run in ("a", "b"):
        result = dry_run(str(MOVE), "--takes", str(tmp_path / run))
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        summary = json.loads(result.stdout)
        assert summary["state"] == "done" and not summary["faults"], summary["faults"]
        take = read_take(summary["take"])
        assert take.complete and take.meta["transport"].startswith("group://arm,track,lens?")
        # Every group's link is in the statistics, named after its group.
        assert set(summary["link"]["dropped"]) <= {"lens: missing feedback"}
        # ... and each group's own timing: its cycles, and the longest gap between them (one servo period,
        # 2 ms at 500 Hz, in simulated time), in the summary and the take.
        groups = summary["link"]["groups"]
        assert list(groups) == ["arm", "track", "lens"]
        assert all(g["sent"] > 3000 and g["longest_gap_ms"] == 2.0 for g in groups.values()), groups
        assert take.meta["summary"]["link"]["groups"] == groups
        takes.append(Path(summary["take"]))
    for name in ("samples.csv", "events.jsonl"):
        assert (takes[0] / name).read_bytes() == (takes[1] / name).read_bytes(), name


@pytest.mark.parametrize("fault, words", [
    ("protective@2", "drive fault on shoulder_pan: the robot is in protective stop"),          # UR, RTDE
    ("programstop@2", "the control program was stopped on the robot (pendant or dashboard)"),  # UR program
    ("unplug:shoulder_pan@2", "arm: the UR controller at 127.0.0.1 closed the RTDE connection"),  # UR cable
    ("drive:track@2=0x2310", "drive fault on track: Continuous over-current"),                  # CANopen
    ("drive:zoom@2=0x0010", "drive fault on zoom"),                                             # serial
])
def test_a_fault_on_any_controller_stops_the_whole_rig(fault, words, tmp_path):
    result = dry_run(str(MOVE), "--takes", str(tmp_path), "--fault", fault)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "faulted" and any(words in f for f in summary["faults"]), summary["faults"]
    take = read_take(summary["take"])
    columns = take.columns
    state = columns.index("state")
    assert take.meta["summary"]["state"] == "faulted"
    # Once faulted, nothing is commanded to move: every faulted sample commands the same pose, on every axis
    # of every controller (a lost link ends the samples at the fault: then there are none after it).
    faulted = [row for row in take.rows if row[state] == "faulted"]
    for name in [c for c in columns if c.startswith("cmd_")]:
        i = columns.index(name)
        assert len({float(row[i]) for row in faulted}) <= 1, name


def test_hw_info_reports_each_groups_own_wire():
    import subprocess
    import sys

    from tests.conftest import RIGS
    out = subprocess.run([sys.executable, "-m", "motionctl", "hw", "info", "--rig", str(RIGS / "ur10e_rtde_track.toml")],
                         capture_output=True, text=True, timeout=120).stdout
    assert "group arm: rtde://192.168.1.20\n    Universal Robots RTDE over TCP" in out
    assert "group track: can://socketcan/can0\n    1 axis at 500 Hz" in out
    assert "group lens: serial:///dev/ttyUSB0?baud=1000000\n    3 axes at 250 Hz" in out


def test_in_real_time_each_group_has_a_simulator_process_and_the_can_group_is_served_over_tcp():
    """What ``run --sim`` starts in real time: every group's controller in a process of its own, the CAN
    track's drives served over TCP on 127.0.0.1 (socketcand): the track driver configures its drive
    through it (every SDO write of opening) and closes; each process ends with stop()."""
    from dataclasses import replace
    from urllib.parse import parse_qs, urlsplit

    from motionctl.cli.run import start_simulator
    from motionctl.hal.canopen.driver import CanDriver
    from motionctl.spec import load_scene

    rig = load_scene(MOVE).rig
    stop, url, device = start_simulator(rig, None, [])
    try:
        assert device is None                         # nothing of the simulator in this process
        parts = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
        assert set(parts) == {"arm", "track", "lens"}
        assert parts["track"].startswith("can://socketcand/sim0?host=127.0.0.1&port=")
        assert parts["arm"].startswith("rtde://127.0.0.1?") and parts["lens"].startswith("serial:///dev/pts/")
        track = replace(rig, hardware=next(g for g in rig.hardware.groups if g.name == "track"))
        driver = CanDriver(track, parts["track"] + "&sdo_timeout_s=10&boot_timeout_s=10")
        with driver:
            # Opening configured the drive: one SDO request per write of the golden configuration
            # (tests/hal/canopen/test_driver.py: 41 for a drive), each answered, or open() had failed.
            assert driver.wire_sent >= 41
    finally:
        stop()
