"""The simulated KUKA RSI controller as the robot would be tested: a scripted host on a plain UDP socket.

The host writes hand-made answer text (the layout of ``docs/kuka-rsi-facts.md``) and reads the robot's
datagrams with its own regular expressions; it uses nothing of the controller's XML code.  The controller
runs in lock-step, so every outcome is exact: one ``lockstep_tick`` is one 4 ms IPO cycle.
"""

from __future__ import annotations

import dataclasses
import math
import re
import socket
import time

import pytest

from motionctl.errors import HardwareError
from motionctl.spec import load_rig
from simulator.faults import FaultInjector, FaultKind, parse_fault
from simulator.rsi.controller import STOP_REASON, KukaRsiController
from tests.conftest import RIGS

KUKA_ADDRESS = {"shoulder_pan": 1, "shoulder_lift": 2, "elbow": 3, "wrist_1": 4, "wrist_2": 5, "wrist_3": 6,
                "track": 7}
PERIOD = 0.004
FIRST = (
    '<Rob Type="KUKA"><RIst X="0.0000" Y="0.0000" Z="0.0000" A="0.0000" B="0.0000" C="0.0000"/>'
    '<AIPos A1="-60.0000" A2="-90.0000" A3="145.0000" A4="125.0000" A5="-120.0000" A6="0.0000"/>'
    '<ASPos A1="-60.0000" A2="-90.0000" A3="145.0000" A4="125.0000" A5="-120.0000" A6="0.0000"/>'
    '<EIPos E1="500.0000" E2="0.0000" E3="0.0000" E4="0.0000" E5="0.0000" E6="0.0000"/>'
    '<ESPos E1="500.0000" E2="0.0000" E3="0.0000" E4="0.0000" E5="0.0000" E6="0.0000"/>'
    '<Delay D="0"/><IPOC>1000000</IPOC></Rob>')


@pytest.fixture(scope="module")
def rig():
    """The UR10e track rig wired as a KUKA: the six arm joints on A1-A6, the track on E1 (mm)."""
    base = load_rig(RIGS / "ur10e_track.toml")
    return dataclasses.replace(base, hardware=dataclasses.replace(base.hardware, address=KUKA_ADDRESS))


# -- the scripted host: its own text in, its own regular expressions out ----------------------------------
def value(datagram: str, tag: str, name: str) -> float:
    element = re.search(rf"<{tag}\s([^>]*)/>", datagram).group(1)
    return float(re.search(rf'\b{name}="([^"]*)"', element).group(1))


def ipoc(datagram: str) -> int:
    return int(re.search(r"<IPOC>(\d+)</IPOC>", datagram).group(1))


def delay(datagram: str) -> int:
    return int(re.search(r'<Delay D="(\d+)"/>', datagram).group(1))


def sen(ipoc_value: int, a=(0, 0, 0, 0, 0, 0), e=None, stop=None) -> str:
    ak = " ".join(f'A{i + 1}="{v:.4f}"' for i, v in enumerate(a))
    ek = "" if e is None else "<EK " + " ".join(f'E{i + 1}="{v:.4f}"' for i, v in enumerate(e)) + "/>"
    st = "" if stop is None else f"<Stop>{stop}</Stop>"
    return f'<Sen Type="ImFree"><AK {ak}/>{ek}{st}<IPOC>{ipoc_value}</IPOC></Sen>'


