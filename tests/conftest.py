"""Shared fixtures: the shipped rigs, stage and moves, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from motionctl.spec import load_rig, load_stage

ROOT = Path(__file__).resolve().parent.parent
RIGS = ROOT / "rigs"
MOVES = ROOT / "moves"
LEGAL_MOVES = sorted(MOVES.glob("*.toml"))
ILLEGAL_MOVES = sorted((MOVES / "illegal").glob("*.toml"))


@pytest.fixture(scope="session")
def ur_rig():
    return load_rig(RIGS / "ur10e_track.toml")


@pytest.fixture(scope="session")
def crane_rig():
    return load_rig(RIGS / "moco_crane.toml")


@pytest.fixture(scope="session")
def stage():
    return load_stage(RIGS / "stages" / "led_volume.toml")
