"""The KUKA RSI driver against a scripted robot controller: a plain UDP socket on 127.0.0.1 writing the
datagrams of docs/kuka-rsi.md as text, and reading the driver's answers as text.

Golden exchanges pin the layout byte for byte; the rest checks what the driver answers when: the absolute
corrections, the queue's mapping of robot cycles to servo ticks, the stop along the last direction when the
queue runs dry, the robot's late-answer count, silence, E-stop and close.
"""

from __future__ import annotations

import math
import socket
from dataclasses import replace
from types import MappingProxyType

import numpy as np
import pytest

from motionctl.errors import HardwareError, InputError
from motionctl.hal import DriveStatus, open_driver
from motionctl.spec import load_rig
from motionctl.spec.rig import HardwareBinding
from tests.conftest import RIGS

#: The UR rig's seven axes bound to RSI as a KUKA arm on a linear unit would be: track = E1, joints = A1-A6.
ADDRESS = {"track": 7, "shoulder_pan": 1, "shoulder_lift": 2, "elbow": 3, "wrist_1": 4, "wrist_2": 5,
           "wrist_3": 6}
START = (10.0, -90.0, 90.0, 0.0, 45.0, 0.0)      # ASPos A1..A6, degrees
E1_START = 1500.0                                 # ESPos E1, mm


def rsi_rig(url: str = "rsi://127.0.0.1:0", rate: int = 250):
    rig = load_rig(RIGS / "ur10e_track.toml")
    return replace(rig, hardware=HardwareBinding(url, rate, MappingProxyType(ADDRESS), MappingProxyType({})))


def rob(ipoc: int, actual=START, e1: float = E1_START, delay: int = 0, start=START, e1_start: float = E1_START) -> bytes:
    """A robot datagram as the controller's Ethernet configuration (docs/kuka-rsi.md) makes it."""
    a = " ".join(f'A{i + 1}="{v:.4f}"' for i, v in enumerate(actual))
    s = " ".join(f'A{i + 1}="{v:.4f}"' for i, v in enumerate(start))
    return (f'<Rob Type="KUKA"><RIst X="0.0" Y="0.0" Z="0.0" A="0.0" B="0.0" C="0.0"/><AIPos {a}/>'
            f'<ASPos {s}/><EIPos E1="{e1:.4f}" E2="0.0000" E3="0.0000" E4="0.0000" E5="0.0000" E6="0.0000"/>'
            f'<ESPos E1="{e1_start:.4f}" E2="0.0000" E3="0.0000" E4="0.0000" E5="0.0000" E6="0.0000"/>'
            f'<Delay D="{delay}"/><IPOC>{ipoc}</IPOC></Rob>').encode()


class Robot:
    """The controller's side: sends a datagram, reads the answer (text)."""

    def __init__(self, driver) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        self.to = driver.listening

    def cycle(self, data: bytes) -> str:
        self.sock.sendto(data, self.to)
        return self.sock.recv(4096).decode()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def link():
    # lockstep: open() does not wait for the robot's first datagram (the scripted robot sends when told).
    driver = open_driver(rsi_rig(), rate_hz=250, lockstep=True).open()
    robot = Robot(driver)
    yield driver, robot
    robot.close()
    driver.close()


def ak(answer: str) -> list[float]:
    import re
    return [float(v) for v in re.findall(r'A\d="(-?[0-9.]+)"', answer)] + \
        [float(v) for v in re.findall(r'E1="(-?[0-9.]+)"', answer)]


def si(degrees=START, e1_mm: float = E1_START) -> np.ndarray:
    """A setpoint vector in the driver's axis order (track first), SI units."""
    return np.array([e1_mm / 1000.0] + [math.radians(d) for d in degrees])


def test_golden_answer_to_the_first_datagram_holds_where_rsi_started(link):
    driver, robot = link
    answer = robot.cycle(rob(4208163380))
    assert answer == ('<Sen Type="ImFree"><AK A1="0.0000" A2="0.0000" A3="0.0000" A4="0.0000" A5="0.0000" '
                      'A6="0.0000"/><EK E1="0.0000" E2="0.0000" E3="0.0000" E4="0.0000" E5="0.0000" '
                      'E6="0.0000"/><Stop>0</Stop><IPOC>4208163380</IPOC></Sen>')
    state = driver.read_state(1.0)
    assert state is not None and state.device_time_us == 4208163380 * 1000
    assert state.positions == pytest.approx(si(), abs=1e-9)
    assert all(a.status is DriveStatus.READY for a in state.axes)


