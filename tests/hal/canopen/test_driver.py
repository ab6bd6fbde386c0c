"""CanDriver against simulated CiA 402 drives: real python-can ``virtual`` bus, real canopen on both sides.

Golden tests record every frame on the bus with a third python-can Bus on the same channel (a passive
listener, like a bus monitor) and compare the host's frames byte for byte with the CiA 301 / 402
encodings written out by hand below, in the spirit of canopen's own test/test_sdo.py.  Each test uses
its own channel name, so tests never hear each other.  Waits are generous and nothing asserts how long
something took: the suite must pass on a loaded two-core machine.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import can
import numpy as np
import pytest

from motionctl.errors import HardwareError, InputError
from motionctl.hal.canopen.driver import CanDriver, bus_load_report
from motionctl.hal.driver import DriveStatus, RigState
from motionctl.hal.canopen.emcy import emcy_text
from motionctl.hal.registry import open_driver
from motionctl.spec import load_rig
from simulator.canopen.device import SimulatedCanRig
from simulator.faults import FaultInjector
from simulator.canopen.cia402_device import DriveState as DeviceState      # the simulated drive's own reading

RIG_FILE = Path(__file__).resolve().parents[3] / "rigs" / "ur10e_track.toml"
#: Generous link timeouts for every test that is not about them (a loaded CI machine may stall a thread),
#: and a 500 Hz servo rate whatever the rig file says, so that the golden bytes below stay put.
ROBUST = "heartbeat_timeout_ms=5000&drive_timeout_ms=10000&sdo_timeout_s=5&rate_hz=500"


@pytest.fixture(scope="module")
def rig():
    return load_rig(RIG_FILE)


@pytest.fixture
def channel() -> str:
    return f"mc-{uuid.uuid4().hex[:12]}"


class Recorder:
    """A passive node on the bus: every frame anyone sends, in order, as (COB-ID, data hex)."""

    def __init__(self, channel: str) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.frames: list[can.Message] = []

    def drain(self) -> list[can.Message]:
        new = []
        while (msg := self.bus.recv(timeout=0)) is not None:
            new.append(msg)
        self.frames += new
        return new

    def close(self) -> None:
        self.bus.shutdown()


@pytest.fixture
def recorder(channel):
    rec = Recorder(channel)
    yield rec
    rec.close()


@pytest.fixture
def sim(rig, channel):
    with SimulatedCanRig(rig, f"can://virtual/{channel}") as simulated:
        yield simulated


def hexes(frames: list[can.Message], cob_id: int) -> list[str]:
    return [msg.data.hex(" ").upper() for msg in frames
            if msg.arbitration_id == cob_id and not msg.is_error_frame]


def read_until(driver: CanDriver, predicate, timeout: float = 10.0, hold=None) -> RigState:
    """Send holding cycles and read until a state satisfies ``predicate`` (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if hold is not None:
            driver.write_setpoints(hold)
        state = driver.read_state(timeout_s=0.1)
        if state is not None:
            last = state
            if predicate(state):
                return state
    pytest.fail(f"no state matched within {timeout} s; last: {last}")


# ---------------------------------------------------------------------------------------------- golden
#: SDO client -> server (0x600 + 1) and the server's answers (0x580 + 1) while opening node 1, the track
#: (linear, 1 000 000 increments/m) at 500 Hz: expedited uploads 40, downloads 2F/2B/23 (1/2/4 bytes).
GOLDEN_SDO_NODE1 = [
    ("40 00 10 00 00 00 00 00", "43 00 10 00 92 01 02 00"),   # read device type: 0x00020192 (CiA 402 servo)
    ("40 02 65 00 00 00 00 00", "43 02 65 00 80 00 00 00"),   # read supported drive modes: bit 7, CSP
    ("2B 17 10 00 64 00 00 00", "60 17 10 00 00 00 00 00"),   # producer heartbeat 100 ms
    ("23 16 10 01 FA 00 7F 00", "60 16 10 01 00 00 00 00"),   # consumer heartbeat: node 0x7F, 250 ms
    ("23 05 10 00 80 00 00 00", "60 05 10 00 00 00 00 00"),   # COB-ID SYNC 0x80, consumer
    ("23 06 10 00 D0 07 00 00", "60 06 10 00 00 00 00 00"),   # SYNC period 2000 us
    ("23 00 14 01 01 02 00 80", "60 00 14 01 00 00 00 00"),   # RPDO1 COB-ID 0x201, invalid while remapping
    ("2F 00 14 02 01 00 00 00", "60 00 14 02 00 00 00 00"),   # RPDO1 transmission type 1 (synchronous)
    ("2F 00 16 00 00 00 00 00", "60 00 16 00 00 00 00 00"),   # RPDO1 mapping count 0
    ("23 00 16 01 10 00 40 60", "60 00 16 01 00 00 00 00"),   # 0x6040:00, 16 bits (controlword)
    ("23 00 16 02 20 00 7A 60", "60 00 16 02 00 00 00 00"),   # 0x607A:00, 32 bits (target position)
    ("2F 00 16 00 02 00 00 00", "60 00 16 00 00 00 00 00"),   # RPDO1 mapping count 2
    ("23 00 14 01 01 02 00 00", "60 00 14 01 00 00 00 00"),   # RPDO1 valid
    ("23 00 18 01 81 01 00 C0", "60 00 18 01 00 00 00 00"),   # TPDO1 COB-ID 0x181, invalid, no RTR (bit 30)
    ("2F 00 18 02 01 00 00 00", "60 00 18 02 00 00 00 00"),   # TPDO1 on every SYNC
    ("2F 00 1A 00 00 00 00 00", "60 00 1A 00 00 00 00 00"),
    ("23 00 1A 01 10 00 41 60", "60 00 1A 01 00 00 00 00"),   # 0x6041:00, 16 bits (statusword)
    ("23 00 1A 02 20 00 64 60", "60 00 1A 02 00 00 00 00"),   # 0x6064:00, 32 bits (position actual)
    ("2F 00 1A 00 02 00 00 00", "60 00 1A 00 00 00 00 00"),
    ("23 00 18 01 81 01 00 40", "60 00 18 01 00 00 00 00"),   # TPDO1 valid, no RTR
    ("23 01 18 01 81 02 00 C0", "60 01 18 01 00 00 00 00"),   # TPDO2 COB-ID 0x281, invalid, no RTR
    ("2F 01 18 02 0A 00 00 00", "60 01 18 02 00 00 00 00"),   # TPDO2 every 10th SYNC
    ("2F 01 1A 00 00 00 00 00", "60 01 1A 00 00 00 00 00"),
    ("23 01 1A 01 20 00 F4 60", "60 01 1A 01 00 00 00 00"),   # 0x60F4:00, 32 bits (following error)
    ("2F 01 1A 00 01 00 00 00", "60 01 1A 00 00 00 00 00"),
    ("23 01 18 01 81 02 00 40", "60 01 18 01 00 00 00 00"),   # TPDO2 valid, no RTR
    ("23 01 14 01 01 03 00 80", "60 01 14 01 00 00 00 00"),   # RPDO2 off (0x301, bit 31): the drive's default
    ("23 02 14 01 01 04 00 80", "60 02 14 01 00 00 00 00"),   # RPDO3 off (0x401)
    ("23 03 14 01 01 05 00 80", "60 03 14 01 00 00 00 00"),   # RPDO4 off (0x501)
    ("23 02 18 01 81 03 00 C0", "60 02 18 01 00 00 00 00"),   # TPDO3 off (0x381, bits 31 and 30)
    ("23 03 18 01 81 04 00 C0", "60 03 18 01 00 00 00 00"),   # TPDO4 off (0x481)
    ("2F 60 60 00 08 00 00 00", "60 60 60 00 00 00 00 00"),   # mode of operation 8 (CSP)
    ("2F C2 60 01 02 00 00 00", "60 C2 60 01 00 00 00 00"),   # interpolation period 2 x 10^-3 s ...
    ("2F C2 60 02 FD 00 00 00", "60 C2 60 02 00 00 00 00"),   # ... exponent -3
    ("23 65 60 00 88 13 00 00", "60 65 60 00 00 00 00 00"),   # following error window 5000 = 5 mm
    ("2B 66 60 00 0A 00 00 00", "60 66 60 00 00 00 00 00"),   # following error timeout 10 ms
    ("2B 5A 60 00 06 00 00 00", "60 5A 60 00 00 00 00 00"),   # quick stop option 6 (ramp, stay)
    ("2B 07 60 00 03 00 00 00", "60 07 60 00 00 00 00 00"),   # abort connection option 3 (quick stop)
    ("40 61 60 00 00 00 00 00", "4F 61 60 00 08 00 00 00"),   # read mode display: 8
    ("40 64 60 00 00 00 00 00", "43 64 60 00 20 A1 07 00"),   # read position actual: 500000 (0.5 m)
]


def test_open_writes_the_golden_configuration_and_starts_the_nodes(rig, channel, recorder, sim):
    with CanDriver(rig, f"can://virtual/{channel}?rate_hz=500") as driver:
        assert driver.is_open
    frames = recorder.drain()
    requests, answers = hexes(frames, 0x601), hexes(frames, 0x581)
    assert list(zip(requests, answers)) == GOLDEN_SDO_NODE1
    # the rotary shoulder_pan (524288 increments/rev) gets a 2 degree window: 2912.7 -> 2913 = 0x0B61
    assert "23 65 60 00 61 0B 00 00" in hexes(frames, 0x602)
    nmt = hexes(frames, 0x000)
    resets = [f"82 {node:02X}" for node in range(1, 11)]
    starts = [f"01 {node:02X}" for node in range(1, 11)]
    pre_operational = [f"80 {node:02X}" for node in range(1, 11)]     # close()
    assert nmt == resets + starts + pre_operational
    assert hexes(frames, 0x701)[0] == "00"                             # boot-up after the reset
    assert "05" in hexes(frames, 0x77F)                                # the master's own heartbeat


def test_the_servo_rate_comes_from_the_rig(rig):
    plan = CanDriver(rig, "can://virtual/unused").configuration()["track"]
    values = {(w.index, w.subindex): w.value for w in plan}
    rate = rig.hardware.servo_rate_hz
    assert values[(0x1006, 0)] == 1_000_000 // rate
    assert values[(0x60C2, 1)] * 10.0 ** values[(0x60C2, 2)] == pytest.approx(1 / rate)


def test_one_write_is_ten_rpdos_then_one_sync(rig, channel, recorder, sim):
    with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
        driver.enable()
        park = np.concatenate([rig.park, [l.default for l in rig.lens if l.name in rig.hardware.address]])
        read_until(driver, lambda s: s.all_enabled)
        time.sleep(0.05)
        recorder.drain()
        recorder.frames.clear()           # from here on: this one cycle and its answers
        driver.write_setpoints(park)
        deadline = time.monotonic() + 10
        while len(hexes(recorder.frames, 0x18A)) < 1 and time.monotonic() < deadline:
            recorder.drain()
            time.sleep(0.01)
    host = [(m.arbitration_id, m.data.hex(" ").upper()) for m in recorder.frames
            if m.arbitration_id == 0x080 or 0x200 <= m.arbitration_id < 0x280]
    # controlword 0x000F (enable operation), target position i32 little-endian, per node 1..10, then SYNC
    assert host == [
        (0x201, "0F 00 20 A1 07 00"),      # track 0.5 m = 500000
        (0x202, "0F 00 AB AA FE FF"),      # shoulder_pan -60 deg = -87381
        (0x203, "0F 00 00 00 FE FF"),      # shoulder_lift -90 deg = -131072
        (0x204, "0F 00 E4 38 03 00"),      # elbow 145 deg = 211172
        (0x205, "0F 00 1C C7 02 00"),      # wrist_1 125 deg = 182044
        (0x206, "0F 00 55 55 FD FF"),      # wrist_2 -120 deg = -174763
        (0x207, "0F 00 00 00 00 00"),      # wrist_3 0
        (0x208, "0F 00 C9 AF 00 00"),      # focus 3 m -> encoder 0.6867 -> 45001
        (0x209, "0F 00 00 40 00 00"),      # iris f/2.8 -> encoder 0.25 -> 16384
        (0x20A, "0F 00 38 3D 00 00"),      # zoom 35 mm -> 15672
        (0x080, ""),                       # SYNC, no counter
    ]
    # the drive's answer: statusword 0x1237 (operation enabled, voltage, remote, following the target)
    assert hexes(recorder.frames, 0x181)[-1] == "37 12 20 A1 07 00"


# ------------------------------------------------------------------------------------------ end to end
def test_stream_a_ramp_follow_it_then_quick_stop(rig, channel, sim):
    driver = CanDriver(rig, f"can://virtual/{channel}?{ROBUST}")
    with driver:
        driver.enable()
        start = read_until(driver, lambda s: s.all_enabled).positions
        speed = np.array([0.05] + [np.radians(3.0)] * 6 + [0.05, 0.2, 1.0])   # m/s, rad/s, lens units/s
        period = 1.0 / driver.rate_hz          # 500 Hz
        streamed: list[RigState] = []
        t0 = time.monotonic()
        for k in range(1, 201):
            setpoint = start + speed * k * period
            driver.write_setpoints(setpoint)
            state = driver.read_state(timeout_s=0.0)
            if state is not None:
                streamed.append(state)
            time.sleep(max(0.0, t0 + k * period - time.monotonic()))
        # The drives' own following error (TPDO2), sampled on their SYNC clock: small all along the ramp.
        assert streamed and not any(state.faulted for state in streamed)
        assert max(abs(a.following_error) for state in streamed for a in state.axes[:7]) < 0.001
        # Hold the last setpoint: every axis ends where the ramp ended.
        tolerance = np.array([5e-4] + [np.radians(0.05)] * 6 + [0.01, 0.01, 0.05])
        final = read_until(driver, lambda s: bool(np.all(np.abs(s.positions - setpoint) < tolerance)),
                           hold=setpoint)
        assert final.all_enabled
        assert np.all(final.positions - start > 0.9 * speed * 200 * period)
        assert driver.stats.sent >= 200 and driver.stats.received >= 2000

        driver.quick_stop()
        stopped = read_until(driver, lambda s: all(a.status is DriveStatus.QUICK_STOP for a in s.axes),
                             hold=setpoint)
        assert not stopped.faulted
        assert all(d.state is DeviceState.QUICK_STOP_ACTIVE for d in sim.drives)
        # a drive in quick stop is not re-enabled by the cyclic traffic, only by enable()
        read_until(driver, lambda s: all(a.status is DriveStatus.QUICK_STOP for a in s.axes), hold=setpoint)
        driver.enable()
        read_until(driver, lambda s: s.all_enabled, hold=stopped.positions)


def test_a_drive_fault_reads_back_in_plain_words_and_needs_a_reset(rig, channel, sim):
    with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
        driver.enable()
        here = read_until(driver, lambda s: s.all_enabled).positions
        sim.inject("drive:wrist_1=0x2310")
        state = read_until(driver, lambda s: bool(s.faulted), hold=here)
        (axis,) = state.faulted
        assert axis.name == "wrist_1" and axis.fault_code == 0x2310
        assert axis.fault_text == emcy_text(0x2310)
        assert "over-current" in axis.fault_text
        assert "EMCY 0x2310" in " ".join(driver.events)
        with pytest.raises(HardwareError, match="wrist_1 .*in fault.*over-current"):
            driver.enable()
        driver.fault_reset()
        driver.enable()
        state = read_until(driver, lambda s: s.all_enabled, hold=here)
        assert state.axes[4].fault_code == 0


def test_a_warning_emcy_keeps_the_drive_running(rig, channel, recorder, sim):
    """CiA 402: a warning (statusword bit 7) leaves the drive in Operation enabled; only the statusword
    says a drive stopped.  A warning EMCY (0x1042, error register 0x01) from wrist_1 (node 5) must not make
    the master quick-stop that drive: it goes on sending "enable operation" (0F 00) to it."""
    with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
        driver.enable()
        here = read_until(driver, lambda s: s.all_enabled).positions
        recorder.drain()
        recorder.bus.send(can.Message(arbitration_id=0x85, data=bytes([0x42, 0x10, 0x01, 0, 0, 0, 0, 0]),
                                      is_extended_id=False))
        deadline = time.monotonic() + 10
        while "EMCY 0x1042" not in " ".join(driver.events) and time.monotonic() < deadline:
            driver.write_setpoints(here)
            time.sleep(0.002)
        for _ in range(20):
            driver.write_setpoints(here)
            time.sleep(0.002)
        state = read_until(driver, lambda s: True, hold=here)
        after = [m for m in recorder.drain() if m.arbitration_id == 0x205]     # RPDO1 of node 5
        assert after and all(m.data[:2].hex(" ").upper() == "0F 00" for m in after[-10:])
        assert sim.drive("wrist_1").state is DeviceState.OPERATION_ENABLED
        assert state.axes[4].status is DriveStatus.ENABLED and not state.faulted
        assert state.axes[4].fault_code == 0x1042            # said, not acted on


def test_close_brings_the_drives_to_rest_then_disables_them(rig, channel, recorder, sim):
    """close() on a moving rig: quick stop (02 00), the drives ramp to rest, then "disable voltage"
    (00 00) takes each to Switch on disabled (de-energised), and only then NMT pre-operational (80 00)."""
    driver = CanDriver(rig, f"can://virtual/{channel}?{ROBUST}")
    driver.open()
    driver.enable()
    start = read_until(driver, lambda s: s.all_enabled).positions
    speed = np.array([0.05] + [np.radians(3.0)] * 6 + [0.0] * 3)
    for k in range(1, 101):
        driver.write_setpoints(start + speed * k / driver.rate_hz)
        time.sleep(0.002)
    recorder.drain()
    driver.close()
    assert all(d.state is DeviceState.SWITCH_ON_DISABLED for d in sim.drives), [d.state for d in sim.drives]
    frames = recorder.drain()
    words = [m.data[:2].hex(" ").upper() for m in frames if m.arbitration_id == 0x201]    # node 1's RPDO1
    assert "02 00" in words and "00 00" in words[words.index("02 00"):]
    nmt = [i for i, m in enumerate(frames) if m.arbitration_id == 0 and m.data[0] == 0x80]
    last_disable = max(i for i, m in enumerate(frames) if m.arbitration_id == 0x201
                       and m.data[:2] == bytes(2))
    assert nmt and min(nmt) > last_disable


def test_only_the_pdos_motionctl_uses_stay_on(rig, channel, recorder, sim):
    """The drives ship RPDO2-4 and TPDO3-4 valid (the CiA 402 defaults in the EDS).  After open() no TPDO3
    or TPDO4 is on the wire however long the stream runs, and RPDO2-4 are switched off in every drive."""
    with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
        driver.enable()
        here = read_until(driver, lambda s: s.all_enabled).positions
        recorder.drain()
        for _ in range(50):
            driver.write_setpoints(here)
            time.sleep(0.002)
        read_until(driver, lambda s: True, hold=here)
        seen = {m.arbitration_id for m in recorder.drain()}
    nodes = [d.node_id for d in sim.drives]
    assert not seen & {base + n for base in (0x380, 0x480) for n in nodes}
    assert {0x180 + n for n in nodes} <= seen and {0x200 + n for n in nodes} <= seen
    for drive in sim.drives:
        for index in (0x1401, 0x1402, 0x1403, 0x1802, 0x1803):
            assert drive.local.sdo[index][1].raw & 0x80000000, (drive.name, hex(index))


def test_a_drive_that_reboots_is_reported_and_reconfigured_by_a_reset(rig, channel, recorder, sim):
    """Another node resets wrist_1 (NMT reset node, 81 05): it boots (700+5 [00]) back into its defaults,
    pre-operational.  The master says it rebooted (not "answered none of the last 10 SYNCs"), refuses to
    enable it as it is, and a fault reset configures it again and brings it back."""
    with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
        driver.enable()
        here = read_until(driver, lambda s: s.all_enabled).positions
        wrist = sim.drive("wrist_1")
        recorder.bus.send(can.Message(arbitration_id=0x000, data=bytes([0x81, 0x05]), is_extended_id=False))
        state = read_until(driver, lambda s: bool(s.faulted), hold=here)
        (axis,) = state.faulted
        assert axis.name == "wrist_1" and "rebooted" in axis.fault_text
        assert "answered none" not in axis.fault_text
        assert any("wrist_1 (node 5) rebooted" in e for e in driver.events)
        assert wrist.local.sdo[0x1402][1].raw & 0x80000000 == 0       # its defaults: RPDO3 valid again
        with pytest.raises(HardwareError, match="wrist_1 .*rebooted.*reset"):
            driver.enable()
        driver.fault_reset()
        assert wrist.local.sdo[0x1402][1].raw & 0x80000000                # configured again
        assert wrist.local.sdo[0x6060].raw == 8
        driver.enable()
        state = read_until(driver, lambda s: s.all_enabled, hold=here)
        assert not state.faulted


def _injector(*specs: str) -> FaultInjector:
    injector = FaultInjector(seed=7)
    for spec in specs:
        injector.add(spec)
    return injector


def test_a_mode_display_that_lags_the_request_is_waited_for(rig, channel):
    """The drives show the requested mode (0x6061) only 50 ms after 0x6060 was written, as a drive may
    (CiA 402 sets no bound): open() asks again until they do.  One that never switches within 1 s is
    named, with the mode it still shows."""
    with SimulatedCanRig(rig, f"can://virtual/{channel}", _injector("modelag=50")):
        with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
            driver.enable()
            assert read_until(driver, lambda s: s.all_enabled).all_enabled
    other = f"{channel}-b"
    with SimulatedCanRig(rig, f"can://virtual/{other}", _injector("modelag:zoom=5000")):
        with pytest.raises(HardwareError, match=r"zoom \(node 10\) did not switch to cyclic synchronous "
                                                r"position within 1 s \(it still reports mode 0\)"):
            CanDriver(rig, f"can://virtual/{other}?{ROBUST}").open()


def test_a_fault_whose_cause_persists_gets_one_reset_edge(rig, channel, recorder):
    """wrist_1 faults and its cause stays (60 s): CiA 402 resets on the rising edge of bit 7, so the
    master sends one edge (80 00 after 00 00) and holds it, then says the fault persists; it does not
    hammer the drive with an edge every other cycle."""
    with SimulatedCanRig(rig, f"can://virtual/{channel}", _injector("drive:wrist_1@0.5+60=0x2310")) as sim:
        with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
            driver.enable()
            here = read_until(driver, lambda s: True).positions
            read_until(driver, lambda s: bool(s.faulted), hold=here)
            recorder.drain()
            with pytest.raises(HardwareError, match="cause may still be present.*wrist_1 .* stays in fault"):
                driver.fault_reset()
            words = [int.from_bytes(m.data[:2], "little") for m in recorder.drain() if m.arbitration_id == 0x205]
            edges = sum(1 for a, b in zip(words, words[1:]) if b & 0x80 and not a & 0x80)
            assert edges + (1 if words and words[0] & 0x80 else 0) == 1, [hex(w) for w in words[:12]]
            assert sim.drive("wrist_1").state is DeviceState.FAULT
            read_until(driver, lambda s: bool(s.faulted), hold=here)


def test_losing_the_master_heartbeat_quick_stops_the_drives_on_their_own(rig, channel, sim):
    with CanDriver(rig, f"can://virtual/{channel}?heartbeat_timeout_ms=300&drive_timeout_ms=10000&rate_hz=500"
                   ) as driver:
        assert all(d.config.consumers == {0x7F: 0.3} and d.config.abort_option == 3 for d in sim.drives)
        driver.enable()
        here = read_until(driver, lambda s: s.all_enabled).positions
        driver.stop_heartbeat()          # the master hangs: no heartbeat, and no more cycles either
        assert sim.wait_until(lambda: all(d.state is DeviceState.QUICK_STOP_ACTIVE for d in sim.drives), 10)
        deadline = time.monotonic() + 10
        while len(driver.active_emcy) < len(sim.drives) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert {e.code for e in driver.active_emcy.values()} == {0x8130}
        state = read_until(driver, lambda s: all(a.status is DriveStatus.QUICK_STOP for a in s.axes),
                           hold=here)
        assert all(a.fault_code == 0x8130 and "Heartbeat" in a.fault_text for a in state.axes)
        driver.start_heartbeat()         # the master is back: the drives clear the error, stay stopped
        read_until(driver, lambda s: all(a.fault_code == 0 for a in s.axes), hold=here)
        assert all(d.state is DeviceState.QUICK_STOP_ACTIVE for d in sim.drives)


def test_a_jammed_axis_trips_its_following_error_window(rig, channel, sim):
    with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
        driver.enable()
        start = read_until(driver, lambda s: s.all_enabled).positions
        sim.inject("following:track")
        assert sim.wait_until(lambda: sim.drive("track").axis.blocked, 10)
        offset = start + np.array([0.003] + [0.0] * 9)      # 3 mm: inside the 5 mm window
        state = read_until(driver, lambda s: abs(s.axes[0].following_error - 0.003) < 1e-5, hold=offset)
        assert not state.faulted                            # the drive reports it (TPDO2), nothing trips
        setpoint = start
        for k in range(1, 400):          # 0.2 m/s: 5 mm of following error after 25 cycles
            setpoint = start + np.array([0.2 * k * 0.002] + [0.0] * 9)
            driver.write_setpoints(setpoint)
            state = driver.read_state(timeout_s=0.05)
            if state is not None and state.faulted:
                break
        state = read_until(driver, lambda s: bool(s.faulted), hold=setpoint)
        assert [a.name for a in state.faulted] == ["track"]
        assert state.faulted[0].fault_code == 0x8611
        assert "following error" in state.faulted[0].fault_text.lower()


def test_dropped_and_corrupted_feedback_is_counted_not_acted_on(rig, channel, sim):
    with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
        driver.enable()
        here = read_until(driver, lambda s: s.all_enabled).positions
        sim.inject("drop:elbow=1.0")
        sim.inject("corrupt:wrist_3=1.0")
        for _ in range(30):
            driver.write_setpoints(here)
            driver.read_state(timeout_s=0.05)
        assert driver.stats.dropped.get("missing", 0) >= 10
        assert driver.stats.dropped.get("CAN error frame", 0) >= 10
        state = read_until(driver, lambda s: s.axes[3].status is DriveStatus.OFFLINE, hold=here)
        assert [a.status for a in state.axes].count(DriveStatus.ENABLED) == 9
        assert "elbow (node 4) answered none" in state.axes[3].fault_text


def test_bus_off_turns_into_a_hardware_error_in_plain_words(rig, channel, recorder, sim):
    with CanDriver(rig, f"can://virtual/{channel}?{ROBUST}") as driver:
        recorder.bus.send(can.Message(is_error_frame=True, arbitration_id=0x040, is_extended_id=False,
                                      data=bytes(8)))            # CAN_ERR_BUSOFF, as SocketCAN reports it
        with pytest.raises(HardwareError, match="bus-off.*termination"):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                driver.write_setpoints(np.zeros(10))
                driver.read_state(timeout_s=0.05)
        driver.quick_stop()               # the E-stop never raises, even now


def test_a_missing_drive_fails_open_in_plain_words(rig, channel):
    driver = CanDriver(rig, f"can://virtual/{channel}?boot_timeout_s=0.3")
    with pytest.raises(HardwareError, match=r"no boot-up message from track \(node 1\).*powered"):
        driver.open()
    assert not driver.is_open


def test_a_refused_configuration_names_drive_object_and_reason(rig, channel, sim):
    with pytest.raises(HardwareError, match=r"track \(node 1\) refused writing 7 .*0x6007:00.*range"):
        CanDriver(rig, f"can://virtual/{channel}?abort_connection=7&{ROBUST}").open()


def test_a_drive_that_refuses_a_write_is_named_with_its_abort_code(rig, channel):
    """zoom's firmware refuses the following error window (SDO abort 0609 0030, value range exceeded):
    open() fails naming the drive, the object, the value and the abort in words."""
    with SimulatedCanRig(rig, f"can://virtual/{channel}", _injector("refuse:zoom/0x6065=0x06090030")):
        with pytest.raises(HardwareError, match=r"zoom \(node 10\) refused writing \d+ to following error "
                                                r"window.*0x6065:00.*0x06090030"):
            CanDriver(rig, f"can://virtual/{channel}?{ROBUST}").open()


def test_the_shipped_eds_describes_what_a_csp_drive_must_have():
    """CiA 301 requires 0x1014 of a device that sends EMCY; CiA 402 0x6502 says CSP is supported; the CiA
    402 default PDOs are there, valid, as drives ship them (the master switches them off)."""
    import canopen

    from motionctl.hal.canopen.config import DEFAULT_EDS
    od = canopen.import_od(str(DEFAULT_EDS), 3)
    assert od[0x1014].default == 0x83 and od[0x6502].default & 0x80
    for index in (0x6062, 0x6085, 0x60FF):
        assert index in od
    for index, cob in ((0x1401, 0x303), (0x1402, 0x403), (0x1403, 0x503), (0x1802, 0x383), (0x1803, 0x483)):
        assert od[index][1].default == cob                   # bit 31 clear: valid


def test_registry_options_and_bad_urls(rig, channel):
    driver = open_driver(rig, f"can://virtual/{channel}?bitrate=500000", master_id=0x70)
    assert isinstance(driver, CanDriver)
    assert driver.can_options.bitrate == 500_000 and driver.can_options.master_id == 0x70
    assert driver.interface == "virtual" and driver.channel == channel
    with pytest.raises(InputError, match="unknown CAN option"):
        CanDriver(rig, f"can://virtual/{channel}?bitrat=500000")
    with pytest.raises(InputError, match="not a valid int"):
        CanDriver(rig, f"can://virtual/{channel}?bitrate=fast")
    with pytest.raises(HardwareError, match="cannot open CAN interface 'nosuchbus'"):
        CanDriver(rig, f"can://nosuchbus/{channel}").open()


@pytest.mark.parametrize("rate, fits", [(250, True), (500, False), (1000, False)])
def test_bus_load_report_for_the_rig(rig, rate, fits):
    lines = bus_load_report(rig, rate)
    assert lines[0].startswith(f"10 axes at {rate} Hz:")
    assert ("10 RPDO x 6 bytes (115 bits), 10 TPDO x 6 bytes (115 bits), SYNC (55 bits) = 2 355 bits"
            in lines[1])
    assert any("does not fit" in line for line in lines) is not fits
    expected = {250: "5 620 frames/s, 0.64 Mbit/s, 64 %", 500: "11 120 frames/s, 1.26 Mbit/s, 126 %",
                1000: "22 120 frames/s, 2.51 Mbit/s, 251 %"}[rate]
    assert expected in lines[0]
    own = CanDriver(rig, "can://virtual/unused").bus_load()
    assert own[0].startswith(f"10 axes at {rig.hardware.servo_rate_hz} Hz")
