"""The simulated CiA 402 drive on its own: NMT, SDO-configured behaviour, the state machine, faults.

The master here is deliberately minimal -- canopen's RemoteNode for SDO and hand-written frames for NMT,
SYNC and RPDO -- so that these tests check the drive against CiA 301 / 402 rather than against
motionctl's own driver.  Real parts only: python-can ``virtual`` bus, canopen on both sides; one channel
per test.  Waits are generous; nothing asserts wall-clock durations.
"""

from __future__ import annotations

import struct
import threading
import uuid
from pathlib import Path

import can
import canopen
import pytest
from canopen.sdo import SdoAbortedError, SdoCommunicationError

from motionctl.spec import load_rig
from simulator import launch
from simulator.canopen.device import DEFAULT_EDS, SimulatedCanRig
from simulator.canopen.cia301_device import NmtState
from simulator.canopen.cia402_device import DriveState
from simulator.faults import Fault, FaultInjector, FaultKind

RIG_FILE = Path(__file__).resolve().parents[3] / "rigs" / "ur10e_track.toml"
TRACK_PARK = 500_000          # the track parks at 0.5 m, 1 000 000 increments/m
SW_DISABLED, SW_READY, SW_SWITCHED_ON = 0x0240, 0x0231, 0x0233
SW_ENABLED, SW_QUICK_STOP, SW_FAULT = 0x1237, 0x0217, 0x0218
#: Quick stop active and at rest with option 5-8: CiA 402 statusword bit 10 (target reached) is set.
SW_QUICK_STOP_HALTED = SW_QUICK_STOP | 0x0400


@pytest.fixture(scope="module")
def rig():
    return load_rig(RIG_FILE)


class Master:
    """Just enough of a CANopen master to poke one drive, and a log of every frame it hears."""

    def __init__(self, channel: str, node: int = 1) -> None:
        self.frames: list[can.Message] = []
        self.arrived = threading.Condition()
        master = self

        class Log(can.Listener):
            def on_message_received(self, msg: can.Message) -> None:
                with master.arrived:
                    master.frames.append(msg)
                    master.arrived.notify_all()

        self.network = canopen.Network()
        self.network.NOTIFIER_CYCLE = 0.1
        self.network.listeners.append(Log())
        self.network.connect(interface="virtual", channel=channel)
        self.node = canopen.RemoteNode(node, canopen.import_od(str(DEFAULT_EDS), node))
        self.node.sdo.RESPONSE_TIMEOUT = 5.0
        self.network.add_node(self.node)
        self.id = node

    def close(self) -> None:
        self.network.disconnect()

    def send(self, cob_id: int, data: bytes) -> None:
        self.network.send_message(cob_id, data)

    def nmt(self, command: int) -> None:
        self.send(0x000, bytes([command, self.id]))

    def _var(self, index: int, subindex: int) -> canopen.sdo.SdoVariable:
        entry = self.node.sdo[index]
        return entry if isinstance(entry, canopen.sdo.SdoVariable) else entry[subindex]

    def write(self, index: int, subindex: int, value: int) -> None:
        self._var(index, subindex).raw = value

    def read(self, index: int, subindex: int = 0) -> int:
        return self._var(index, subindex).raw

    def count(self, cob_id: int) -> int:
        with self.arrived:
            return sum(1 for m in self.frames if m.arbitration_id == cob_id and not m.is_error_frame)

    def wait_frame(self, cob_id: int, after: int = 0, timeout: float = 10.0, data: bytes | None = None
                   ) -> can.Message:
        """The first frame on ``cob_id`` (with ``data``, if given) beyond the first ``after`` frames on it."""
        with self.arrived:
            def found() -> list[can.Message]:
                mine = [m for m in self.frames if m.arbitration_id == cob_id and not m.is_error_frame][after:]
                return [m for m in mine if data is None or m.data == data]
            assert self.arrived.wait_for(found, timeout), f"no frame 0x{cob_id:03X} within {timeout} s"
            return found()[0]

    def cycle(self, controlword: int, target: int = TRACK_PARK) -> tuple[int, int]:
        """RPDO1 + SYNC; returns the drive's answer (statusword, position actual) from TPDO1."""
        seen = self.count(0x180 + self.id)
        self.send(0x200 + self.id, struct.pack("<Hi", controlword, target))
        self.send(0x080, b"")
        return struct.unpack("<Hi", self.wait_frame(0x180 + self.id, after=seen).data)

    def enable(self) -> None:
        self.write(0x6060, 0, 8)
        self.nmt(0x01)
        for word in (0x06, 0x07):
            self.cycle(word)
        assert self.cycle(0x0F)[0] == SW_ENABLED


