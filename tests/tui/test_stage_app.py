"""``motionctl tui --stage``: the station's keys reach a rig daemon (its own process, simulated drives,
Zenoh on 127.0.0.1) and its table shows what the rig does."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from motionctl.stage.netfile import load_stage_net
from motionctl.stage.operator import StageOperator
from motionctl.tui.stage_app import StageApp
from tests.conftest import MOVES, RIGS, ROOT
from tests.stage.test_network import _free_port

pytestmark = pytest.mark.wall_clock


async def _until(pilot, app, condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, [r.status for r in app.operator.rows()]
        await pilot.pause(0.2)


def _state(app: StageApp) -> str:
    status = app.operator.rows()[0].status
    return status.state if status is not None else ""


def test_the_station_goes_and_e_stops_a_rig_with_the_keys(tmp_path):
    net_file = tmp_path / "net.toml"
    net_file.write_text(f'''stage = "tui"
[[station]]
name = "operator-1"
[[rig]]
name = "crane"
rig = "{RIGS / "moco_crane.toml"}"
listen = "tcp/127.0.0.1:{_free_port()}"
move = "{MOVES / "crane_reveal_25.toml"}"
''')
    daemon = subprocess.Popen([sys.executable, "-m", "motionctl", "serve", "--stage-net", str(net_file), "--rig",
                               "crane", "--sim", "--clock", "sim", "--insecure", "--takes", str(tmp_path / "takes")],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "motionctl serve" in daemon.stdout.readline()
        operator = StageOperator(load_stage_net(net_file)).open()
        app = StageApp(operator)

        async def drive() -> None:
            async with app.run_test() as pilot:
                await _until(pilot, app, lambda: _state(app) == "idle")
                await pilot.press("g")
                await _until(pilot, app, lambda: _state(app) == "at start")
                table = app.query_one("#rigs")
                assert table.get_cell("crane", "owner") == "operator-1"
                await pilot.press("space")
                await _until(pilot, app, lambda: _state(app) == "e-stopped", timeout=30)
                await pilot.press("x")
                await _until(pilot, app, lambda: _state(app) == "idle", timeout=30)
                await pilot.press("t")
                await pilot.pause(0.3)
                assert "on the stage's timecode" in str(app.query_one("#mode").render())
                await pilot.press("q")

        asyncio.run(drive())
        assert any("E-STOP" in text for _, text in operator.log) or app.refreshes > 0
    finally:
        daemon.terminate()
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
