"""Shared fixtures: the shipped rigs, stage and moves, loaded once per session."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from motionctl.spec import load_rig, load_stage

ROOT = Path(__file__).resolve().parent.parent
RIGS = ROOT / "rigs"
MOVES = ROOT / "moves"
LEGAL_MOVES = sorted(MOVES.glob("*.toml"))
ILLEGAL_MOVES = sorted((MOVES / "illegal").glob("*.toml"))
#: The official OpenTrackIO schema and examples, carried with the tests.
OPENTRACKIO = ROOT / "tests" / "vcam" / "opentrackio"


def dry_run(*args: str, clock: str = "sim", timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``motionctl run ARGS --sim --clock sim --json`` in a fresh process: a whole take in simulated time,
    the same on every run and on any machine.  ``clock="wall"``: the operator's real-time rehearsal."""
    command = [sys.executable, "-m", "motionctl", "run", *args, "--sim", "--clock", clock, "--json"]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def udp_receiver(timeout_s: float, buffer_bytes: int | None = None) -> socket.socket:
    """A UDP socket on 127.0.0.1 (a free port) that tests send the vcam streams to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if buffer_bytes is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(timeout_s)
    return sock


@pytest.fixture(scope="session")
def ur_rig():
    return load_rig(RIGS / "ur10e_track.toml")


@pytest.fixture(scope="session")
def crane_rig():
    return load_rig(RIGS / "moco_crane.toml")


@pytest.fixture(scope="session")
def stage():
    return load_stage(RIGS / "stages" / "led_volume.toml")