class Host:
    """motionctl's end of the wire, scripted: it answers when told, with the text it is given."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)
        self.sent = 0
        self.received: list[str] = []
        self.ticks = 0
        self.fresh: list[str] = []           # the datagrams of the latest tick
        self.ctl: KukaRsiController | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def send(self, text: str) -> None:
        self.sock.sendto(text.encode("ascii"), self.ctl.address)
        self.sent += 1

    def tick(self, jump: int = 1) -> list[str]:
        """One servo tick (``jump`` > 1: the host skipped ticks); the datagrams that came in it."""
        self.ticks += jump
        total = self.ctl.lockstep_tick(self.ticks, self.sent)
        new = []
        while len(self.received) < total:
            new.append(self.sock.recv(4096).decode("ascii"))
            self.received.append(new[-1])
        self.fresh = new
        return new

    def step(self, a=(0, 0, 0, 0, 0, 0), e=None, stop=None, raw: str | None = None) -> list[str]:
        """Answer the newest datagram (or send ``raw``), then one tick."""
        self.send(raw if raw is not None else sen(ipoc(self.received[-1]), a, e, stop))
        return self.tick()

    @property
    def last(self) -> str:
        return self.received[-1]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def host():
    h = Host()
    yield h
    if h.ctl is not None:
        h.ctl.stop()
    h.close()


def controller(rig, host: Host, *, faults: FaultInjector | None = None, logs: list | None = None, **kw):
    ctl = KukaRsiController(rig, host.address, faults, lockstep=True,
                            log=(logs.append if logs is not None else None), **kw)
    host.ctl = ctl
    return ctl


def moving(host: Host, cycles: int, step_deg: float = 0.4) -> float:
    """Drive A1 at ``step_deg`` per cycle (100 deg/s) for ``cycles`` cycles; the last correction."""
    a1 = 0.0
    for _ in range(cycles):
        a1 += step_deg
        host.step(a=(a1, 0, 0, 0, 0, 0))
    return a1


def resting_ramp(rig, ctl: KukaRsiController, host: Host, cycles: int) -> list[float]:
    """Tick ``cycles`` more times; A1's positions (rad).  No datagram may arrive any more."""
    out = []
    for _ in range(cycles):
        assert host.tick() == []
        out.append(ctl.positions[rig.axis_index("shoulder_pan")])
    return out


def assert_brakes_to_rest(rig, positions: list[float]) -> None:
    amax = rig.axes[rig.axis_index("shoulder_pan")].amax
    speeds = [(b - a) / PERIOD for a, b in zip(positions, positions[1:])]
    for v0, v1 in zip(speeds, speeds[1:]):
        assert abs(v1) <= abs(v0) + 1e-9                          # never speeds up
        assert abs(v1 - v0) <= amax * PERIOD * (1 + 1e-6) + 1e-9  # within the axis' deceleration
    assert speeds[-5:] == [0.0] * 5                              # at rest


# -- the wire ----------------------------------------------------------------------------------------------
def test_first_datagram_golden_text(rig, host):
    controller(rig, host)
    assert host.tick() == [FIRST]


def test_ipoc_advances_by_the_ipo_cycle_and_delay_stays_zero_when_answered(rig, host):
    ctl = controller(rig, host)
    host.tick()
    for _ in range(6):
        assert len(host.step()) == 1
    stamps = [ipoc(d) for d in host.received]
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [4] * 6
    assert [delay(d) for d in host.received] == [0] * 7
    assert ctl.datagrams_sent == 7 and ctl.answers_received == 6 and not ctl.ended


def test_absolute_correction_reached_one_cycle_later_and_held(rig, host):
    ctl = controller(rig, host)
    host.tick()
    host.step(a=(0.4, 0, 0, 0, 0, -0.3), e=(5.0, 0, 0, 0, 0, 0))
    assert value(host.last, "AIPos", "A1") == -60.0      # applied in this cycle, not reached yet
    host.step(a=(0.4, 0, 0, 0, 0, -0.3), e=(5.0, 0, 0, 0, 0, 0))
    assert value(host.last, "AIPos", "A1") == -59.6      # ASPos + AK
    assert value(host.last, "AIPos", "A6") == -0.3
    assert value(host.last, "EIPos", "E1") == 505.0      # ESPos + EK, millimetres
    assert value(host.last, "ASPos", "A1") == -60.0 and value(host.last, "ESPos", "E1") == 500.0
    for _ in range(5):                                   # the same (total) correction: the arm stays
        host.step(a=(0.4, 0, 0, 0, 0, -0.3), e=(5.0, 0, 0, 0, 0, 0))
        assert value(host.last, "AIPos", "A1") == -59.6 and value(host.last, "EIPos", "E1") == 505.0
    si = ctl.positions
    assert si[rig.axis_index("shoulder_pan")] == pytest.approx(math.radians(-59.6))
    assert si[rig.axis_index("wrist_3")] == pytest.approx(math.radians(-0.3))
    assert si[rig.axis_index("track")] == pytest.approx(0.505)


