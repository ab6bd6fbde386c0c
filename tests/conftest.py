"""Shared fixtures: the shipped rigs, stage and moves, loaded once per session."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import warnings
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


def dry_run(*args: str, attempts: int = 3, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``motionctl run ARGS --sim --json`` in a fresh process, run again when it did not run to its end.

    A dry run is real time on a shared two-core machine: the CI machine once left a tick 17 ms late and
    the streamer stopped, as it must, on its own timing watchdog ("the host could not keep up"); the
    simulated drives, starved the same way, fault as real drives would.  Neither side can tell that from
    a fault of the code, so a run that faulted is repeated, at most ``attempts`` runs in all, each repeat
    with a warning naming the faults.  Bad input, a crash, and a fault on every attempt are returned as
    they are for the test to judge.
    """
    command = [sys.executable, "-m", "motionctl", "run", *args, "--sim", "--json"]
    for attempt in range(attempts):
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        try:
            summary = json.loads(result.stdout)
        except ValueError:
            return result
        if result.returncode != 1 or summary.get("state") == "done":
            return result
        warnings.warn(f"dry run repeated ({attempt + 1} of {attempts} missed): "
                      f"{'; '.join(summary.get('faults') or []) or summary.get('state')}", stacklevel=2)
    return result


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
