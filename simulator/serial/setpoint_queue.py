"""The device's setpoint queue of serial protocol version 1.1 (``docs/serial-protocol.md`` §10).

Written from the page alone, like the rest of the simulator's serial side.  :class:`SetpointQueue` is the
queue and its clockwork, without I/O: for each device tick, which target to play and which SETPOINT to
answer.  :class:`QueuedStreaming` is the device's side of §10: STREAM, queued SETPOINTs, the servo tick in
both of the device's clocks (its own, and lock-step simulated time), and the queue-empty stop, applied to the
axes of a :class:`simulator.serial.device.SerialDevice`.

Ticks are device servo ticks.  "The tick in which a setpoint arrived" is the last tick the device has
played when the setpoint is read: a setpoint read between ticks n and n + 1 arrived during tick n, so with a
lookahead of 1 it plays at n + 1, exactly when 1.0 would have latched it (§6.2).

Targets are in encoder counts (floats once interpolated).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from simulator.serial import wire as sw

if TYPE_CHECKING:
    from simulator.serial.device import SerialDevice

#: §10.3: the most queued ticks this device holds (at least 64 for a device that sets capability bit 5).
CAPACITY_TICKS = 256
#: §10.2: lookahead_ticks is 1…1024 with mode 1.
MAX_LOOKAHEAD = 1024

Targets = tuple[float, ...]


def brake_horizon(lookahead: int) -> int:
    """§10.5: B = max(2, L / 4), integer division."""
    return max(2, lookahead // 4)


def _signed32(value: int) -> int:
    """A difference of two u32 host ticks (which wrap at 2³², §4.4) as a signed number of ticks."""
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _lerp(a: Targets, b: Targets, f: float) -> Targets:
    return tuple(x + (y - x) * f for x, y in zip(a, b))


class Offer(Enum):
    """What the queue did with a SETPOINT (§10.4, §10.5 point 3)."""
    QUEUED = "queued"          # for a tick not queued yet
    REPLACED = "replaced"      # for a queued tick not yet played: replaces it
    LATE = "late"              # for a tick already played: dropped and counted
    EARLY = "early"            # more than capacity_ticks ahead: dropped, NAK BAD_VALUE
    IGNORED = "ignored"        # the queue-empty stop has begun: ignored until ENABLE


@dataclass(frozen=True)
class TickPlan:
    """What one device tick does.

    ``targets`` None: nothing to play, the axes hold their last targets.  ``seq``: the SETPOINT this tick
    plays, answered by one FEEDBACK (None for an interpolated tick, which answers nothing, as a 1.0 cycle
    that latched nothing).  ``begin_stop``/``end_stop``: the queue-empty stop of §10.5 begins or ends here.
    """
    targets: Targets | None = None
    seq: int | None = None
    begin_stop: bool = False
    end_stop: bool = False


HOLD = TickPlan()


class QueueStop:
    """§10.5 point 1, the slowing clock: the D ticks of queued motion that remain play over 2·D ticks.

    The play position advances by r ticks per tick, r falling linearly from 1 to 0 over 2·D ticks, so after
    i ticks it stands at i − i²/(4·D) (the integral of r) and reaches D, the end of the queued path, at
    i = 2·D, at rest.  The target is interpolated linearly between the queued ticks, so two consecutive
    targets are never further apart than two consecutive queued ones.  Each queued tick is "played" when
    the play position reaches it, and its SETPOINT is answered then (one FEEDBACK per played setpoint).
    """

    def __init__(self, path: list[Targets], seqs: list[int | None]) -> None:
        self.path = path              # the targets of the tick where the stop began, then the D queued ticks
        self.seqs = seqs
        self.depth = len(path) - 1    # D
        self.elapsed = 0              # ticks played on the slowing clock

    def position(self, i: int) -> float:
        """The play position after ``i`` ticks, in queued ticks from where the stop began."""
        return float(self.depth) if i >= 2 * self.depth else i - i * i / (4 * self.depth)

    @property
    def done(self) -> bool:
        return self.elapsed >= 2 * self.depth

    def step(self) -> TickPlan:
        """The next tick on the slowing clock."""
        before = self.position(self.elapsed)
        self.elapsed += 1
        p = self.position(self.elapsed)
        k = min(int(math.floor(p)), self.depth)
        target = self.path[k] if k == self.depth else _lerp(self.path[k], self.path[k + 1], p - k)
        reached = k > math.floor(before)
        return TickPlan(target, self.seqs[k] if reached else None, end_stop=self.done)


class SetpointQueue:
    """The queue of one session (§10.4, §10.5).  Latched mode (1.0) until :meth:`configure` says queued."""

    def __init__(self, capacity: int = CAPACITY_TICKS) -> None:
        self.capacity = capacity
        self.mode = sw.StreamMode.LATCHED
        self.lookahead = 0
        self.reset()

    @property
    def queued(self) -> bool:
        return self.mode is sw.StreamMode.QUEUED

    @property
    def braking(self) -> bool:
        """The slowing clock of the queue-empty stop is running (§10.5)."""
        return self.stop is not None

    @property
    def pending(self) -> bool:
        """Setpoints wait to be played, or the stop plays the last ones: §10.5 comes before the watchdog."""
        return bool(self.entries) or self.stop is not None

    def accepts(self, mode: int, lookahead: int) -> bool:
        """§10.3 BAD_PARAMETER otherwise: mode 0 or 1, and with mode 1 a lookahead of 1…1024 and at most
        the capacity.  With mode 0 the lookahead is not used (§10.2: "1…1024 (with mode 1)")."""
        if mode == sw.StreamMode.LATCHED:
            return True
        return mode == sw.StreamMode.QUEUED and 1 <= lookahead <= min(MAX_LOOKAHEAD, self.capacity)

    def configure(self, mode: int, lookahead: int) -> None:
        """STREAM accepted (§10.2): switch mode; the queue empties and the next SETPOINT aligns afresh."""
        self.mode = sw.StreamMode(mode)
        self.lookahead = lookahead if self.mode is sw.StreamMode.QUEUED else 0
        self.reset()

    def reset(self) -> None:
        """Empty the queue and forget the mapping (ENABLE, DISABLE, QUICK_STOP, STREAM: §10.4), and end the
        queue-empty stop and its refusal of setpoints (§10.5 point 3: ENABLE starts afresh)."""
        self.entries: dict[int, sw.Setpoint] = {}
        self.anchor: tuple[int, int] | None = None       # (host_tick, device tick) of the first setpoint
        self.last: tuple[int, Targets] | None = None      # the last tick that set a target, and its targets
        self.arrived = False                              # a setpoint was queued since the last tick
        self.stop: QueueStop | None = None
        self.halted = False

    # -- §10.4: receiving ---------------------------------------------------------------------------------
    def play_tick(self, message: sw.Setpoint) -> int:
        """The device tick a SETPOINT plays at, from the mapping (§10.4 "Alignment")."""
        assert self.anchor is not None
        host_tick, device_tick = self.anchor
        return device_tick + _signed32(message.host_tick - host_tick)

    def offer(self, message: sw.Setpoint, now: int) -> Offer:
        """A SETPOINT that arrived during device tick ``now`` (§10.4: alignment, replacing, late, early)."""
        if self.halted:
            return Offer.IGNORED
        if self.anchor is None:
            self.anchor = (message.host_tick, now + self.lookahead)
        tick = self.play_tick(message)
        if tick <= now:
            return Offer.LATE
        if tick - now > self.capacity:
            return Offer.EARLY
        replaced = tick in self.entries
        self.entries[tick] = message
        self.arrived = True
        return Offer.REPLACED if replaced else Offer.QUEUED

    # -- §10.4 and §10.5: playing -------------------------------------------------------------------------
    def depth(self, tick: int) -> int:
        """D: the consecutive queued ticks ahead of ``tick`` (§10.5)."""
        d = 0
        while tick + d + 1 in self.entries:
            d += 1
        return d

    def plan(self, tick: int, following: bool) -> TickPlan:
        """Device tick ``tick`` (one call per tick, in order).  ``following``: an axis follows setpoints.

        Plays the setpoint queued for the tick, or interpolates a missing tick between the last target
        and the next queued tick (§10.4), or begins the queue-empty stop (§10.5) when, with an axis
        following and playing begun, fewer than B consecutive ticks are queued ahead of this one and no
        SETPOINT was queued during the last tick.
        """
        arrived, self.arrived = self.arrived, False
        if self.stop is not None:
            plan = self.stop.step()
            if self.stop.done:
                self.stop = None
            self.last = (tick, plan.targets) if plan.targets is not None else self.last
            return plan
        if self.halted:
            return HOLD
        entry = self.entries.pop(tick, None)
        targets: Targets | None = None
        seq: int | None = None
        if entry is not None:
            targets, seq = tuple(float(t) for t in entry.targets), entry.seq
        elif self.last is not None and self.entries:
            later = min(self.entries)
            last_tick, last_targets = self.last
            targets = _lerp(last_targets, tuple(float(t) for t in self.entries[later].targets),
                            (tick - last_tick) / (later - last_tick))
        started = targets is not None or self.last is not None
        if started and following and not arrived:
            d = self.depth(tick)
            if d < brake_horizon(self.lookahead):
                return self._begin_stop(tick, targets, seq, d)
        if targets is not None:
            self.last = (tick, targets)
        return TickPlan(targets, seq)

    def _begin_stop(self, tick: int, targets: Targets | None, seq: int | None, d: int) -> TickPlan:
        """§10.5: this tick plays as it would have (at full speed, r = 1); the D ticks after it play on the
        slowing clock; nothing else queued will play."""
        start = targets if targets is not None else (self.last[1] if self.last else ())
        path = [start] + [tuple(float(t) for t in self.entries[tick + j].targets) for j in range(1, d + 1)]
        seqs = [seq] + [self.entries[tick + j].seq for j in range(1, d + 1)]
        self.entries.clear()
        self.halted = True
        self.stop = QueueStop(path, seqs) if d else None
        if targets is not None:
            self.last = (tick, targets)
        return TickPlan(targets, seq, begin_stop=True, end_stop=not d)


# ------------------------------------------------------------------------------------------ the device side
class QueuedStreaming:
    """Version 1.1 on a :class:`~simulator.serial.device.SerialDevice` (§10): STREAM, queued SETPOINTs, the
    servo tick that plays them in both of the device's clocks, and the queue-empty stop.

    A collaborator of the device, not a protocol of its own: it uses the device's axes, flags and helpers
    (``_send``, ``_advance``, ``_axis_feedback``, …) exactly as the device's 1.0 code does.
    """

    def __init__(self, device: SerialDevice) -> None:
        self.device = device
        self.queue = SetpointQueue()
        #: §7 bit 11, per axis: stopping along the queued path (§10.5).
        self.stopping = [False] * device.count
        self.ack: sw.StreamAck | None = None        # the last STREAM_ACK, for a retransmission (§10.2)
        self.inbox: list[sw.Message] = []           # lock-step: read, not yet handled
        self.origin = (0.0, 0)                      # wall clock: (time, tick) its servo ticks count from
        #: (device tick, target counts of every axis) of each tick that set a target, newest last.
        self.played: deque[tuple[int, Targets]] = deque(maxlen=1 << 16)

    @property
    def queued(self) -> bool:
        return self.queue.queued

    @property
    def holds_setpoints(self) -> bool:
        """Queued setpoints wait or the stop is playing the last ones: the watchdog waits (§10.4)."""
        return self.queue.queued and self.queue.pending

    def new_session(self) -> None:
        """A successful HELLO: latched mode, an empty queue, no STREAM to recognise as retransmitted."""
        self.queue = SetpointQueue()
        self.ack = None
        self.end_stop()

    def empty(self) -> None:
        """§10.4 "Commands": QUICK_STOP, DISABLE and ENABLE empty the queue and end a queue-empty stop (the
        faulted axes are then left to their quick-stop ramp)."""
        self.queue.reset()
        self.end_stop()

    def end_stop(self) -> None:
        """No axis is stopping along the queued path any more (status bit 11 clears)."""
        self.stopping = [False] * self.device.count

    # -- messages -----------------------------------------------------------------------------------------
    def stream(self, message: sw.Stream) -> None:
        """§10.2 / §10.3: queued streaming on or off, while no axis is enabled; a retransmission (same seq) is
        answered again without acting twice."""
        dev = self.device
        if self.ack is not None and self.ack.seq == message.seq:
            dev._send(self.ack)
            return
        if not dev.configured or dev.session_minor < 1:
            result = sw.Result.REJECTED_STATE         # no session, or a 1.0 session
        elif not self.queue.accepts(message.mode, message.lookahead_ticks):
            result = sw.Result.BAD_PARAMETER
        elif any(dev.enabled) or any(self.stopping):
            result = sw.Result.REJECTED_STATE
        else:
            result = sw.Result.OK
            self.queue.configure(message.mode, message.lookahead_ticks)
            now = time.monotonic()
            self.origin = (now, dev.device_tick)                  # the wall clock's servo ticks start
            dev._last_setpoint = dev._last_step = now
            dev._setpoint_tick = dev.device_tick
        self.ack = sw.StreamAck(seq=message.seq, result=result, capacity_ticks=self.queue.capacity)
        dev._send(self.ack)

    def setpoint(self, message: sw.Setpoint) -> None:
        """§10.4: queue a SETPOINT (already past the §5 sequence check) for the tick it names, during the
        device's current tick.  Too early is NAKed BAD_VALUE; late and ignored ones are counted."""
        dev = self.device
        if dev._t0 is None:
            dev._t0 = dev.clock_s()
        dev._setpoint_tick = dev.device_tick     # the watchdog counts from the last SETPOINT received
        dev._last_setpoint = time.monotonic()
        outcome = self.queue.offer(message, dev.device_tick)
        if outcome in (Offer.QUEUED, Offer.REPLACED):
            dev.received_setpoints += 1
            return
        dev.dropped_setpoints[outcome.value] = dev.dropped_setpoints.get(outcome.value, 0) + 1
        if outcome is Offer.EARLY:
            dev._send(sw.Nak(seq=message.seq, rejected_type=int(sw.MessageType.SETPOINT),
                             reason=sw.NakReason.BAD_VALUE))

    def defer(self, message: sw.Message) -> None:
        """Lock-step: a SETPOINT waits for :meth:`lockstep`, to arrive in the tick the host wrote it in (after
        the ticks a host stall skipped).  Any other message wants its answer in wall time: it is handled now,
        with everything before it, in order."""
        self.inbox.append(message)
        if not isinstance(message, sw.Setpoint):
            self.handle_inbox()

    def handle_inbox(self) -> None:
        inbox, self.inbox = self.inbox, []
        for message in inbox:
            self.device._handle(message)

    # -- the two clocks -------------------------------------------------------------------------------------
    def lockstep(self, tick: int, gap: int) -> None:
        """Simulated time: ``tick`` jumped by ``gap`` + 1 (a host stall), so each skipped tick plays from the
        queue, in order; then what the host wrote arrives, during the tick before ``tick``; then ``tick``."""
        dev = self.device
        for skipped in range(tick - gap, tick):
            dev.device_tick = skipped
            self.tick()
        dev.device_tick = tick - 1
        self.handle_inbox()
        dev.device_tick = tick
        if self.queued:
            self.tick()
        else:                                     # a STREAM back to latched mode came in
            dev._lockstep_setpoint()

    def due(self, tick: int) -> float:
        """The device's own clock: when servo tick ``tick`` is due (s, monotonic), at the session's rate."""
        start, start_tick = self.origin
        return start + (tick - start_tick) / self.device.rate_hz

    def wall_timeout(self, longest: float) -> float:
        """How long the device's loop may wait for input before its next servo tick is due."""
        if self.device.lockstep or not self.queued:
            return longest
        return min(longest, max(0.0, self.due(self.device.device_tick + 1) - time.monotonic()))

    def wall_ticks(self) -> None:
        """The device's own clock: every servo tick due by now, in order."""
        dev = self.device
        if dev.lockstep:
            return
        now = time.monotonic()
        while self.queued and now >= self.due(dev.device_tick + 1):
            dev.device_tick += 1
            self.tick()

    def tick_time(self) -> float:
        """The device clock at the tick being played: its tick count in lock-step, else when it was due."""
        dev = self.device
        return dev.clock_s() if dev.lockstep else self.due(dev.device_tick)

    # -- one servo tick -------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Device tick ``device_tick`` (§10.4, §10.5): the planned target is latched as in §6.2, the step
        check included, and a played setpoint answered by one FEEDBACK with the tick's time; with nothing to
        play, the axes hold their targets."""
        dev = self.device
        period = 1.0 / dev.rate_hz
        plan = self.queue.plan(dev.device_tick, any(dev._following(i) for i in range(dev.count)))
        if plan.begin_stop:
            self.begin_stop()
        if plan.targets is None:
            dev._hold_targets()
            dev._advance(period)
        else:
            dev._advance(period)
            feedback = None if plan.seq is None else sw.Feedback(
                seq=plan.seq, device_time_us=dev._time_us(self.tick_time()), state=dev._node_state(),
                axes=tuple(dev._axis_feedback(i) for i in range(dev.count)))
            for i, (axis, counts) in enumerate(zip(dev.axes, plan.targets)):
                if self.stopping[i] or dev._following(i):
                    jump = axis.set_target(counts / axis.counts_per_unit, period)
                    if dev._following(i) and abs(jump) > axis.vmax * period * 4 + 1e-6:
                        dev._trip(i, sw.FaultCode.SETPOINT_STEP)
            self.played.append((dev.device_tick, plan.targets))
            if feedback is not None:
                dev._send(feedback)
        if plan.end_stop:           # the end of the queued path: the fault's ramp stops what motion is left
            self.end_stop()

    def begin_stop(self) -> None:
        """§10.5 point 2: fault QUEUE_EMPTY on every following axis, which then slows along the queued path
        (status bit 11), and one EVENT for the whole device."""
        dev = self.device
        axes = [i for i in range(dev.count) if dev._following(i)]
        dev.log(f"the setpoint queue ran dry: {len(axes)} axes stop along the queued path")
        for i in axes:
            dev.fault[i] = int(sw.FaultCode.QUEUE_EMPTY)
            dev.enabled[i] = False
            self.stopping[i] = True
        dev._seq["event"] = (dev._seq["event"] + 1) & 0xFFFF
        dev._send(sw.Event(seq=dev._seq["event"], device_time_us=dev._time_us(self.tick_time()),
                           axis=sw.DEVICE_WIDE, fault=int(sw.FaultCode.QUEUE_EMPTY), text_code=0))
