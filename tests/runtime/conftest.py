"""A simulated serial controller on a real pseudo-terminal, and plans to run on it."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import pytest

from motionctl.hal import open_driver
from motionctl.runtime.states import RunState
from motionctl.planner import plan_scene
from motionctl.spec import load_scene
from simulator.faults import FaultInjector
from simulator.serial_device import SerialDevice
from tests.conftest import MOVES


@pytest.fixture(scope="session")
def product_plan():
    return plan_scene(load_scene(MOVES / "product_shot.toml"), 250)


@pytest.fixture
def serial_rig(product_plan):
    """(device, driver) factory: faults may be given per test."""
    made = []

    def make(*faults: str, from_park: bool = False):
        """Drives near the plan's start (a short go-to-start) unless ``from_park``."""
        injector = FaultInjector(seed=7)
        for spec in faults:
            injector.add(spec)
        near = None if from_park else (product_plan.trajectory.q[0] + 0.01).tolist()
        device = SerialDevice(product_plan.rig, injector, initial=near).start()
        driver = open_driver(product_plan.rig, f"serial://{device.path}?baud=1000000", rate_hz=product_plan.rate_hz)
        driver.open()
        made.append((device, driver))
        return device, driver

    yield make
    for device, driver in made:
        driver.close()
        device.stop()


T = TypeVar("T")


def finished(result) -> bool:
    """A take that ran to its end."""
    return result.state is RunState.DONE


def faulted_with(*words: str) -> Callable[[object], bool]:
    """A take that faulted with a message holding every one of ``words``."""
    def wanted(result) -> bool:
        return result.state is RunState.FAULTED and any(all(w in f for w in words) for f in result.summary["faults"])
    return wanted


def real_time(start: Callable[[int], T], wanted: Callable[[T], bool], attempts: int = 3) -> T:
    """``start(attempt)`` (on a fresh rig each time) again when its run missed what the test wants.

    These runs are real time, and everything in them shares a two-core machine with whatever else runs
    there: the simulated drives (a thread of this process), the driver's reader, the streamer.  Loaded
    with two busy processes, this machine left servo ticks 5-10 ms late, and runs then faulted in ways
    that are right for what happened: a setpoint jump the simulated drive could not follow, a drive
    silent for ten SYNCs, a simulated drive that fell 2.2 degrees behind while its own thread waited for
    the CPU.  Neither side can tell that from a fault of the code, so a missed run is repeated, at most
    ``attempts`` runs in all, each repeat with a warning that names what happened.  A fault of the code
    repeats every time and fails the test.
    """
    for attempt in range(attempts):
        outcome = start(attempt)
        if wanted(outcome):
            return outcome
        warnings.warn(f"real-time run repeated ({attempt + 1} of {attempts} missed): {_what(outcome)}",
                      stacklevel=2)
    return outcome


def _what(outcome) -> str:
    first = outcome[0] if isinstance(outcome, tuple) else outcome
    faults = first.summary.faults if hasattr(first, "clock") else first.summary.get("faults", [])
    return "; ".join(faults) or f"ended {first.state.value}"
