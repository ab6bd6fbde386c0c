"""A simulated serial controller on a real pseudo-terminal, and plans to run on it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from motionctl.hal import open_driver
from motionctl.planner import plan_scene
from motionctl.runtime.states import RunState
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


def finished(result) -> bool:
    """A take that ran to its end."""
    return result.state is RunState.DONE


def faulted_with(*words: str) -> Callable[[object], bool]:
    """A take that faulted with a message holding every one of ``words``."""
    def wanted(result) -> bool:
        return result.state is RunState.FAULTED and any(all(w in f for w in words) for f in result.summary["faults"])
    return wanted