@pytest.fixture
def channel() -> str:
    return f"mc-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def master(channel):
    m = Master(channel)
    yield m
    m.close()


@pytest.fixture
def sim(rig, channel, master):
    with SimulatedCanRig(rig, f"can://virtual/{channel}") as simulated:
        yield simulated


def test_boot_up_nmt_states_and_the_heartbeat_they_show(master, sim):
    assert master.wait_frame(0x701).data == b"\x00" and master.wait_frame(0x70A).data == b"\x00"
    assert master.read(0x1017) == 0                      # no heartbeat until configured
    master.write(0x1017, 0, 20)
    seen = master.count(0x701)
    assert master.wait_frame(0x701, after=seen).data == bytes([NmtState.PRE_OPERATIONAL])
    master.nmt(0x01)                                   # each state shows in the heartbeats that follow
    master.wait_frame(0x701, after=master.count(0x701), data=b"\x05")
    master.nmt(0x02)
    master.wait_frame(0x701, after=master.count(0x701), data=b"\x04")
    assert sim.drive("track").nmt is NmtState.STOPPED
    master.node.sdo.RESPONSE_TIMEOUT = 0.3
    with pytest.raises(SdoCommunicationError):         # a stopped node answers NMT only
        master.read(0x6041)
    master.node.sdo.RESPONSE_TIMEOUT = 5.0
    master.nmt(0x80)
    master.wait_frame(0x701, after=master.count(0x701), data=b"\x7F")
    master.nmt(0x82)                                   # reset communication: boot-up, defaults back
    master.wait_frame(0x701, after=master.count(0x701), data=b"\x00")
    assert master.read(0x1017) == 0
    assert sim.drive("track").nmt is NmtState.PRE_OPERATIONAL
    assert sim.drive("shoulder_pan").nmt is NmtState.PRE_OPERATIONAL   # only node 1 was addressed


def test_sdo_reads_live_values_and_refuses_what_a_drive_would(master, sim):
    assert master.read(0x1000) == 0x00020192
    assert master.read(0x6041) == SW_DISABLED
    assert master.read(0x6064) == TRACK_PARK
    assert master.read(0x6061) == 0
    with pytest.raises(SdoAbortedError) as refused:
        master.write(0x6060, 0, 1)                     # profile position: this drive only does CSP
    assert refused.value.code == 0x06090030
    with pytest.raises(SdoAbortedError) as refused:
        master.write(0x6041, 0, 0)
    assert refused.value.code == 0x06010002            # read-only
    with pytest.raises(SdoAbortedError) as refused:
        master.write(0x1005, 0, 0x40000080)            # a drive does not produce SYNC
    assert refused.value.code == 0x06090030
    with pytest.raises(SdoAbortedError) as refused:
        master.write(0x1600, 1, 0x60400010)            # remapping a valid PDO
    assert refused.value.code == 0x06010000
    master.write(0x1400, 1, 0x80000201)
    master.write(0x1600, 0, 0)
    master.write(0x1600, 1, 0x60650020)                # following error window: not mappable
    with pytest.raises(SdoAbortedError) as refused:
        master.write(0x1600, 0, 1)
    assert refused.value.code == 0x06040041
    for sub, entry in enumerate((0x607A0020, 0x607A0020, 0x60400010), start=1):
        master.write(0x1600, sub, entry)
    with pytest.raises(SdoAbortedError) as refused:
        master.write(0x1600, 0, 3)                     # 80 bits do not fit in 8 bytes
    assert refused.value.code == 0x06040042


