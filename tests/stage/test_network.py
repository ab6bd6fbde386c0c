"""The stage network end to end, in real processes on 127.0.0.1: two rig daemons (simulated drives,
simulated time paced to the wall clock) and operator stations run as ``motionctl stage`` commands.

One scenario, in the order an evening on set would go: the rigs show up; an untrusted station and a
station from another CA cannot move them; the operator brings both to their starts and runs them, then runs them together on the stage's timecode; the
operator's station dies in the middle of the next run (kill -9) and both rigs stop in a controlled way;
then the network fails under the next run (the station freezes) and both stop again after the lease; a
daemon dies and the station shows it, then it comes back; a second daemon under a name already on the
stage is refused.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from motionctl.stage.certs import issue, make_ca, save, stage_certs
from motionctl.stage.netfile import load_stage_net
from tests.conftest import MOVES, ROOT
from tests.stage.netfiles import net_text

pytestmark = pytest.mark.wall_clock


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _net_file(path: Path, certs: str, ports: tuple[int, int]) -> Path:
    path.write_text(net_text(ports, stage="test", certs=certs))
    return path


class Stage:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.net = _net_file(tmp / "net.toml", "certs", (_free_port(), _free_port()))
        stage_certs(load_stage_net(self.net))
        # A station from somebody else's CA, under the operator's own name.
        rogue = tmp / "rogue"
        ca_key, ca_cert = make_ca("not the stage's CA")
        save(ca_key, ca_cert, rogue / "ca.pem", rogue / "ca.key")
        save(*issue("operator-1", ca_key, ca_cert), rogue / "operator-1.pem", rogue / "operator-1.key")
        text = self.net.read_text().replace('"certs/', '"rogue/').replace('certs = "certs"', 'certs = "rogue"')
        self.rogue = tmp / "rogue.toml"
        self.rogue.write_text(text)
        self.daemons: dict[str, subprocess.Popen] = {}

    def serve(self, rig: str, move: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "motionctl", "serve", "--stage-net", str(self.net), "--rig", rig, "--sim",
             "--clock", "sim", "--takes", str(self.tmp / f"takes-{rig}"), "--move", str(move)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = process.stdout.readline()
        assert f"motionctl serve: {rig}" in line, (line, process.stderr.read() if process.poll() is not None else "")
        self.daemons[rig] = process
        return process

    def station(self, *args: str, net: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "motionctl", "stage", "--net", str(net or self.net), "--json",
                               *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)

    def status(self, net: Path | None = None) -> dict[str, dict]:
        result = self.station("status", net=net)
        return {row["rig"]: row for row in json.loads(result.stdout)["rigs"]}

    def until(self, condition, timeout: float = 120.0) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.status()
            if condition(rows):
                return rows
            assert time.monotonic() < deadline, rows
            time.sleep(0.3)

    def close(self) -> None:
        for process in self.daemons.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.daemons.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def stage(tmp_path):
    stage = Stage(tmp_path)
    yield stage
    stage.close()


def test_an_evening_on_the_stage_network(stage):
    stage.serve("arm-a", MOVES / "orbit.toml")                   # both at 25 fps from 10:00:00:00
    stage.serve("crane", MOVES / "crane_reveal_25.toml")
    rows = stage.until(lambda r: all(row["reachable"] and row.get("state") == "idle" for row in r.values()))
    assert rows["arm-a"]["move"] == "orbit" and rows["crane"]["state"] == "idle"

    # A trusted node that is not an operator sees the rigs, and cannot move them.
    viewer = stage.station("--as", "viewer-1", "go")
    assert viewer.returncode == 4
    refused = json.loads(viewer.stdout)
    assert not refused["arm-a"]["accepted"] and "only the operators" in refused["arm-a"]["reason"]
    # A station whose certificate another CA signed does not reach the rigs at all, whatever its name.
    rogue = stage.station("go", net=stage.rogue, timeout=60)
    assert rogue.returncode == 4 and "not on the stage network" in json.loads(rogue.stdout)["crane"]["reason"]
    assert all(row["state"] == "idle" for row in stage.status().values())

    # The operator: both rigs to their starts, then both run to the end.
    go = stage.station("go")
    assert go.returncode == 0, go.stdout + go.stderr
    run = stage.station("run")
    assert run.returncode == 0, run.stdout + run.stderr
    assert {row["state"] for row in stage.status().values()} == {"done"}

    # Together on the stage's timecode: the station is the master; each rig starts on its start frame.
    assert stage.station("go", "--timecode").returncode == 0
    on_timecode = stage.station("run", "--timecode")
    assert on_timecode.returncode == 0, on_timecode.stdout + on_timecode.stderr
    rows = stage.status()
    assert {row["state"] for row in rows.values()} == {"done"}
    assert all(row["on_timecode"] and abs(row["start_error_ticks"]) <= 0.5 for row in rows.values())

    # The operator's station dies during the next run: both rigs stop, in a controlled way.
    assert stage.station("go").returncode == 0
    running = subprocess.Popen([sys.executable, "-m", "motionctl", "stage", "--net", str(stage.net), "run"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stage.until(lambda r: r["crane"]["state"] == "running", timeout=60)
    os.kill(running.pid, signal.SIGKILL)
    running.wait(10)
    final = ("stopped", "done", "faulted", "e-stopped")
    rows = stage.until(lambda r: r["crane"]["state"] in final and r["arm-a"]["state"] in final, timeout=60)
    assert rows["crane"]["state"] == "stopped" and rows["crane"]["fault"] == ""
    assert rows["arm-a"]["state"] == "stopped" and rows["arm-a"]["fault"] == ""

    # The network between the station and the rigs fails mid-run (the station freezes, SIGSTOP: its link
    # stays open and says nothing): both rigs stop once the 1 s lease has run out.
    assert stage.station("go").returncode == 0
    frozen = subprocess.Popen([sys.executable, "-m", "motionctl", "stage", "--net", str(stage.net), "run"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stage.until(lambda r: r["crane"]["state"] == "running", timeout=60)
        os.kill(frozen.pid, signal.SIGSTOP)
        rows = stage.until(lambda r: r["crane"]["state"] in final and r["arm-a"]["state"] in final, timeout=60)
        assert rows["crane"]["state"] == "stopped" and rows["crane"]["fault"] == ""
    finally:
        frozen.kill()
        frozen.wait(10)

    # A daemon dies (kill -9): the station shows it gone, the other rig stays.
    stage.daemons["arm-a"].kill()
    stage.daemons["arm-a"].wait(10)
    rows = stage.until(lambda r: not r["arm-a"]["reachable"], timeout=30)
    assert rows["crane"]["reachable"]
    # ... and comes back (a late joiner): the station and the other daemon find it at its endpoint again.
    stage.serve("arm-a", MOVES / "orbit.toml")
    stage.until(lambda r: r["arm-a"]["reachable"] and r["arm-a"]["state"] == "idle", timeout=60)

    # A second daemon for a rig already on the stage is refused, in words.
    twin = subprocess.run([sys.executable, "-m", "motionctl", "serve", "--stage-net", str(stage.net), "--rig",
                           "crane", "--sim", "--clock", "sim"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert twin.returncode == 4 and "crane" in twin.stderr and "Traceback" not in twin.stderr
