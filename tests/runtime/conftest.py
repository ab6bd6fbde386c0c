"""Simulated drives on a real wire, in simulated lock-step time, and plans to run on them.

Every test of the runtime's logic runs in simulated time (``motionctl.runtime.simtime``): the streamer,
the driver and the simulated drives on a real pseudo-terminal (or the virtual CAN bus) advance together,
tick by tick, so a test asserts exact outcomes and never depends on how busy the machine is.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import simulator
from motionctl.hal import open_driver
from motionctl.hal.driver import Driver
from motionctl.planner import plan_scene
from motionctl.runtime.clock import SimClock
from motionctl.runtime.session import TakeResult, run_take
from motionctl.runtime.simtime import lock_step
from motionctl.runtime.states import RunState, StreamerOptions
from motionctl.runtime.streamer import Streamer
from motionctl.runtime.takes import TakeWriter
from motionctl.spec import load_scene
from simulator.faults import FaultInjector
from tests.conftest import MOVES

_channels = itertools.count()


@pytest.fixture(scope="session")
def product_plan():
    return plan_scene(load_scene(MOVES / "product_shot.toml"), 250)


@dataclass
class SimRig:
    """Simulated drives, the driver on the other end of their wire, and the simulated clock of both."""

    clock: SimClock
    device: Any
    driver: Driver
    streamers: list[Streamer] = field(default_factory=list)

    def take(self, plan, takes_dir, **kwargs) -> TakeResult:
        """A whole take (go to start, arm, run) in simulated time."""
        return run_take(plan, self.driver, takes_dir=takes_dir, clock=self.clock, **kwargs)

    def streamer(self, plan, takes_dir=None, options: StreamerOptions = StreamerOptions(), **kwargs) -> Streamer:
        """A streamer on this rig, running, with the drives found and enabled (simulated time stands still
        until a test lets it pass: ``wait_for``, ``run_until``, ``clock.step``)."""
        take = (TakeWriter(takes_dir, {"move": plan.move.name}, self.driver.axis_names, plan.rate_hz)
                if takes_dir is not None else None)
        streamer = Streamer(plan, self.driver, take=take, options=options, clock=self.clock, **kwargs)
        self.streamers.append(streamer)
        streamer.run_in_thread()
        assert streamer.run_until(streamer.ready.is_set, 5.0), streamer.fault_message
        self.driver.enable()
        return streamer

    def started(self, plan, takes_dir=None, options: StreamerOptions = StreamerOptions(), **kwargs) -> Streamer:
        """A streamer on this rig that has gone to the start, armed and started the move (simulated time
        stands still again right after the start)."""
        streamer = self.streamer(plan, takes_dir, options, **kwargs)
        streamer.go_to_start()
        assert streamer.wait_for({RunState.AT_START}, 30) is RunState.AT_START, streamer.fault_message
        streamer.arm()
        assert streamer.wait_for({RunState.ARMED}, 2) is RunState.ARMED, streamer.fault_message
        streamer.start()
        return streamer

    def close(self) -> None:
        for streamer in self.streamers:
            streamer.shutdown()
        self.driver.close()
        self.device.stop()


def make_rig(plan, *faults: str, transport: str = "serial", near_start: bool = True, seed: int = 7,
             **driver_options: object) -> SimRig:
    """Simulated drives for ``plan``'s rig, near the plan's start (a short go-to-start) unless
    ``near_start`` is False (at the park pose); ``faults`` as on the command line; ``driver_options`` for
    the driver (e.g. ``queue="off"``, ``lookahead_ms=40``)."""
    injector = FaultInjector(seed=seed)
    for spec in faults:
        injector.add(spec)
    initial = (plan.trajectory.q[0] + 0.01).tolist() if near_start else None
    wire = "serial://" if transport == "serial" else f"can://virtual/sim-{next(_channels)}"
    clock = SimClock(plan.rate_hz)
    device, url = simulator.launch(plan.rig, wire, injector, lockstep=True, initial=initial)
    driver = open_driver(plan.rig, url, rate_hz=plan.rate_hz, lockstep=True, now_ns=clock.now_ns, **driver_options)
    driver.open()
    lock_step(clock, device, driver)
    return SimRig(clock, device, driver)


@pytest.fixture
def sim_rig(product_plan) -> Callable[..., SimRig]:
    """``sim_rig(*faults, transport="serial"|"can", near_start=True)``: a fresh simulated rig per call."""
    made: list[SimRig] = []

    def make(*faults: str, plan=None, **kwargs) -> SimRig:
        rig = make_rig(plan or product_plan, *faults, **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def finished(result) -> bool:
    """A take that ran to its end."""
    return result.state is RunState.DONE


def faulted_with(*words: str) -> Callable[[object], bool]:
    """A take that faulted with a message holding every one of ``words``."""
    def wanted(result) -> bool:
        return result.state is RunState.FAULTED and any(all(w in f for w in words) for f in result.summary["faults"])
    return wanted