def test_rpdos_take_effect_on_sync_and_walk_the_state_machine(master, sim):
    master.write(0x6060, 0, 8)
    master.nmt(0x01)
    assert sim.wait_until(lambda: sim.drive("track").nmt is NmtState.OPERATIONAL, 10)
    master.send(0x201, struct.pack("<Hi", 0x06, TRACK_PARK))
    assert sim.wait_until(lambda: sim.drive("track").rpdos == 1, 10)
    assert master.read(0x6041) == SW_DISABLED          # latched, not applied before the SYNC
    assert master.cycle(0x06) == (SW_READY, TRACK_PARK)
    assert master.cycle(0x07) == (SW_SWITCHED_ON, TRACK_PARK)
    assert master.cycle(0x0F) == (SW_ENABLED, TRACK_PARK)
    assert master.read(0x6061) == 8
    _, position = master.cycle(0x0F, TRACK_PARK + 1000)
    assert TRACK_PARK < position <= TRACK_PARK + 1000  # it follows the target
    master.write(0x605A, 0, 6)                         # quick stop option 6: stop and stay there
    assert master.cycle(0x02)[0] & 0x6F == 0x07          # quick stop active (braking, or at rest)
    assert master.cycle(0x02)[0] == SW_QUICK_STOP_HALTED
    assert master.cycle(0x0F)[0] == SW_ENABLED         # transition 16, allowed by option 6
    master.write(0x605A, 0, 2)                         # the CiA 402 default: disabled once stopped
    for _ in range(10):
        word, _ = master.cycle(0x02)
    assert word == SW_DISABLED                         # transition 12
    assert master.cycle(0x0F)[0] == SW_DISABLED        # enable operation is not a way out of there


def test_fault_reset_needs_a_rising_edge_of_bit_7(master, sim):
    master.enable()
    emcy = master.count(0x081)
    sim.inject("drive:track=0x2310")
    assert master.wait_frame(0x081, after=emcy).data.hex(" ") == "10 23 03 00 00 00 00 00"
    assert master.cycle(0x0F)[0] == SW_FAULT
    assert master.read(0x603F) == 0x2310 and master.read(0x1001) == 0x03
    emcy = master.count(0x081)
    assert master.cycle(0x80)[0] == SW_DISABLED        # 0x0F -> 0x80 is a rising edge
    assert master.wait_frame(0x081, after=emcy).data == bytes(8)     # EMCY error reset
    master.enable()
    assert master.cycle(0x80)[0] == SW_ENABLED         # fault reset means nothing without a fault
    sim.inject("drive:track=0x2310")
    assert sim.wait_until(lambda: sim.drive("track").state is DriveState.FAULT, 10)
    assert master.cycle(0x80)[0] == SW_FAULT           # bit 7 held high: no new edge, no reset
    assert master.cycle(0x00)[0] == SW_FAULT
    assert master.cycle(0x80)[0] == SW_DISABLED


def test_interpolation_period_written_over_sdo_sets_the_step(master, sim):
    master.write(0x60C2, 1, 20)                        # 20 ms per SYNC
    master.enable()
    _, moved = master.cycle(0x0F, TRACK_PARK + 2000)
    assert moved - TRACK_PARK > 1000                   # 20 ms is enough to cover most of 2 mm
    master.write(0x60C2, 1, 1)                         # 1 ms per SYNC: the same jump barely starts
    assert sim.drive("track").config.interpolation_s == pytest.approx(0.001)
    for _ in range(20):
        _, settled = master.cycle(0x0F, TRACK_PARK + 2000)
    _, position = master.cycle(0x0F, TRACK_PARK + 4000)
    assert position - settled < 100


def test_following_error_window_trips_a_jammed_axis(master, sim):
    master.write(0x6065, 0, 100)                       # 0.1 mm
    master.write(0x6066, 0, 10)
    master.enable()
    emcy = master.count(0x081)
    sim.inject("following:track")
    assert sim.wait_until(lambda: sim.drive("track").axis.blocked, 10)
    target = TRACK_PARK
    for _ in range(200):
        target += 500
        word, position = master.cycle(0x0F, target)
        if word == SW_FAULT:
            break
    assert word == SW_FAULT and position == TRACK_PARK
    assert master.wait_frame(0x081, after=emcy).data.hex(" ") == "11 86 21 00 00 00 00 00"
    assert master.read(0x603F) == 0x8611