def test_streamed_setpoints_become_absolute_corrections_one_cycle_ahead(link):
    """Host ticks 1..: setpoints go out lookahead ticks ahead; the answer to the robot's cycle r (host tick
    t) carries the setpoint of tick t + 1, as the correction from ASPos/ESPos."""
    driver, robot = link
    lead = driver.lookahead_ticks
    robot.cycle(rob(100))
    driver.read_state(1.0)
    for tick in range(1, lead + 1):                      # hold here, as the runtime streams before enable
        driver.write_setpoints(si(), tick=tick)
    driver.enable(timeout_s=1.0)
    answers = []
    for k in range(6):
        # tick lead+1+k: the host writes the setpoint for tick (1+k)+lead, then the robot's cycle comes.
        target = list(START)
        target[0] += 0.5 * (k + 1)                       # A1 moves 0.5 degree per tick from tick 2 + lead
        driver.write_setpoints(si(target, E1_START + 2.0 * (k + 1)), tick=1 + k + lead)
        answers.append(ak(robot.cycle(rob(104 + 4 * k))))
    # The first cycle after enable is host tick 1: it carries tick 2's setpoint, which is still "hold" until
    # tick 1 + lead ... then the ramp arrives exactly lead ticks after it was written.
    a1 = [a[0] for a in answers]
    e1 = [a[-1] for a in answers]
    expected = [0.5 * max(0, k + 2 - lead) for k in range(6)]
    assert a1 == pytest.approx(expected, abs=1e-4)
    assert e1 == pytest.approx([4 * x for x in expected], abs=1e-4)


def test_a_dry_queue_stops_along_the_last_direction_within_the_acceleration_limit(link):
    driver, robot = link
    robot.cycle(rob(0))
    driver.read_state(1.0)
    lead = driver.lookahead_ticks
    for tick in range(1, lead + 1):
        driver.write_setpoints(si(), tick=tick)
    driver.enable(timeout_s=1.0)
    speed = 0.4                                             # degrees per 4 ms tick on A1: 100 deg/s
    written = lead
    for k in range(20):
        written += 1
        target = list(START)
        target[0] += speed * max(0, written - lead - 1)
        driver.write_setpoints(si(target), tick=written)
        robot.cycle(rob(4 * (k + 1)))
    # The host stops writing: the queue holds lead ticks, then runs dry.
    a1 = [ak(robot.cycle(rob(4 * (k + 1))))[0] for k in range(20, 200)]
    steps = np.diff(a1)
    amax_deg = math.degrees(driver.rig.axes[1].amax) * 0.004 ** 2      # shoulder_pan is A1; per cycle^2
    # The last cycle before answered tick 21 of 20 + lead written: lead - 1 queued ticks are left to play.
    assert steps[:lead - 2] == pytest.approx([speed] * (lead - 2), abs=2e-4)   # the queue, played as sent
    assert np.all(steps >= -2e-4) and np.all(np.diff(steps) <= 4e-4)          # on, slowing, never back
    assert np.all(np.abs(np.diff(steps)) <= amax_deg + 4e-4)                  # never harder than amax
    assert abs(steps[-1]) < 1e-9 and a1[-1] > a1[0] + 1.0                      # went on, then came to rest
    state = driver.read_state(1.0)
    assert all(a.status is DriveStatus.FAULT for a in state.axes)
    assert "setpoints stopped arriving" in state.axes[0].fault_text


def test_the_robots_late_answer_count_is_counted_in_the_link_statistics(link):
    driver, robot = link
    robot.cycle(rob(0, delay=3))
    robot.cycle(rob(4, delay=3))
    robot.cycle(rob(8, delay=5))
    driver.read_state(1.0)
    assert driver.robot_late_answers == 2
    assert driver.stats.dropped["late answers counted by the robot"] == 2


def test_estop_and_close_ask_the_robot_to_end_rsi(link):
    driver, robot = link
    assert "<Stop>0</Stop>" in robot.cycle(rob(0))
    driver.quick_stop()
    answer = robot.cycle(rob(4))
    assert "<Stop>1</Stop>" in answer and ak(answer) == [0.0] * 7      # holds: the robot brakes on its ramp
    state = driver.read_state(1.0)
    assert state.axes[0].status is DriveStatus.QUICK_STOP
    with pytest.raises(HardwareError, match="restart the motionctl program"):
        driver.fault_reset()


def test_close_sends_stop_in_the_next_answer():
    driver = open_driver(rsi_rig(), rate_hz=250, lockstep=True).open()
    robot = Robot(driver)
    try:
        robot.cycle(rob(0))
        import threading
        closer = threading.Thread(target=driver.close)
        closer.start()
        answer = ""
        for ipoc in range(4, 200, 4):
            answer = robot.cycle(rob(ipoc))
            if "<Stop>1</Stop>" in answer:
                break
        closer.join(5)
        assert "<Stop>1</Stop>" in answer
    finally:
        robot.close()
        driver.close()