def test_answer_parsed_by_name_in_any_order_without_ek_or_stop(rig, host):
    controller(rig, host)
    host.tick()
    text = (f'<Sen  Type="ImFree" >\r\n  <IPOC> {ipoc(host.last)} </IPOC>\n'
            '  <AK A6="0" A5="0" A4="0.25" A3="0" A2="0" A1="-0.1" />\n</Sen>\n')
    host.step(raw=text)
    host.step(a=(-0.1, 0, 0, 0.25, 0, 0))
    assert value(host.last, "AIPos", "A1") == -60.1 and value(host.last, "AIPos", "A4") == 125.25
    assert delay(host.last) == 0


def test_late_answers_count_in_delay_and_hold_the_correction(rig, host):
    ctl = controller(rig, host)
    host.tick()
    host.step(a=(0.4, 0, 0, 0, 0, 0))
    host.step(a=(0.4, 0, 0, 0, 0, 0))
    stale = ipoc(host.last) - 4
    for expected in (1, 2, 3):                 # answers to an older datagram: late
        host.step(raw=sen(stale, (0.8, 0, 0, 0, 0, 0)))
        assert delay(host.last) == expected
        assert value(host.last, "AIPos", "A1") == -59.6
    host.step(a=(0.8, 0, 0, 0, 0, 0))           # on time again: Delay counts late answers in a row
    assert delay(host.last) == 0
    host.step(a=(0.8, 0, 0, 0, 0, 0))
    assert value(host.last, "AIPos", "A1") == -59.2
    assert ctl.late_total == 3 and not ctl.ended


def test_total_timeout_counting_never_resets(rig, host):
    ctl = controller(rig, host, timeout_counting="total", timeout_packets=5)
    host.tick()
    host.step()
    host.tick()
    host.tick()
    assert delay(host.last) == 2
    host.step()
    assert delay(host.last) == 2
    host.tick()
    host.tick()
    assert delay(host.last) == 4
    assert host.tick() == [] and ctl.ended and "5 late or missing answers in all" in ctl.end_reason


def test_nothing_is_counted_before_the_first_answer(rig, host):
    ctl = controller(rig, host, timeout_packets=3)
    host.tick()
    for _ in range(10):                         # the host is not listening yet: datagrams keep coming
        assert len(host.tick()) == 1
    assert delay(host.last) == 0 and not ctl.ended and not ctl.session_started
    host.step()
    assert ctl.session_started and delay(host.last) == 0


def test_timeout_ends_rsi_and_datagrams_stop(rig, host):
    logs: list[str] = []
    ctl = controller(rig, host, timeout_packets=5, logs=logs)
    host.tick()
    host.step()
    seen = [delay(d) for _ in range(4) for d in host.tick()]
    assert seen == [1, 2, 3, 4]
    assert host.tick() == []                    # the fifth late cycle ends RSI: nothing is sent
    assert ctl.ended and ctl.end_reason.startswith("RSI timeout: 5 IPO cycles in a row")
    sent = ctl.datagrams_sent
    for _ in range(10):
        assert host.tick() == []
    assert ctl.datagrams_sent == sent
    assert any("RSI ended: RSI timeout" in line for line in logs)


def test_stop_ends_rsi_and_the_arm_brakes_within_amax(rig, host):
    ctl = controller(rig, host)
    host.tick()
    a1 = moving(host, 10)
    before = ctl.positions[rig.axis_index("shoulder_pan")]          # moving at 100 deg/s
    assert host.step(a=(a1 + 0.4, 0, 0, 0, 0, 0), stop=1) == []
    assert ctl.ended and ctl.end_reason == STOP_REASON
    ramp = [before, ctl.positions[rig.axis_index("shoulder_pan")]] + resting_ramp(rig, ctl, host, 130)
    assert (ramp[1] - ramp[0]) / PERIOD == pytest.approx(math.radians(100.0 - 240.0 * PERIOD))
    assert_brakes_to_rest(rig, ramp)