def _watch_master(master: Master, option: int, quick_stop_option: int = 6) -> None:
    master.write(0x1016, 1, 0x7F << 16 | 200)          # watch node 0x7F, 200 ms
    master.write(0x6007, 0, option)
    master.write(0x605A, 0, quick_stop_option)
    master.enable()


def _master_falls_silent(master: Master, drive) -> int:
    """The master's heartbeat runs until the drive has heard it (its consumer is armed), then stops.
    Returns how many EMCYs the drive had sent before."""
    heartbeat = master.network.send_periodic(0x77F, b"\x05", 0.02)
    assert drive.rig.wait_until(lambda: 0x7F in drive.heard, 10)
    emcy = master.count(0x081)
    heartbeat.stop()
    return emcy


def test_a_silent_master_makes_the_drive_quick_stop_on_its_own(master, sim):
    _watch_master(master, option=3)
    drive = sim.drive("track")
    emcy = _master_falls_silent(master, drive)
    assert sim.wait_until(lambda: drive.state is DriveState.QUICK_STOP_ACTIVE, 10)
    assert master.wait_frame(0x081, after=emcy).data.hex(" ") == "30 81 11 00 00 00 00 00"
    emcy = master.count(0x081)
    heartbeat = master.network.send_periodic(0x77F, b"\x05", 0.02)
    assert master.wait_frame(0x081, after=emcy).data == bytes(8)      # the error went away
    heartbeat.stop()
    assert drive.state is DriveState.QUICK_STOP_ACTIVE                # but the drive stays stopped


def test_abort_option_1_faults_and_no_consumer_means_no_reaction(master, sim, rig, channel):
    _watch_master(master, option=1)
    drive = sim.drive("track")
    _master_falls_silent(master, drive)
    assert sim.wait_until(lambda: drive.state is DriveState.FAULT, 10)
    assert master.read(0x603F) == 0x8130
    other = Master(channel, node=2)                    # node 2 never got a consumer configured
    try:
        other.write(0x6060, 0, 8)
        other.nmt(0x01)
        for word in (0x06, 0x07, 0x0F):
            other.cycle(word, -87381)
        assert not sim.wait_until(lambda: sim.drive("shoulder_pan").state is not DriveState.OPERATION_ENABLED,
                                  1.0)
    finally:
        other.close()


def test_nmt_stopped_is_a_lost_connection_pre_operational_is_not(master, sim):
    """CiA 402 object 6007h: the events are bus-off, heartbeat, life guarding, NMT stopped state entered,
    reset application and reset communication.  Entering pre-operational is not one of them."""
    _watch_master(master, option=3)
    drive = sim.drive("track")
    master.nmt(0x80)
    assert master.read(0x6041) == SW_ENABLED
    assert drive.state is DriveState.OPERATION_ENABLED
    master.nmt(0x02)
    assert sim.wait_until(lambda: drive.state is DriveState.QUICK_STOP_ACTIVE, 10)


def test_heartbeat_fault_silences_one_drive_only(master, sim, channel):
    other = Master(channel, node=2)
    try:
        other.write(0x1017, 0, 20)
    finally:
        other.close()
    master.write(0x1017, 0, 20)
    master.wait_frame(0x701, after=master.count(0x701))
    sim.inject("heartbeat:track")
    start = master.count(0x702)
    master.wait_frame(0x702, after=start + 3)          # the timer has run: the fault is in force
    silent = master.count(0x701)
    master.wait_frame(0x702, after=master.count(0x702) + 5)
    assert master.count(0x701) == silent


