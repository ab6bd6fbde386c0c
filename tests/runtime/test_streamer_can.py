"""The streamer over the virtual CAN bus against simulated CiA 402 drives: a full run and the CAN faults."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from motionctl.hal import open_driver
from motionctl.planner.limits import axis_limits, derivatives
from motionctl.runtime.session import run_take
from motionctl.runtime.streamer import RunState, StreamerOptions
from motionctl.runtime.takes import read_take
from simulator.can_device import SimulatedCanRig
from simulator.faults import FaultInjector
from tests.conftest import real_time
from tests.runtime.conftest import faulted_with, finished

CALM = StreamerOptions(stall_cycles=50, late_budget=0.5, stale_feedback_s=0.3)
_channels = itertools.count()


@pytest.fixture
def can_run(product_plan, tmp_path):
    made = []

    def run(*faults: str, wanted=finished):
        """A take on fresh simulated drives, again while the machine starves it (see ``real_time``)."""
        def attempt(n):
            url = f"can://virtual/streamer-{next(_channels)}"
            injector = FaultInjector(seed=3)
            for spec in faults:
                injector.add(spec)
            rig = SimulatedCanRig(product_plan.rig, url, injector).start()
            for name, value in zip(product_plan.rig.axis_names, product_plan.trajectory.q[0] + 0.01):
                rig.drive(name).axis.position = rig.drive(name).axis.target = float(value)
            driver = open_driver(product_plan.rig, url, rate_hz=product_plan.rate_hz)
            driver.open()
            made.append((rig, driver))
            return run_take(product_plan, driver, takes_dir=tmp_path / str(n), options=CALM)
        return real_time(attempt, wanted)

    yield run
    for rig, driver in made:
        driver.close()
        rig.stop()


def _stop_within_limits(plan, result) -> None:
    """No commanded step while stopping exceeds an axis limit."""
    take = read_take(result.take)
    rows = [r for r in take.rows if r[take.columns.index("state")] in ("stopping", "stopped", "faulted")]
    if len(rows) < 4:
        return
    names = plan.rig.axis_names
    cmd = np.array([[float(r[take.columns.index(f"cmd_{a}")]) for a in names] for r in rows])
    v, a, _ = derivatives(cmd, plan.rate_hz)
    for i, lim in enumerate(axis_limits(plan.rig)[: len(names)]):
        assert np.abs(v[3:, i]).max() <= lim.vmax * 1.001, lim.name


def test_full_dry_run_over_can(product_plan, can_run):
    result = can_run()
    assert result.state is RunState.DONE, result.summary["faults"]
    assert read_take(result.take).complete


def test_emcy_stops_every_axis_with_the_fault_in_plain_words(product_plan, can_run):
    result = can_run("drive:wrist_1@2.0=0x2310", wanted=faulted_with("wrist_1"))
    assert result.state is RunState.FAULTED
    assert any("wrist_1" in f and "current" in f.lower() for f in result.summary["faults"]), result.summary["faults"]
    _stop_within_limits(product_plan, result)


def test_lost_drive_heartbeat_stops_everything(product_plan, can_run):
    result = can_run("heartbeat:elbow@2.0", wanted=faulted_with("elbow"))
    assert result.state is RunState.FAULTED
    assert any("elbow" in f for f in result.summary["faults"]), result.summary["faults"]


def test_bus_off_stops_everything_in_plain_words(product_plan, can_run):
    result = can_run("busoff@2.0", wanted=lambda r: r.state is RunState.FAULTED)
    assert result.state is RunState.FAULTED
    assert any("bus" in f.lower() for f in result.summary["faults"]), result.summary["faults"]


def test_following_error_trip_over_can_is_a_controlled_stop(product_plan, can_run):
    result = can_run("following:track@2.0", wanted=faulted_with("track"))
    assert result.state is RunState.FAULTED
    _stop_within_limits(product_plan, result)