def test_stop_zero_is_an_ordinary_answer(rig, host):
    ctl = controller(rig, host)
    host.tick()
    host.step(stop=0)
    assert len(host.step(stop=0)) == 1 and not ctl.ended


def test_too_fast_step_ends_rsi_naming_the_axis(rig, host):
    ctl = controller(rig, host)
    host.tick()
    host.step(a=(0, 0, 0.7, 0, 0, 0))          # 175 deg/s: within elbow's 180 deg/s
    assert not ctl.ended
    assert host.step(a=(0, 0, 5.7, 0, 0, 0)) == []   # 1250 deg/s
    assert ctl.ended and "A3 (elbow)" in ctl.end_reason and "maximum speed" in ctl.end_reason
    resting_ramp(rig, ctl, host, 3)


def test_catching_up_after_late_cycles_is_not_a_speed_violation(rig, host):
    ctl = controller(rig, host)
    host.tick()
    host.tick()                                 # not counted: no answer has arrived yet
    host.step(a=(0.4, 0, 0, 0, 0, 0))
    host.tick()                                 # one late cycle
    host.step(a=(1.2, 0, 0, 0, 0, 0))           # 0.8 deg over two cycles: 100 deg/s
    assert not ctl.ended
    assert host.step(a=(1.8, 0, 0, 0, 0, 0)) == [] and "A1 (shoulder_pan)" in ctl.end_reason


def test_axiscorr_clamps_the_total_correction(rig, host):
    logs: list[str] = []
    controller(rig, host, axiscorr={"A1": (-0.2, 0.2), "E1": (-3.0, 3.0)}, logs=logs)
    host.tick()
    host.step(a=(0.4, 0, 0, 0, 0, 0), e=(5.0, 0, 0, 0, 0, 0))
    host.step(a=(0.4, 0, 0, 0, 0, 0), e=(5.0, 0, 0, 0, 0, 0))
    assert value(host.last, "AIPos", "A1") == -59.8 and value(host.last, "EIPos", "E1") == 503.0
    assert sum("AXISCORR limit" in line for line in logs) == 2


def test_default_axiscorr_keeps_the_command_in_the_axis_range(rig):
    initial = rig.park.copy()
    initial[rig.axis_index("elbow")] = math.radians(179.8)
    h = Host()
    try:
        ctl = controller(rig, h, initial=initial)
        h.tick()
        h.step(a=(0, 0, 0.5, 0, 0, 0))
        h.step(a=(0, 0, 0.5, 0, 0, 0))
        assert value(h.last, "AIPos", "A3") == 180.0 and not ctl.ended
    finally:
        h.ctl.stop()
        h.close()


def test_axiscorrmon_ends_rsi(rig, host):
    ctl = controller(rig, host, axiscorrmon={"A2": 0.3})
    host.tick()
    host.step(a=(0, 0.2, 0, 0, 0, 0))
    assert host.step(a=(0, 0.4, 0, 0, 0, 0)) == []
    assert ctl.ended and "AXISCORRMON" in ctl.end_reason and "A2 (shoulder_lift)" in ctl.end_reason