def test_tpdo_drop_delay_and_corrupt(master, sim):
    master.send(0x000, b"\x01\x00")                   # start every node
    assert sim.wait_until(lambda: all(d.nmt is NmtState.OPERATIONAL for d in sim.drives), 10)
    sim.inject("delay:track=300")
    first, second = master.count(0x181), master.count(0x182)
    master.send(0x080, b"")
    master.wait_frame(0x182, after=second)
    assert master.count(0x181) == first                # frames arrive in order: track's is still held
    master.wait_frame(0x181, after=first)              # ... and it does come
    with sim.lock:
        sim.faults.faults.clear()
    sim.inject("corrupt:track=1.0")
    heard = len(master.frames)
    answer = master.cycle(0x00)
    assert answer == (SW_DISABLED, TRACK_PARK)         # the retransmission is intact
    until_answer = master.frames[heard:]
    until_answer = until_answer[:next(i for i, m in enumerate(until_answer) if m.arbitration_id == 0x181)]
    assert any(m.is_error_frame for m in until_answer)
    sim.inject("drop:track=1.0")
    first = master.count(0x181)
    for _ in range(5):
        second = master.count(0x182)
        master.send(0x080, b"")
        master.wait_frame(0x182, after=second)
    assert master.count(0x181) == first and sim.tpdos_dropped >= 5


def test_stall_freezes_a_drive_then_it_answers_again(master, sim):
    master.read(0x1000)
    sim.first_setpoint()
    drive = sim.drive("track")
    sim.inject(Fault(FaultKind.STALL, "track", at_s=sim.now(), duration_s=2.0))
    assert sim.wait_until(lambda: drive.stalled, 10)
    master.node.sdo.RESPONSE_TIMEOUT = 0.3
    with pytest.raises(SdoCommunicationError):
        master.read(0x1000)
    master.node.sdo.RESPONSE_TIMEOUT = 5.0
    assert sim.wait_until(lambda: not drive.stalled, 10)
    assert master.read(0x1000) == 0x00020192


def test_bus_off_silences_the_rig_and_the_drives_stop(master, sim):
    _watch_master(master, option=3)
    emcy = master.count(0x081)
    sim.inject(Fault(FaultKind.BUSOFF, at_s=sim.now(), duration_s=1.0))
    assert sim.wait_until(lambda: sim.bus_off, 10)
    assert sim.drive("track").state is DriveState.QUICK_STOP_ACTIVE     # lost its master: 0x6007
    heard = len(master.frames)
    master.send(0x080, b"")                                              # nobody hears these
    master.send(0x601, bytes([0x40, 0x00, 0x10, 0, 0, 0, 0, 0]))
    assert sim.wait_until(lambda: not sim.bus_off, 10)
    back = master.wait_frame(0x081, after=emcy)
    assert back.data.hex(" ") == "40 81 11 00 00 00 00 00"               # recovered from bus off
    silent = master.frames[heard:master.frames.index(back)]
    assert not [m for m in silent if m.arbitration_id in (0x181, 0x581)]


def test_reset_communication_is_a_lost_connection_only_while_operation_is_enabled(master, sim):
    """6007h lists reset communication among its events; like drives as vendors ship them, this one takes
    the reaction only in Operation enabled (a disabled drive that faulted on every reset communication
    would fault on every master's start-up).  Disabled: it boots and stays in switch on disabled.
    Enabled, with the EDS default 1 (fault signal): transition 13, EMCY 0x8100, and it comes back from its
    boot-up still in fault (reset communication leaves the application as it was)."""
    assert master.read(0x6007) == 1 and master.read(0x6041) == SW_DISABLED
    emcy, boot = master.count(0x081), master.count(0x701)
    master.nmt(0x82)
    master.wait_frame(0x701, after=boot)
    assert master.read(0x6041) == SW_DISABLED and master.count(0x081) == emcy
    master.enable()
    master.nmt(0x82)
    assert master.wait_frame(0x081, after=emcy).data.hex(" ") == "00 81 11 00 00 00 00 00"
    assert master.wait_frame(0x701, after=boot + 1).data == b"\x00"
    assert master.read(0x6041) & 0x4F == 0x08 and master.read(0x603F) == 0x8100


