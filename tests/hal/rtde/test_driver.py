"""The Universal Robots RTDE driver: byte-exact set-up against a scripted controller (packages packed here
from UR's RTDE guide), then against the simulated e-Series controller (simulator/rtde/controller.py, written
from the guide, sharing no code with the driver) over TCP on 127.0.0.1, in lock-step time for exact
outcomes: the program is sent, the arm follows, E-stop, the robot's own stops said in words."""

from __future__ import annotations

import math
import socket
import struct
import threading
from dataclasses import replace
from types import MappingProxyType

import numpy as np
import pytest

from motionctl.errors import HardwareError, InputError
from motionctl.hal import DriveStatus, open_driver
from motionctl.hal.rtde.driver import PROGRAM_HEADER, servo_program
from motionctl.spec import load_rig
from motionctl.spec.rig import HardwareBinding
from simulator.faults import FaultInjector
from simulator.rtde.controller import UrController
from tests.conftest import RIGS

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")


def arm_binding(url: str = "rtde://127.0.0.1", rate: int = 500):
    """The UR rig's six joints on one UR controller (the track belongs to another controller)."""
    rig = load_rig(RIGS / "ur10e_track.toml")
    address = {name: i + 1 for i, name in enumerate(JOINTS)}
    return replace(rig, hardware=HardwareBinding(url, rate, MappingProxyType(address), MappingProxyType({})))


class Rig:
    """The simulated controller and the driver, ticked together by hand (what runtime.simtime does)."""

    def __init__(self, faults: str = "", powered: bool = True) -> None:
        rig = arm_binding()
        injector = FaultInjector()
        for spec in filter(None, faults.split(",")):
            injector.add(spec)
        self.robot = UrController(rig, injector, lockstep=True, powered=powered).start()
        ports = self.robot.ports
        self.driver = open_driver(rig, f"rtde://127.0.0.1?rtde_port={ports.rtde}&script_port={ports.secondary}",
                                  rate_hz=500, lockstep=True).open()
        self.tick = 0

    def step(self, targets=None):
        if targets is not None:
            self.driver.write_setpoints(np.asarray(targets), tick=self.tick)
        self.tick += 1
        sent = self.robot.lockstep_tick(self.tick, self.driver.wire_sent)
        assert self.driver.wait_received(sent, 10.0)
        return self.driver.read_state(0.0)

    def close(self):
        self.driver.close()
        self.robot.stop()


@pytest.fixture
def ur():
    rig = Rig()
    yield rig
    rig.close()


