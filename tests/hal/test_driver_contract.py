"""One contract, every driver: the same behaviour over serial (a pty), CAN (the virtual bus) and a rig on
two controllers at once (the track on one CAN bus, the rest on another: the composite driver).  The robot-clocked backends
(KUKA RSI, UR RTDE) need a setpoint every cycle of the robot's clock, which this contract's step-by-step
writes do not give: their own tests cover the same ground (tests/hal/rsi/test_driver.py, test_rtde_driver.py).

Each backend is run against its simulated device on a real wire; nothing here mocks a wire.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from types import MappingProxyType
from urllib.parse import urlencode

import numpy as np
import pytest

from motionctl.errors import HardwareError
from motionctl.hal import DriveStatus, open_driver
from motionctl.spec import load_rig
from motionctl.spec.rig import HardwareBinding
from simulator.canopen.device import SimulatedCanRig
from simulator.serial.device import SerialDevice
from tests.conftest import RIGS

_channels = itertools.count()


def _on_two_controllers(rig):
    """The UR rig with its track on one CAN bus and everything else on another (two controllers; the
    serial link's own 40 ms setpoint watchdog does not suit this contract's step-by-step writes once a
    cycle waits for two controllers, so both are CAN here; serial in a composite: tests/cli/test_run_groups)."""
    hw = rig.hardware
    rest_axes = [n for n in hw.address if n != "track"]
    track = HardwareBinding("can://virtual/x", hw.servo_rate_hz, MappingProxyType({"track": hw.address["track"]}),
                            MappingProxyType({"track": hw.counts["track"]}), name="track")
    rest = HardwareBinding("can://virtual/y", hw.servo_rate_hz,
                           MappingProxyType({n: hw.address[n] for n in rest_axes}),
                           MappingProxyType({n: hw.counts[n] for n in rest_axes}), name="rest")
    return replace(rig, hardware=HardwareBinding("group://track,rest", hw.servo_rate_hz, hw.address, hw.counts,
                                                  None, (track, rest)))


class _Both:
    def __init__(self, *devices):
        self.devices = devices

    def stop(self):
        for device in self.devices:
            device.stop()


@pytest.fixture(params=["serial", "can", "composite"])
def link(request):
    rig = load_rig(RIGS / "ur10e_track.toml")
    if request.param == "composite":
        rig = _on_two_controllers(rig)
        track, rest = rig.hardware.groups
        urls = {"track": f"can://virtual/contract-{next(_channels)}", "rest": f"can://virtual/contract-{next(_channels)}"}
        device = _Both(SimulatedCanRig(replace(rig, hardware=track), urls["track"]).start(),
                       SimulatedCanRig(replace(rig, hardware=rest), urls["rest"]).start())
        url = "group://track,rest?" + urlencode(urls)
    elif request.param == "serial":
        device = SerialDevice(rig).start()
        # The contract writes a cycle when a test step wants one, not every servo period: a setpoint queue
        # (serial 1.1) would run dry between them and stop the axes, as it must.  Queued streaming is tested
        # end to end in tests/runtime/test_queue.py.
        url = f"serial://{device.path}?baud=1000000&queue=off"
    else:
        url = f"can://virtual/contract-{next(_channels)}"
        device = SimulatedCanRig(rig, url).start()
    driver = open_driver(rig, url, rate_hz=250)
    yield rig, driver
    driver.close()
    device.stop()


def _cycle(driver, values, timeout=0.5):
    """Write one cycle and wait for an answer to it (or a later one)."""
    seq = driver.write_setpoints(values)
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = driver.read_state(0.02) or state
        if state is not None and (state.sequence < 0 or ((state.sequence - seq) & 0xFFFF) < 0x8000):
            return state
    return state


def test_open_close_are_idempotent_and_a_context_manager(link):
    rig, driver = link
    with driver as same:
        assert same is driver and driver.is_open
        driver.open()
        assert driver.is_open
    assert not driver.is_open
    driver.close()
    with pytest.raises(HardwareError):
        driver.write_setpoints(np.zeros(len(driver.axis_names)))


def test_probe_reads_where_the_drives_are_without_moving_them(link):
    rig, driver = link
    with driver:
        state = driver.probe()
        assert [a.name for a in state.axes] == list(driver.axis_names)
        np.testing.assert_allclose(state.positions[: len(rig.axes)], rig.park, atol=1e-5)
        assert all(a.status is not DriveStatus.ENABLED for a in state.axes)


def test_enable_follow_quick_stop_and_fault_reset(link):
    rig, driver = link
    with driver:
        here = driver.probe().positions
        driver.enable()
        target = here.copy()
        for _ in range(150):                      # 0.6 s of a slow track ramp at 250 Hz
            target[0] += 0.0004
            state = _cycle(driver, target)
            time.sleep(0.004)
        for _ in range(30):
            state = _cycle(driver, target)
        assert state is not None
        assert abs(state.positions[0] - target[0]) < 0.002
        assert all(a.status is DriveStatus.ENABLED for a in state.axes), \
            [(a.name, a.status.value, a.fault_text) for a in state.axes if a.status is not DriveStatus.ENABLED]
        driver.quick_stop()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            state = _cycle(driver, state.positions) or state
            if all(a.status is DriveStatus.QUICK_STOP for a in state.axes[: len(rig.axes)]):
                break
        assert all(a.status is DriveStatus.QUICK_STOP for a in state.axes[: len(rig.axes)]), \
            [(a.name, a.status.value, a.fault_text) for a in state.axes if a.status is not DriveStatus.QUICK_STOP]
        driver.fault_reset()
        driver.enable()
        state = _cycle(driver, state.positions)
        assert state is not None and all(a.status is DriveStatus.ENABLED for a in state.axes), \
            [(a.name, a.status.value, a.fault_text) for a in state.axes if a.status is not DriveStatus.ENABLED]


def test_setpoint_count_is_checked(link):
    rig, driver = link
    with driver:
        with pytest.raises(HardwareError):
            driver.write_setpoints(np.zeros(3))