def test_a_lost_master_with_option_0_is_a_warning(master, sim):
    """6007h = 0: no action.  The EMCY still goes out and the statusword says warning (bit 7) while the
    drive stays in operation enabled."""
    _watch_master(master, option=0)
    drive = sim.drive("track")
    emcy = _master_falls_silent(master, drive)
    assert master.wait_frame(0x081, after=emcy).data.hex(" ") == "30 81 11 00 00 00 00 00"
    assert master.cycle(0x0F)[0] == SW_ENABLED | 0x80
    assert drive.state is DriveState.OPERATION_ENABLED


def test_quick_stop_option_0_disables_at_once(master, sim):
    master.write(0x605A, 0, 0)
    master.enable()
    assert master.cycle(0x02)[0] == SW_DISABLED        # 11, then 12 at once: no torque, nothing to ramp


def test_rpdo_length_errors(master, sim):
    """CiA 301 7.2.2: a PDO shorter than its mapping is not processed (EMCY 0x8210); a longer one is
    processed from its first bytes (EMCY 0x8220 may be sent, and is, once)."""
    master.write(0x6060, 0, 8)
    master.nmt(0x01)
    master.cycle(0x06)
    emcy = master.count(0x081)
    master.send(0x201, struct.pack("<H", 0x07))        # 2 bytes of 6
    master.send(0x080, b"")
    assert master.wait_frame(0x081, after=emcy).data.hex(" ") == "10 82 11 00 00 00 00 00"
    assert master.read(0x6041) == SW_READY             # not applied
    seen = master.count(0x181)
    master.send(0x201, struct.pack("<HiH", 0x07, TRACK_PARK, 0xFFFF))      # 8 bytes of 6
    master.send(0x080, b"")
    assert master.wait_frame(0x081, after=emcy + 1).data.hex(" ") == "20 82 11 00 00 00 00 00"
    assert struct.unpack("<Hi", master.wait_frame(0x181, after=seen).data) == (SW_SWITCHED_ON, TRACK_PARK)


def test_no_emcy_in_nmt_stopped(master, sim):
    """CiA 301: in stopped only NMT and error control run; a fault there is kept, not announced."""
    master.write(0x6007, 0, 0)
    master.nmt(0x02)
    assert sim.wait_until(lambda: sim.drive("track").nmt is NmtState.STOPPED, 10)
    emcy = master.count(0x081)
    sim.first_setpoint()
    sim.inject("drive:track=0x2310")
    assert sim.wait_until(lambda: sim.drive("track").state is DriveState.FAULT, 10)
    master.nmt(0x80)
    assert master.read(0x603F) == 0x2310 and master.count(0x081) == emcy


def test_an_invalid_emcy_cob_id_silences_emcy(master, sim):
    """1014h bit 31: the EMCY object does not exist; the error still shows in 603Fh and 1001h."""
    with pytest.raises(SdoAbortedError) as refused:
        master.write(0x1014, 0, 0x00000090)            # another CAN-ID while the EMCY is valid
    assert refused.value.code == 0x06090030
    master.write(0x1014, 0, 0x80000081)
    emcy = master.count(0x081)
    sim.first_setpoint()
    sim.inject("drive:track=0x2310")
    assert sim.wait_until(lambda: sim.drive("track").state is DriveState.FAULT, 10)
    assert master.read(0x603F) == 0x2310 and master.read(0x1001) == 0x03 and master.count(0x081) == emcy


def test_reset_node_restores_every_default(master, sim):
    master.write(0x6060, 0, 8)
    master.write(0x6065, 0, 1234)
    master.nmt(0x81)
    assert master.wait_frame(0x701, after=master.count(0x701)).data == b"\x00"
    assert master.read(0x6060) == 0 and master.read(0x6065) == 0xFFFFFFFF


def test_launch_builds_a_running_rig(rig, channel):
    device, url = launch(rig, f"can://virtual/{channel}", FaultInjector())
    try:
        assert isinstance(device, SimulatedCanRig) and url == f"can://virtual/{channel}"
        assert [d.node_id for d in device.drives] == list(range(1, 11))
        assert all(d.nmt is NmtState.PRE_OPERATIONAL for d in device.drives)
    finally:
        device.stop()
