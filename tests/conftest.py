"""Shared fixtures: the shipped rigs, stage and moves, loaded once per session."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from motionctl.spec import load_rig, load_stage

ROOT = Path(__file__).resolve().parent.parent
RIGS = ROOT / "rigs"
MOVES = ROOT / "moves"
LEGAL_MOVES = sorted(MOVES.glob("*.toml"))
ILLEGAL_MOVES = sorted((MOVES / "illegal").glob("*.toml"))
#: The official OpenTrackIO schema and examples, carried with the tests.
OPENTRACKIO = ROOT / "tests" / "vcam" / "opentrackio"


T = TypeVar("T")


def real_time(start: Callable[[int], T], wanted: Callable[[T], bool],
              describe: Callable[[T], str] | None = None, attempts: int = 3) -> T:
    """``start(attempt)`` (on a fresh rig each time) again when its run missed what the test wants.

    These runs are real time, and everything in them shares a two-core machine with whatever else runs
    there: the simulated drives, the driver's reader, the streamer.  The CI machine once left a tick
    17 ms late and the streamer stopped, as it must, on its own timing watchdog ("the host could not
    keep up"); loaded with two busy processes, this machine left ticks 5-10 ms late, and runs faulted in
    ways that are right for what happened: a setpoint jump the simulated drive could not follow, a drive
    silent for ten SYNCs, a simulated drive 2.2 degrees behind while its own thread waited for the CPU.
    Neither side can tell that from a fault of the code, so a missed run is repeated, at most
    ``attempts`` runs in all, each repeat with a warning that says what happened (``describe``, by
    default the run's faults).  A fault of the code repeats every time and fails the test.
    """
    for attempt in range(attempts):
        outcome = start(attempt)
        if wanted(outcome):
            return outcome
        warnings.warn(f"real-time run repeated ({attempt + 1} of {attempts} missed): "
                      f"{(describe or run_faults)(outcome)}", stacklevel=2)
    return outcome


def run_faults(outcome) -> str:
    """The faults of a take's result, or of the streamer a tuple starts with."""
    first = outcome[0] if isinstance(outcome, tuple) else outcome
    faults = first.summary.faults if hasattr(first, "clock") else first.summary.get("faults", [])
    return "; ".join(faults) or f"ended {first.state.value}"


def dry_run(*args: str, attempts: int = 3, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``motionctl run ARGS --sim --json`` in a fresh process, again (:func:`real_time`) when it faulted.

    Bad input, a crash, and a fault on every attempt are returned as they are for the test to judge.
    """
    command = [sys.executable, "-m", "motionctl", "run", *args, "--sim", "--json"]

    def summary(result: subprocess.CompletedProcess[str]) -> dict | None:
        try:
            return json.loads(result.stdout)
        except ValueError:
            return None

    def nothing_to_repeat(result: subprocess.CompletedProcess[str]) -> bool:
        ran = summary(result)
        return ran is None or result.returncode != 1 or ran.get("state") == "done"

    def faults(result: subprocess.CompletedProcess[str]) -> str:
        ran = summary(result) or {}
        return "; ".join(ran.get("faults") or []) or str(ran.get("state"))

    return real_time(lambda _: subprocess.run(command, capture_output=True, text=True, timeout=timeout),
                     nothing_to_repeat, faults, attempts)


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
