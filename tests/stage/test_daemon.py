"""The rig daemon's refusals, in one process: a daemon and stations on Zenoh over TCP on 127.0.0.1 (no
rig is connected: every command here is refused before anything would move)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from motionctl.stage.daemon import RigDaemon
from motionctl.stage.messages import Command, Keys, Reply, Verb
from motionctl.stage.netfile import load_stage_net
from motionctl.stage.station import Station
from motionctl.tui.controller import Settings
from tests.conftest import MOVES
from tests.stage.netfiles import net_text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _daemon(tmp_path: Path, insecure: bool) -> RigDaemon:
    path = tmp_path / "net.toml"
    path.write_text(net_text((_free_port(), _free_port()), stage="unit", certs=None))
    net = load_stage_net(path)
    return RigDaemon(net, "arm-a", Settings(takes_dir=tmp_path / "takes"), insecure=insecure).start()


@pytest.fixture
def secure_less(tmp_path):
    daemon = _daemon(tmp_path, insecure=False)
    yield daemon
    daemon.close()


@pytest.fixture
def insecure(tmp_path):
    daemon = _daemon(tmp_path, insecure=True)
    yield daemon
    daemon.close()


def test_without_security_nothing_moves_and_stops_still_work(secure_less):
    with Station(secure_less.net).open() as station:
        assert station.join(["arm-a"]) == {"arm-a"}
        go = station.ask("arm-a", Verb.GO, timeout=10)
        assert not go.accepted and "no [security]" in go.reason and "--insecure" in go.reason
        assert station.ask("arm-a", Verb.STOP, timeout=10).accepted
        status = station.ask("arm-a", Verb.STATUS, timeout=10)
        assert status.accepted and status.status["state"] == "disconnected" and status.status["rig"] == "arm-a"


def test_a_station_that_cannot_be_watched_cannot_move_a_rig(insecure):
    with Station(insecure.net).open(token=False) as station:
        station.join(["arm-a"])
        reply = station.ask("arm-a", Verb.GO, timeout=10)
        assert not reply.accepted and "no liveliness token" in reply.reason


def test_a_move_for_another_rig_is_not_loaded(insecure):
    with Station(insecure.net).open() as station:
        station.join(["arm-a"])
        reply = station.ask("arm-a", Verb.LOAD, move=str(MOVES / "crane_reveal.toml"), timeout=30)
        assert not reply.accepted and "moco_crane.toml" in reply.reason
        bad = station.ask("arm-a", Verb.LOAD, move=str(MOVES / "no_such_move.toml"), timeout=30)
        assert not bad.accepted and "not found" in bad.reason
        run = station.ask("arm-a", Verb.RUN, timeout=10)
        assert not run.accepted and "go to the start first" in run.reason
    assert insecure.controller.streamer is None              # nothing was connected


def test_a_malformed_command_gets_an_error_reply_in_words(insecure):
    with Station(insecure.net).open() as station:
        station.join(["arm-a"])
        keys = Keys("unit")
        # A stop acts whatever its payload says, and says what was wrong with it.
        replies = list(station._session.get(keys.command("arm-a", Verb.STOP, "operator-1"), payload=b"junk",
                                            timeout=10))
        assert len(replies) == 1 and replies[0].ok is not None
        stop = Reply.decode(replies[0].ok.payload.to_bytes())
        assert stop.accepted and "not JSON" in stop.reason
        replies = list(station._session.get(keys.command("arm-a", Verb.STATUS, "operator-1"), payload=b"junk",
                                            timeout=10))
        assert replies[0].err is not None and "not JSON" in replies[0].err.payload.to_string()
        newer = Command("operator-1").encode().replace(b'"v":1', b'"v":2')
        replies = list(station._session.get(keys.command("arm-a", Verb.GO, "operator-1"), payload=newer, timeout=10))
        assert "version 2" in replies[0].err.payload.to_string()