def test_setup_bytes_are_the_guides(tmp_path):
    """The driver's first packages, byte for byte, against a scripted controller."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen: list[bytes] = []

    def controller():
        conn, _ = server.accept()
        conn.settimeout(5)

        def read_package():
            head = conn.recv(3, socket.MSG_WAITALL)
            size, kind = struct.unpack(">HB", head)
            body = conn.recv(size - 3, socket.MSG_WAITALL) if size > 3 else b""
            seen.append(head + body)
            return kind, body

        read_package()
        conn.sendall(struct.pack(">HBB", 4, ord("V"), 1))
        read_package()
        conn.sendall(struct.pack(">HBIIII", 19, ord("v"), 5, 15, 0, 0))
        read_package()
        types = b"DOUBLE,VECTOR6D,VECTOR6D,VECTOR6D,INT32,INT32,UINT32,INT32,INT32"
        conn.sendall(struct.pack(">HBB", 4 + len(types), ord("O"), 1) + types)
        read_package()
        types = b"INT32,INT32,DOUBLE,DOUBLE,DOUBLE,DOUBLE,DOUBLE,DOUBLE"
        conn.sendall(struct.pack(">HBB", 4 + len(types), ord("I"), 2) + types)
        read_package()
        conn.sendall(struct.pack(">HBB", 4, ord("S"), 1))
        conn.recv(100)
        conn.close()

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    driver = open_driver(arm_binding(f"rtde://127.0.0.1?rtde_port={server.getsockname()[1]}"), rate_hz=500,
                         lockstep=True)
    driver.open()
    driver.close()
    thread.join(5)
    server.close()
    outputs = (b"timestamp,actual_q,actual_qd,target_q,robot_mode,safety_mode,runtime_state,"
               b"output_int_register_24,output_int_register_25")
    inputs = b"input_int_register_24,input_int_register_25," + b",".join(
        f"input_double_register_{24 + i}".encode() for i in range(6))
    assert seen == [b"\x00\x05V\x00\x02", b"\x00\x03v",
                    struct.pack(">HB", 11 + len(outputs), ord("O")) + struct.pack(">d", 500.0) + outputs,
                    struct.pack(">HB", 3 + len(inputs), ord("I")) + inputs, b"\x00\x03S"]
    assert driver.controller_version == "5.15.0.0"


def test_the_program_is_sent_and_the_arm_follows_the_stream(ur):
    state = ur.step()
    assert state is not None and all(a.status is DriveStatus.READY for a in state.axes)
    here = state.positions.copy()
    ur.driver.enable()
    state = ur.step(here)                       # the controller takes the program in with its next cycle
    assert ur.robot.program_text.splitlines()[0] == PROGRAM_HEADER
    target = here.copy()
    for k in range(400):                       # 0.8 s: the base joint turns at 0.25 rad/s, then holds
        if k < 200:
            target[0] += 0.25 * 0.002
        state = ur.step(target)
    assert all(a.status is DriveStatus.ENABLED for a in state.axes)
    assert state.positions[0] == pytest.approx(target[0], abs=1e-4)
    assert state.positions[1:] == pytest.approx(here[1:], abs=1e-6)


def test_estop_stops_the_arm_within_its_deceleration_and_says_so(ur):
    here = ur.step().positions.copy()
    ur.driver.enable()
    target = here.copy()
    for _ in range(150):
        target[0] += 0.5 * 0.002
        ur.step(target)
    ur.driver.quick_stop()
    speeds = []
    for _ in range(200):
        state = ur.step(target)
        speeds.append(state.axes[0].velocity)
    assert all(a.status is DriveStatus.QUICK_STOP for a in state.axes)
    assert abs(speeds[-1]) < 1e-9
    decel = np.abs(np.diff(speeds)) / 0.002
    assert decel.max() <= ur.driver.rig.axes[1].amax * 1.001


def test_when_the_stream_stops_the_program_stops_the_arm_and_ends_in_words(ur):
    here = ur.step().positions.copy()
    ur.driver.enable()
    for _ in range(20):
        ur.step(here)
    # The servo loop stops writing.  For the lookahead (30 cycles) the driver still answers, as for a host
    # stall it rides through; then the counter stands still, and 10 cycles later the program ends.
    states = [ur.step() for _ in range(50)]
    assert not any(a.status is DriveStatus.FAULT for a in states[35].axes)
    state = states[-1]
    assert all(a.status is DriveStatus.FAULT for a in state.axes)
    assert "registers went stale" in state.axes[0].fault_text


def test_a_stall_shorter_than_the_lookahead_changes_nothing_and_a_longer_one_stops_along_the_path(ur):
    """The controller is answered from the queue: a servo loop that stops writing while the arm moves is
    ridden through for the lookahead (60 ms); past it the arm is brought to rest along its direction
    within its acceleration limit, and the fault says why."""
    here = ur.step().positions.copy()
    ur.driver.enable()
    target = here.copy()
    for k in range(150):                       # 0.3 s at 0.25 rad/s on the base joint, streamed ahead
        target[0] += 0.25 * 0.002
        ur.step(target)
    before = ur.robot.arm.joints[0].q
    for _ in range(20):                        # 40 ms without a write: the queue still has 60 ms
        state = ur.step()
    assert not any(a.status is DriveStatus.FAULT for a in state.axes)
    assert ur.robot.arm.joints[0].q - before == pytest.approx(20 * 0.25 * 0.002, rel=0.05)    # on as planned
    states = [ur.step() for _ in range(200)]
    faulted = next(s for s in states if s.axes[0].status is DriveStatus.FAULT)
    assert "setpoints stopped arriving" in faulted.axes[0].fault_text
    speeds = [abs(s.axes[0].velocity) for s in states]
    assert speeds[-1] < 1e-6                   # at rest
    assert max(abs(a - b) / 0.002 for a, b in zip(speeds, speeds[1:])) <= ur.driver._amax[0] * 1.1


def test_a_protective_stop_is_a_fault_in_plain_words_and_reset_needs_the_pendant():
    ur = Rig(faults="protective@0.1")
    try:
        here = ur.step().positions.copy()
        ur.driver.enable()
        for _ in range(100):
            state = ur.step(here)
        assert state.axes[0].status is DriveStatus.FAULT
        assert state.axes[0].fault_text == "the robot is in protective stop"
        with pytest.raises(HardwareError, match="unlock it on the pendant"):
            ur.driver.fault_reset()
    finally:
        ur.close()


def test_a_powered_off_robot_is_not_enabled_and_the_operator_is_told_why():
    ur = Rig(powered=False)
    try:
        state = ur.step()
        assert state.axes[0].status is DriveStatus.DISABLED and "powered off" in state.axes[0].fault_text
        with pytest.raises(HardwareError, match="power it on and release the brakes on the pendant"):
            ur.driver.enable()
        assert ur.robot.program_text in (None, "")              # nothing was sent
    finally:
        ur.close()


def test_the_program_carries_the_rigs_deceleration_and_the_rate_and_binding_are_checked():
    text = servo_program(4.1888)
    assert text.startswith(PROGRAM_HEADER) and "DECEL = 4.1888" in text and "{decel}" not in text
    with pytest.raises(InputError, match="500 Hz or a multiple of it"):
        open_driver(arm_binding(rate=250))
    assert "DT = 0.002" in text and "{dt}" not in text
    rig = arm_binding()
    bad = replace(rig, hardware=replace(rig.hardware, address=MappingProxyType(
        {**{n: i + 1 for i, n in enumerate(JOINTS)}, "wrist_3": 7})))
    with pytest.raises(InputError, match="addresses 1-6"):
        open_driver(bad)
    assert math.isfinite(rig.axes[1].amax)


def test_a_cb3_controller_runs_at_125_hz_and_plays_every_fourth_tick():
    """A CB3 (software 3.x): RTDE outputs at 125 Hz, servoj over its 8 ms cycle; in a 500 Hz rig the arm
    follows the stream sampled every 4th tick."""
    rig = arm_binding()
    robot = UrController(rig, FaultInjector(), lockstep=True, powered=True, version=(3, 15, 7, 0)).start()
    ports = robot.ports
    driver = open_driver(rig, f"rtde://127.0.0.1?rtde_port={ports.rtde}&script_port={ports.secondary}",
                         rate_hz=500, lockstep=True).open()
    try:
        assert driver.controller_version == "3.15.7.0"
        assert (driver.controller_hz, driver.ticks_per_cycle) == (125, 4)
        tick = 0

        def step(targets=None):
            nonlocal tick
            if targets is not None:
                driver.write_setpoints(np.asarray(targets), tick=tick)
            tick += 1
            if tick % 4 == 0:                     # what runtime.simtime does for a driver of k ticks per cycle
                assert driver.wait_received(robot.lockstep_tick(tick // 4, driver.wire_sent), 10.0)
            return driver.read_state(0.0)

        state = None
        while state is None:
            state = step()
        here = state.positions.copy()
        driver.enable()
        for _ in range(8):
            step(here)
        assert "DT = 0.008" in robot.program_text
        target = here.copy()
        for k in range(800):                       # 1.6 s at 500 Hz: 0.8 s at 0.25 rad/s, then holding
            if k < 400:
                target[0] += 0.25 * 0.002
            state = step(target) or state
        assert all(a.status is DriveStatus.ENABLED for a in state.axes)
        assert state.positions[0] == pytest.approx(target[0], abs=1e-3)
        assert robot.cycles < tick // 4 + 3               # one controller cycle per four ticks
    finally:
        driver.close()
        robot.stop()
