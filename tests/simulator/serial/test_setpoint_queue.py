"""Serial protocol 1.1 on the simulated controller: the setpoint queue (docs/serial-protocol.md §10).

A scripted host speaks to the device over a real pseudo-terminal, with the simulator's own codec and raw
bytes from the page.  The device runs in lock-step time for exact outcomes: the host writes, then finishes
the device's tick with ``device.lockstep_tick(k, bytes_written)`` and reads back everything the device
wrote.  What the device reads in ``lockstep_tick(k)`` arrived *during tick k − 1* (between ticks k − 1 and
k, where 1.0 latches it at k), so the first queued setpoint plays at k − 1 + L.  One test runs the device
on its own wall clock.

Asserted: the STREAM handshake and its refusals (§10.1–§10.3); a queued stream played on the right ticks
with one FEEDBACK per played tick carrying its seq and the tick's time (§10.4, the example of §10.7);
replacing a queued tick; late, early and missing ticks; the step check at play time; QUICK_STOP emptying
the queue at once; a host stall of half the lookahead that changes nothing, and one of twice the lookahead
that ends in the device's own stop along the queued path (§10.5); a 1.0 host getting a 1.0 session.
"""

from __future__ import annotations

import math
import os
import random
import select
import time
import tty

import pytest

from motionctl.spec import load_rig
from simulator.serial import wire as sw
from simulator.serial.device import SerialDevice
from simulator.serial.setpoint_queue import CAPACITY_TICKS, brake_horizon
from tests.conftest import RIGS

RATE = 250                       # Hz: 4 ms ticks, as §10.7
PERIOD_US = 1_000_000 // RATE
H0 = 1000                        # the host_tick of the first setpoint, as §10.7
ALL = 0xFFFF_FFFF


def hexb(text: str) -> bytes:
    return bytes.fromhex(" ".join(text.split()))