@pytest.mark.parametrize("text", [
    '<Sen Type="ImFree"><AK A1="0" A2="0" A3="0"',                                   # cut short
    '<Sen Type="ImFree"><AK A1="0" A2="0" A3="0" A4="0" A5="0"/><IPOC>{ipoc}</IPOC></Sen>',   # no A6
    '<Sen Type="ImFree"><AK A1="nan" A2="0" A3="0" A4="0" A5="0" A6="0"/><IPOC>{ipoc}</IPOC></Sen>',
    '<Sen Type="ImFree"><AK A1="x" A2="0" A3="0" A4="0" A5="0" A6="0"/><IPOC>{ipoc}</IPOC></Sen>',
    '<Sen Type="Other"><AK A1="0" A2="0" A3="0" A4="0" A5="0" A6="0"/><IPOC>{ipoc}</IPOC></Sen>',
    '<Sen Type="ImFree"><AK A1="0" A2="0" A3="0" A4="0" A5="0" A6="0"/></Sen>',     # no IPOC
    '<Sen Type="ImFree"><IPOC>{ipoc}</IPOC></Sen>',                                 # no AK
    '<Sen Type="ImFree"><AK A1="0" A2="0" A3="0" A4="0" A5="0" A6="0"/><Stop>2</Stop>'
    '<IPOC>{ipoc}</IPOC></Sen>',
    'garbage',
])
def test_malformed_answer_counts_as_missing_and_is_logged_once(rig, host, text):
    logs: list[str] = []
    ctl = controller(rig, host, logs=logs)
    host.tick()
    host.step()
    host.step(raw=text.replace("{ipoc}", str(ipoc(host.last))))
    assert delay(host.last) == 1
    host.step(raw=text.replace("{ipoc}", str(ipoc(host.last))))
    assert delay(host.last) == 2 and ctl.malformed_answers == 2
    assert sum("could not be used" in line for line in logs) == 1
    host.step()
    assert delay(host.last) == 0


# -- fault injection (times: seconds after the first answer, 4 ms per cycle) --------------------------------
def answering(host: Host, ticks: int, a=(0, 0, 0, 0, 0, 0)) -> list[list[str]]:
    """The host answers every datagram it got in the tick before, on time; what came in each tick."""
    out, pending = [], host.fresh
    for _ in range(ticks):
        for datagram in pending:
            host.send(sen(ipoc(datagram), a))
        pending = host.tick()
        out.append(pending)
    return out


def faulted(*specs: str, seed: int = 7) -> FaultInjector:
    injector = FaultInjector(seed=seed)
    for spec in specs:
        injector.add(spec)
    return injector


def test_new_fault_kinds_parse():
    assert parse_fault("late@2+0.5").kind is FaultKind.LATE
    assert parse_fault("late@2+0.5").duration_s == 0.5
    assert parse_fault("robotstop@3").kind is FaultKind.ROBOTSTOP


def test_late_fault_counts_late_and_holds(rig, host):
    ctl = controller(rig, host, faults=faulted("late@0.018+0.012"))
    host.tick()
    host.step(a=(0.2, 0, 0, 0, 0, 0))           # the first answer: t = 0
    got = answering(host, 10, a=(0.2, 0, 0, 0, 0, 0))
    delays = [delay(d[0]) for d in got]
    assert delays == [0, 0, 0, 0, 1, 2, 3, 0, 0, 0]
    assert all(value(d[0], "AIPos", "A1") == -59.8 for d in got)
    assert ctl.late_total == 3 and not ctl.ended


def test_robotstop_fault_ends_rsi_and_brakes(rig, host):
    logs: list[str] = []
    ctl = controller(rig, host, faults=faulted("robotstop@0.017"), logs=logs)
    host.tick()
    a1 = moving(host, 5)                        # answers at t = 0 .. 0.016
    before = ctl.positions[rig.axis_index("shoulder_pan")]
    assert host.step(a=(a1 + 0.4, 0, 0, 0, 0, 0)) == []   # t = 0.020: the operator let go
    assert ctl.ended and "enabling switch" in ctl.end_reason
    assert_brakes_to_rest(rig, [before, ctl.positions[rig.axis_index("shoulder_pan")]]
                          + resting_ramp(rig, ctl, host, 130))
    assert any("RSI ended: stopped at the robot controller" in line for line in logs)


def test_unplug_fault_silences_the_link_and_times_out(rig, host):
    ctl = controller(rig, host, faults=faulted("unplug@0.011"), timeout_packets=10)
    host.tick()
    host.step()
    got = answering(host, 15)
    assert [len(d) for d in got] == [1, 1] + [0] * 13
    assert ctl.unplugged and ctl.ended and ctl.end_reason.startswith("RSI timeout: 10 IPO cycles")