def test_malformed_and_hostile_datagrams_are_counted_and_not_answered(link):
    driver, robot = link
    robot.sock.settimeout(0.3)
    for bad in (b"<Rob><AIPos A1=", b'<!DOCTYPE x [<!ENTITY a "b">]><Rob>&a;</Rob>', b"<Sen/>",
                rob(0).replace(b"<IPOC>0</IPOC>", b"")):
        robot.sock.sendto(bad, robot.to)
        with pytest.raises(socket.timeout):
            robot.sock.recv(4096)
    assert driver.stats.dropped["malformed datagram"] == 4
    assert len([e for e in driver.events if "malformed" in e]) == 1       # said once, counted every time
    robot.sock.settimeout(5.0)
    assert "<IPOC>8</IPOC>" in robot.cycle(rob(8))                         # and the next good one is answered


def test_silence_after_a_session_is_the_robot_ending_rsi_in_plain_words(link):
    driver, robot = link
    now = [10**9]
    driver.now_ns = lambda: now[0]                  # the run's clock, moved by hand
    robot.cycle(rob(0))
    assert driver.read_state(1.0) is not None
    now[0] += 200_000_000
    with pytest.raises(HardwareError, match="stopped sending RSI datagrams"):
        driver.read_state(0.0)


@pytest.mark.parametrize(("url", "step", "robot_ms"), [("rsi://127.0.0.1:0", 12, 12),
                                                      ("rsi://127.0.0.1:0?ipo_ms=12", 4, 4)])
def test_a_robot_on_another_cycle_than_the_url_says_is_stopped_at_rest_in_words(url, step, robot_ms):
    driver = open_driver(rsi_rig(url), rate_hz=250, lockstep=True).open()
    robot = Robot(driver)
    try:
        answers = [robot.cycle(rob(1000 + step * k)) for k in range(5)]
        # Three steps in a row on the other cycle: the fourth datagram is answered Stop, and every one after.
        assert ["<Stop>1</Stop>" in a for a in answers] == [False, False, False, True, True]
        assert all(ak(a) == [0.0] * 7 for a in answers)                 # it never moved
        state = driver.read_state(1.0)
        assert all(a.status is DriveStatus.FAULT for a in state.axes)
        assert f"interpolation cycle is {robot_ms} ms" in state.axes[0].fault_text
        assert f"set ?ipo_ms={robot_ms}" in state.axes[0].fault_text
    finally:
        robot.close()
        driver.close()


def test_lost_datagrams_are_not_taken_for_another_cycle():
    """A 4 ms robot whose datagrams are lost now and then steps by 8 or 12 once in a while: no stop."""
    for url, steps in (("rsi://127.0.0.1:0", (4, 12, 4, 12, 8, 12, 4)),
                       ("rsi://127.0.0.1:0?ipo_ms=12", (12, 24, 12, 36, 12))):
        driver = open_driver(rsi_rig(url), rate_hz=250, lockstep=True).open()
        robot = Robot(driver)
        try:
            ipoc, answers = 5000, [robot.cycle(rob(5000))]
            for step in steps:
                ipoc += step
                answers.append(robot.cycle(rob(ipoc)))
            assert not any("<Stop>1</Stop>" in a for a in answers)
        finally:
            robot.close()
            driver.close()


def test_open_waits_for_the_robot_and_says_what_to_do_when_it_does_not_come():
    driver = open_driver(rsi_rig("rsi://127.0.0.1:0?wait_s=0.2"), rate_hz=250)
    with pytest.raises(HardwareError, match="start the motionctl program on the pendant"):
        driver.open()
    assert not driver.is_open


def test_a_rig_not_at_a_multiple_of_250_hz_and_a_bad_binding_are_refused_in_words():
    with pytest.raises(InputError, match="run this rig at 250, 500 or 1000 Hz"):
        open_driver(rsi_rig(rate=400))
    assert open_driver(rsi_rig(rate=500)).ticks_per_cycle == 2      # every other tick to the robot
    assert open_driver(rsi_rig("rsi://127.0.0.1:0?ipo_ms=12")).ticks_per_cycle == 3   # #IPO: 12 ms
    with pytest.raises(InputError, match="ipo_ms must be 4"):
        open_driver(rsi_rig("rsi://127.0.0.1:0?ipo_ms=8"))
    rig = rsi_rig()
    bad = replace(rig, hardware=replace(rig.hardware, address=MappingProxyType({**ADDRESS, "track": 13})))
    with pytest.raises(InputError, match="1-6 are A1-A6"):
        open_driver(bad)
    with pytest.raises(InputError, match="port"):
        open_driver(rig, "rsi://127.0.0.1:notaport")