class Host:
    """The host end of the pty, in lock-step with the device."""

    def __init__(self, device: SerialDevice) -> None:
        self.device = device
        self.fd = os.open(device.path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.decoder = sw.FrameDecoder()
        self.written = self.received = 0
        self.raw = bytearray()                # every byte the device wrote
        self.tick = 0
        self.seq = 0                          # setpoint stream
        self.command_seq = 0
        self.log: list[tuple[int, sw.Message]] = []     # (the tick that answered it, message)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.written += n

    def send(self, *messages: sw.Message) -> None:
        self.write(b"".join(sw.encode(m) for m in messages))

    def step(self, to: int | None = None) -> list[sw.Message]:
        """Finish device tick ``to`` (default: the next one) and read what it wrote."""
        self.tick = self.tick + 1 if to is None else to
        sent = self.device.lockstep_tick(self.tick, self.written)
        out: list[sw.Message] = []
        while self.received < sent:
            ready, _, _ = select.select([self.fd], [], [], 5.0)
            assert ready, "the device said it wrote more than arrived"
            data = os.read(self.fd, 65536)
            self.received += len(data)
            self.raw += data
            out += self.decoder.feed(data)
        self.log += [(self.tick, m) for m in out]
        return out

    def exchange(self, message: sw.Message) -> list[sw.Message]:
        self.send(message)
        return self.step()

    def command(self, code: sw.CommandCode, mask: int = ALL) -> sw.CommandAck:
        self.command_seq += 1
        command = sw.Command(seq=self.command_seq, command=code, axis_mask=mask)
        (ack,) = of(self.exchange(command), sw.CommandAck)
        return ack

    def setpoint(self, host_tick: int, targets: tuple[int, ...]) -> sw.Setpoint:
        self.seq += 1
        return sw.Setpoint(seq=self.seq, host_tick=host_tick, targets=targets)

    def close(self) -> None:
        os.close(self.fd)


def of(messages, kind: type) -> list:
    return [m for m in messages if isinstance(m, kind)]


@pytest.fixture
def open_host():
    rig = load_rig(RIGS / "ur10e_track.toml")
    made: list[Host] = []

    def make(*, thread: bool = False, lockstep: bool = True) -> Host:
        device = SerialDevice(rig, lockstep=lockstep)
        if thread:
            device.start()
        made.append(Host(device))
        return made[-1]

    yield make
    for host in made:
        host.close()
        host.device.stop()


def hello(host: Host, minor: int = 1, watchdog_ms: int = 200) -> sw.HelloAck:
    (ack,) = of(host.exchange(sw.Hello(seq=1, servo_rate_hz=RATE, axis_count=host.device.count,
                                       watchdog_ms=watchdog_ms, version_minor=minor)), sw.HelloAck)
    return ack


def stream(host: Host, lookahead: int, mode: int = 1, seq: int = 3) -> sw.StreamAck:
    (ack,) = of(host.exchange(sw.Stream(seq=seq, lookahead_ticks=lookahead, mode=mode)), sw.StreamAck)
    return ack


def queued_session(host: Host, lookahead: int) -> tuple[int, ...]:
    """HELLO (minor 1), STREAM queued, ENABLE; the positions the axes hold, in counts."""
    assert hello(host).result is sw.Result.OK
    assert stream(host, lookahead).result is sw.Result.OK
    assert host.command(sw.CommandCode.ENABLE).result is sw.Result.OK
    return tuple(a.position_counts for a in host.device.axes)


def path(here: tuple[int, ...], n: int) -> tuple[int, ...]:
    """The n-th sample of a move: the track speeds up at 1.56 m/s² (25 counts per tick²) for 40 ticks, then
    cruises at 0.25 m/s (1000 counts per tick); the focus ring drifts a little; the other axes hold."""
    track = 25 * n * n // 2 if n <= 40 else 20_000 + 1000 * (n - 40)
    targets = list(here)
    targets[0] += track
    targets[7] += round(200 * math.sin(n / 15))
    return tuple(targets)


def feedback_ticks(host: Host) -> list[tuple[int, int]]:
    """(seq, device tick) of every FEEDBACK read so far: its device_time_us says the tick it played in."""
    out = []
    for _, m in host.log:
        if isinstance(m, sw.Feedback):
            assert m.device_time_us % PERIOD_US == 0
            out.append((m.seq, m.device_time_us // PERIOD_US))
    return out


# ---------------------------------------------------------------------------------------------- §10.1–§10.3
def test_stream_handshake_and_refusals(open_host):
    host = open_host()
    ack = stream(host, 15, seq=9)
    assert (ack.result, ack.capacity_ticks) == (sw.Result.REJECTED_STATE, CAPACITY_TICKS)   # no session
    ack = hello(host)
    assert ack.result is sw.Result.OK and (ack.version_major, ack.version_minor) == (1, 1)  # the device's
    assert ack.capabilities & sw.Capability.SETPOINT_QUEUE
    assert host.device.session_minor == 1
    for seq, lookahead, mode in [(10, 0, 1), (11, 1025, 1), (12, CAPACITY_TICKS + 1, 1), (13, 15, 2)]:
        ack = stream(host, lookahead, mode, seq)
        assert (ack.seq, ack.result, ack.capacity_ticks) == (seq, sw.Result.BAD_PARAMETER, CAPACITY_TICKS)
    assert not host.device.streaming.queued
    assert stream(host, CAPACITY_TICKS, seq=14).result is sw.Result.OK           # the capacity is allowed
    assert stream(host, 0, mode=0, seq=15).result is sw.Result.OK                          # back to latched
    # §10.7, byte for byte: STREAM seq 3, lookahead 15, queued → STREAM_ACK seq 3, OK, capacity 256.
    start = len(host.raw)
    host.write(hexb("03 12 03 02 0F 04 01 4D 16 00"))
    host.step()
    assert hexb("03 13 03 01 01 04 01 24 87 00") in host.raw[start:]
    assert host.device.streaming.queued and host.device.streaming.queue.lookahead == 15
    # A retransmission (same seq) is answered again without acting twice: the queued setpoint stays queued.
    here = tuple(a.position_counts for a in host.device.axes)
    host.send(host.setpoint(H0, here))
    host.step()
    anchor = host.device.streaming.queue.anchor
    start = len(host.raw)
    host.write(hexb("03 12 03 02 0F 04 01 4D 16 00"))
    host.step()
    assert hexb("03 13 03 01 01 04 01 24 87 00") in host.raw[start:]
    assert host.device.streaming.queue.anchor == anchor and len(host.device.streaming.queue.entries) == 1
    assert host.command(sw.CommandCode.ENABLE).result is sw.Result.OK
    ack = stream(host, 15, seq=4)
    assert ack.result is sw.Result.REJECTED_STATE                                # an axis is enabled


def test_a_1_0_host_gets_a_1_0_session(open_host):
    host = open_host()
    ack = hello(host, minor=0)
    assert ack.result is sw.Result.OK and (ack.version_major, ack.version_minor) == (1, 1)
    assert ack.capabilities & sw.Capability.SETPOINT_QUEUE                  # the device's, whatever the host
    assert host.device.session_minor == 0                                   # min(0, 1)
    assert stream(host, 15).result is sw.Result.REJECTED_STATE
    assert not host.device.streaming.queued
    assert host.command(sw.CommandCode.ENABLE).result is sw.Result.OK
    here = tuple(a.position_counts for a in host.device.axes)
    for n in range(5):                                                      # 1.0: latched at the next tick
        host.send(host.setpoint(H0 + n, path(here, n)))
        (fb,) = of(host.step(), sw.Feedback)
        assert (fb.seq, fb.device_time_us) == (host.seq, host.tick * PERIOD_US)
    assert not host.device.streaming.played


# ---------------------------------------------------------------------------------------------- §10.4
def test_a_queued_stream_plays_on_the_right_ticks(open_host):
    """§10.7 steps 1–4: HELLO, STREAM seq 3 with lookahead 15, ENABLE; SETPOINT host_tick 1000 arrives during
    device tick 40 and plays at 55, host_tick 1001 at 56, and so on, one FEEDBACK per tick from 55 on."""
    L = 15
    host = open_host()
    assert hello(host).result is sw.Result.OK
    assert stream(host, L).result is sw.Result.OK
    host.step(39)
    assert host.command(sw.CommandCode.ENABLE).result is sw.Result.OK      # tick 40: the axes hold
    here = tuple(a.position_counts for a in host.device.axes)
    sent: dict[int, sw.Setpoint] = {}
    for n in range(60):
        sent[H0 + n] = host.setpoint(H0 + n, path(here, n))
        host.send(sent[H0 + n])
        replies = host.step()                      # n = 0: read in tick 41, so it arrived during tick 40
        if host.tick < 55:
            assert not of(replies, sw.Feedback)
            assert all(abs(a.target * a.counts_per_unit - h) < 1 for a, h in zip(host.device.axes, here))
        else:
            (fb,) = of(replies, sw.Feedback)                                # one FEEDBACK per played tick
            assert fb.seq == sent[H0 + host.tick - 55].seq
            assert fb.device_time_us == host.tick * PERIOD_US
            assert fb.state is sw.NodeState.ENABLED
    played = dict(host.device.streaming.played)
    assert sorted(played) == list(range(55, host.tick + 1))
    for tick, targets in played.items():
        assert targets == tuple(float(t) for t in sent[H0 + tick - 55].targets)
    assert not of([m for _, m in host.log], sw.Event) and not any(host.device.fault)


def test_replacing_a_queued_tick(open_host):
    L = 16
    host = open_host()
    here = queued_session(host, L)
    sent = {}
    for n in range(30):
        sent[n] = host.setpoint(H0 + n, path(here, n))
        host.send(sent[n])
        if n == 20:                                  # the tail 14…20 is queued: rewrite it, newest seqs
            for k in range(14, 21):
                moved = list(path(here, k))
                moved[0] -= 50 * (k - 13)
                sent[k] = host.setpoint(H0 + k, tuple(moved))
                host.send(sent[k])
        host.step()
    first = host.device.streaming.queue.anchor[1]
    played = dict(host.device.streaming.played)
    for n in range(30 - L + 1):
        assert played[first + n] == tuple(float(t) for t in sent[n].targets)
    answered = [s for s, _ in feedback_ticks(host)]
    assert answered == [sent[n].seq for n in range(30 - L + 1)]    # the replaced setpoints are never answered
    assert host.device.dropped_setpoints == {}


def test_late_early_and_missing_ticks_and_the_step_check_at_play_time(open_host):
    L = 16
    host = open_host()
    here = queued_session(host, L)
    for n in range(30):
        if n != 10:                                  # host_tick 1010 is lost on the way
            host.send(host.setpoint(H0 + n, path(here, n)))
        host.step()
    first = host.device.streaming.queue.anchor[1]
    played = dict(host.device.streaming.played)
    lost = first + 10
    expected = tuple((a + b) / 2 for a, b in zip(path(here, 9), path(here, 11)))
    assert played[lost] == pytest.approx(expected)                 # interpolated between its neighbours
    assert lost not in [t for _, t in feedback_ticks(host)]         # and answers no setpoint
    # Late: for a tick already played.  Early: one more than the capacity ahead of the tick being played (the
    # last tick finished: what the next step reads arrived during it).
    def ahead(ticks: int) -> int:
        return H0 + host.tick + ticks - first

    host.send(host.setpoint(ahead(-1), path(here, 0)))
    early = host.setpoint(ahead(CAPACITY_TICKS + 1), path(here, 0))
    host.send(early, host.setpoint(ahead(CAPACITY_TICKS), path(here, 0)))     # the capacity itself is queued
    host.send(host.setpoint(H0 + 30, path(here, 30)))
    nak = of(host.step(), sw.Nak)
    assert [(k.seq, k.rejected_type, k.reason) for k in nak] == [(early.seq, 0x10, sw.NakReason.BAD_VALUE)]
    assert host.device.dropped_setpoints == {"late": 1, "early": 1}
    # §6.2's step check applies when a setpoint plays, not when it arrives.
    for n in range(31, 60):
        targets = list(path(here, n))
        if n == 45:
            targets[0] += 200_000                                       # 20 cm in one tick
        host.send(host.setpoint(H0 + n, tuple(targets)))
        events = of(host.step(), sw.Event)
        if host.tick < first + 45:
            assert not events
        elif host.tick == first + 45:
            assert [(e.axis, e.fault) for e in events] == [(0, sw.FaultCode.SETPOINT_STEP)]


def test_quick_stop_empties_the_queue_at_once(open_host):
    L = 16
    host = open_host()
    here = queued_session(host, L)
    for n in range(25):
        host.send(host.setpoint(H0 + n, path(here, n)))
        host.step()
    queued = {m.seq for m in host.device.streaming.queue.entries.values()}
    assert len(queued) == L - 1
    ack = host.command(sw.CommandCode.QUICK_STOP)
    assert ack.result is sw.Result.OK
    assert not host.device.streaming.queue.entries                       # at once, not after L ticks
    assert all(host.device.quick)
    for _ in range(2 * L):
        assert not of(host.step(), sw.Feedback)                         # nothing queued plays any more
    assert not queued & {s for s, _ in feedback_ticks(host)}
    assert max(abs(a.velocity_counts) for a in host.device.axes) == 0  # braked to rest on its ramp
    # The mapping went with the queue: the next setpoint aligns afresh, L ticks after the tick it arrived in.
    host.send(host.setpoint(H0 + 500, tuple(a.position_counts for a in host.device.axes)))
    arrived = host.tick
    for _ in range(L):
        host.step()
    assert feedback_ticks(host)[-1] == (host.seq, arrived + L)


# ---------------------------------------------------------------------------------------------- host stalls
def run_stream(host: Host, lookahead: int, *, samples: int, stall: range | None, how: str) -> tuple[int, ...]:
    """Stream ``samples`` setpoints of :func:`path`, one per host tick; during ``stall`` (host ticks counted
    from the first setpoint) the host writes nothing, then writes every missed setpoint at once, in order.
    ``how``: "ticks" finishes every device tick of the stall without bytes; "jump" skips them (the tick jumps,
    as a stalled host in simulated time); "thread" jumps with the device's own reading thread running."""
    here = queued_session(host, lookahead)
    base = host.tick + 1
    pending: list[sw.Setpoint] = []
    for n in range(samples):
        pending.append(host.setpoint(H0 + n, path(here, n)))
        if stall is not None and n in stall:
            if how == "ticks":
                host.step()
            continue
        host.send(*pending)
        pending = []
        host.step(base + n)
    return here


@pytest.mark.parametrize("how", ["ticks", "jump", "thread"])
def test_a_stall_of_half_the_lookahead_changes_no_played_target(open_host, how):
    L = 32
    reference = open_host()
    run_stream(reference, L, samples=160, stall=None, how=how)
    host = open_host(thread=how == "thread")
    run_stream(host, L, samples=160, stall=range(80, 80 + L // 2), how=how)
    assert list(host.device.streaming.played) == list(reference.device.streaming.played)
    assert of([m for _, m in host.log], sw.Feedback) == of([m for _, m in reference.log], sw.Feedback)
    first = host.device.streaming.queue.anchor[1]
    assert [t for _, t in feedback_ticks(host)] == list(range(first, host.tick + 1))
    assert not of([m for _, m in host.log], sw.Event) and not any(host.device.fault)
    assert host.device.dropped_setpoints == {} and host.device.overflowed == 0


@pytest.mark.parametrize("how", ["ticks", "jump"])
def test_a_stall_of_twice_the_lookahead_ends_in_the_queue_empty_stop(open_host, how):
    L, S = 32, 80                                # the host stalls from its 80th setpoint on, for 2·L ticks
    B = brake_horizon(L)
    host = open_host()
    here = run_stream(host, L, samples=2 * S, stall=range(S, S + 2 * L), how=how)
    queue = host.device.streaming.queue
    first = queue.anchor[1]                      # host_tick H0 + n plays at first + n
    # Before the stall, the setpoint n = S − 1 made first + S − 1 the end of the queue; playing, the depth
    # fell by one per tick, and the stop began when it fell below B.
    last = first + S - 1
    begin = last - (B - 1)
    d = last - begin
    assert d == B - 1
    played = dict(host.device.streaming.played)
    assert sorted(played) == list(range(first, begin + 2 * d + 1))   # then nothing plays: the axes hold
    queued = {first + n: tuple(float(t) for t in path(here, n)) for n in range(S)}
    for tick in range(first, begin + 1):
        assert played[tick] == queued[tick]                          # on time, unchanged, until the stop
    # The slowing clock: the play position advances by r ticks per tick, r falling linearly from 1 to 0
    # over 2·D ticks, along the queued path: after i ticks it stands at i − i²/(4D).
    for i in range(1, 2 * d + 1):
        p = begin + i - i * i / (4 * d)
        k = min(math.floor(p), last - 1)
        expected = tuple(a + (b - a) * (p - k) for a, b in zip(queued[k], queued[k + 1]))
        assert played[begin + i] == pytest.approx(expected)
    assert played[begin + 2 * d] == queued[last]                     # at rest at the end of the queued path
    track = [played[t][0] for t in range(first, begin + 2 * d + 1)]
    steps = [b - a for a, b in zip(track, track[1:])]
    queued_track = [queued[t][0] for t in range(first, last + 1)]
    largest = max(abs(b - a) for a, b in zip(queued_track, queued_track[1:]))
    assert max(abs(s) for s in steps) <= largest                     # no jump
    braking = steps[begin - first:]
    assert all(b < a for a, b in zip(braking, braking[1:])) and braking[-1] < largest / (2 * d)  # to rest
    # On the wire: EVENT QUEUE_EMPTY (axis 0xFF) when the stop begins; every following axis faults with
    # QUEUE_EMPTY; status bit 11 while braking; each queued setpoint is answered when the play position
    # reaches it.
    messages = [m for _, m in host.log]
    (event,) = of(messages, sw.Event)
    assert (event.axis, event.fault) == (0xFF, sw.FaultCode.QUEUE_EMPTY)
    assert event.device_time_us == begin * PERIOD_US
    stops = [m for m in of(messages, sw.Feedback) if m.device_time_us >= begin * PERIOD_US]
    reached = [begin] + [begin + i for i in range(1, 2 * d + 1)
                         if math.floor(i - i * i / (4 * d)) > math.floor(i - 1 - (i - 1) ** 2 / (4 * d))]
    assert [(m.device_time_us // PERIOD_US) for m in stops] == reached
    seqs = {first + n: n + 1 for n in range(S)}                      # the host's seq of host_tick H0 + n
    assert [m.seq for m in stops] == [seqs[t] for t in range(begin, last + 1)]
    for m in stops:
        assert m.state is sw.NodeState.FAULT
        for a in m.axes:
            assert a.status & sw.Status.QUEUE_STOP and a.status & sw.Status.FAULT
            assert a.fault == sw.FaultCode.QUEUE_EMPTY
    before = [m for m in of(messages, sw.Feedback) if m.device_time_us < begin * PERIOD_US]
    assert before and not any(a.status & sw.Status.QUEUE_STOP for m in before for a in m.axes)
    assert host.device.fault == [sw.FaultCode.QUEUE_EMPTY] * host.device.count
    assert not any(host.device.streaming.stopping)
    assert of(messages, sw.Heartbeat)[-1].state is sw.NodeState.FAULT
    axis = host.device.axes[0]
    assert axis.velocity_counts == 0 and abs(axis.position_counts - queued[last][0]) < 100   # at its end
    # The setpoints the host sent after its stall are ignored: nothing more is played or answered.
    assert host.device.dropped_setpoints == {"ignored": S}
    assert len(feedback_ticks(host)) == begin - first + 1 + d
    # FAULT_RESET, then ENABLE, start afresh.
    assert host.command(sw.CommandCode.ENABLE).result is sw.Result.REJECTED_FAULT
    assert host.command(sw.CommandCode.FAULT_RESET).result is sw.Result.OK
    assert host.command(sw.CommandCode.ENABLE).result is sw.Result.OK
    now = tuple(a.position_counts for a in host.device.axes)
    for n in range(L + 1):
        host.send(host.setpoint(H0 + 1000 + n, now))
        host.step()
    assert feedback_ticks(host)[-2:] == [(host.seq - L, host.tick - 1), (host.seq - L + 1, host.tick)]


def test_while_the_queue_empty_stop_runs(open_host):
    """§10.5 with commands: FAULT_RESET is refused while the axes still brake along the queued path (its
    cause persists); QUICK_STOP cuts the stop short (§10.4: it acts at once and empties the queue)."""
    L = 64
    host = open_host()
    here = queued_session(host, L)
    for n in range(80):
        host.send(host.setpoint(H0 + n, path(here, n)))
        host.step()
    while not host.device.streaming.queue.braking:                  # the host stalls
        host.step()
    ack = host.command(sw.CommandCode.FAULT_RESET)
    assert ack.result is sw.Result.REJECTED_FAULT and ack.axis_mask == (1 << host.device.count) - 1
    host.step()
    assert host.device.streaming.queue.braking and all(host.device.streaming.stopping)
    ack = host.command(sw.CommandCode.QUICK_STOP)
    assert ack.result is sw.Result.OK
    assert not host.device.streaming.queue.braking and not any(host.device.streaming.stopping)
    for _ in range(50):
        assert not of(host.step(), sw.Feedback)
    assert host.command(sw.CommandCode.FAULT_RESET).result is sw.Result.OK


# ---------------------------------------------------------------------------------------------- own clock
@pytest.mark.wall_clock
def test_queued_playback_on_the_devices_own_clock(open_host):
    """Wall time: the device runs its own servo tick at the session's rate and plays the queue on it, however
    the host's frames arrive (here all at once), until the queue runs dry and it stops along the path."""
    host = open_host(thread=True, lockstep=False)
    rate, L, count = 500, 50, 40
    period_us = 1_000_000 // rate
    decoder = sw.FrameDecoder()
    got: list[sw.Message] = []

    def read(until: float, want: type | None = None):
        beat = 0
        while time.monotonic() < until:
            beat += 1
            if beat % 20 == 0:                                         # keep the link alive (§6.3)
                host.send(sw.Heartbeat(seq=beat & 0xFFFF, state=sw.NodeState.ENABLED, time_us=0))
            ready, _, _ = select.select([host.fd], [], [], 0.005)
            if ready:
                got.extend(decoder.feed(os.read(host.fd, 65536)))
            if want is not None and of(got, want):
                return of(got, want)[-1]
        return None

    host.send(sw.Hello(seq=1, servo_rate_hz=rate, axis_count=host.device.count, watchdog_ms=500))
    assert read(time.monotonic() + 5, sw.HelloAck).result is sw.Result.OK
    host.send(sw.Stream(seq=1, lookahead_ticks=L, mode=1))
    assert read(time.monotonic() + 5, sw.StreamAck).result is sw.Result.OK
    host.send(sw.Command(seq=1, command=sw.CommandCode.ENABLE, axis_mask=ALL))
    assert read(time.monotonic() + 5, sw.CommandAck).result is sw.Result.OK
    here = tuple(a.position_counts for a in host.device.axes)
    rng = random.Random(11)
    host.send(*[host.setpoint(H0 + n, tuple(h + rng.randint(-3, 3) for h in here)) for n in range(count)])
    read(time.monotonic() + 30, sw.Event)
    read(time.monotonic() + 0.3)
    feedback = of(got, sw.Feedback)
    assert [m.seq for m in feedback] == list(range(1, count + 1))    # every setpoint played, in order
    first = host.device.streaming.queue.anchor[1]
    assert [t for t, _ in host.device.streaming.played][:count] == list(range(first, first + count))
    ticks = [(m.device_time_us - feedback[0].device_time_us) / period_us for m in feedback]
    B, depth = brake_horizon(L), count - 1
    on_time = depth - B + 2                                           # played before the depth fell below B
    for n, t in enumerate(ticks[:on_time]):
        assert abs(t - n) < 0.01                          # one per servo tick, on the device's clock
    assert all(b > a for a, b in zip(ticks, ticks[1:]))
    d = B - 1
    assert abs(ticks[-1] - (on_time - 1 + 2 * d)) < 0.01             # the last d ticks over 2·d ticks
    (event,) = of(got, sw.Event)
    assert (event.axis, event.fault) == (0xFF, sw.FaultCode.QUEUE_EMPTY)
    assert all(a.status & sw.Status.QUEUE_STOP for m in feedback[on_time - 1:] for a in m.axes)
    assert host.device.fault == [sw.FaultCode.QUEUE_EMPTY] * host.device.count