def test_stall_fault_sends_nothing_and_counts_nothing(rig, host):
    ctl = controller(rig, host, faults=faulted("stall@0.010+0.020"))
    host.tick()
    host.step()
    got = answering(host, 12)
    assert [len(d) for d in got] == [1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    after = [d[0] for d in got if d]
    assert ipoc(after[2]) - ipoc(after[1]) == 24      # the controller's clock went on
    assert all(delay(d) == 0 for d in after) and not ctl.ended


def test_drop_fault_loses_datagrams_and_the_controller_counts_them(rig, host):
    ctl = controller(rig, host, faults=faulted("drop=0.3", seed=3))
    host.tick()
    ticks = [host.step()] + answering(host, 60)
    lost = sum(1 for d in ticks if not d)
    assert 5 <= lost <= 35
    assert ctl.late_total == sum(1 for d in ticks[:-1] if not d)   # each lost datagram: one late cycle
    assert max(delay(d[0]) for d in ticks if d) >= 1 and not ctl.ended


def test_delay_fault_makes_every_answer_late(rig, host):
    ctl = controller(rig, host, faults=faulted("delay=5"), timeout_packets=20)
    host.tick()
    host.step()
    answering(host, 30)
    assert ctl.ended and "RSI timeout" in ctl.end_reason


def test_skipped_ticks_run_the_missing_cycles_without_answers(rig, host):
    ctl = controller(rig, host)
    host.tick()
    host.step()
    host.step()
    host.send(sen(ipoc(host.last)))
    got = host.tick(jump=3)                     # the host missed two ticks
    assert len(got) == 3
    assert [ipoc(d) - ipoc(host.received[-4]) for d in got] == [4, 8, 12]
    assert [delay(d) for d in got] == [1, 2, 3]
    host.step()
    assert delay(host.last) == 0 and ctl.late_total == 3


def test_lockstep_runs_are_byte_identical(rig):
    def run() -> list[str]:
        h = Host()
        try:
            controller(rig, h, faults=faulted("drop=0.2", "late@0.05+0.02", seed=11))
            h.tick()
            a1 = 0.0
            for _ in range(40):
                a1 += 0.3
                h.step(a=(a1, 0, 0, 0, 0, 0), e=(a1, 0, 0, 0, 0, 0)) if h.received else h.tick()
            return list(h.received)
        finally:
            h.ctl.stop()
            h.close()
    assert run() == run()


def test_the_kuka_rig_binds_and_start_is_a_no_op_in_lockstep(host):
    kuka = load_rig(RIGS / "kuka_kr_track.toml")
    ctl = KukaRsiController(kuka, host.address, lockstep=True)
    host.ctl = ctl.start()                      # the launcher starts every simulator; lock-step has no clock
    (first,) = host.tick()
    assert value(first, "AIPos", "A1") == -90.0 and value(first, "AIPos", "A6") == -180.0
    assert value(first, "EIPos", "E1") == 500.0 and value(first, "EIPos", "E2") == 0.0
    assert ctl.positions == pytest.approx(kuka.park)


def test_linear_axis_needs_an_external_axis_address(rig, host):
    bad = dict(KUKA_ADDRESS, track=1, shoulder_pan=7)
    wrong = dataclasses.replace(rig, hardware=dataclasses.replace(rig.hardware, address=bad))
    with pytest.raises(HardwareError, match="E1-E6"):
        KukaRsiController(wrong, host.address, lockstep=True)


# -- wall time: only that datagrams come on the controller's clock -----------------------------------------
@pytest.mark.wall_clock
def test_wall_clock_datagrams_every_ipo_cycle(rig, host):
    ctl = KukaRsiController(rig, host.address)
    host.ctl = ctl
    began = time.monotonic()
    ctl.start()
    got: list[str] = []
    arrivals: list[float] = []
    while len(got) < 40 and time.monotonic() - began < 10.0:
        datagram = host.sock.recv(4096).decode("ascii")
        arrivals.append(time.monotonic())
        got.append(datagram)
        host.send(sen(ipoc(datagram)))
    ctl.stop()
    assert len(got) == 40
    stamps = [ipoc(d) for d in got]
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [4] * 39
    # Absolute deadlines: 40 datagrams cannot come sooner than 39 cycles after the start.
    assert arrivals[-1] - began >= 39 * PERIOD * 0.9
