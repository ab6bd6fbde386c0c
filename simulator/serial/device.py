"""A simulated motion controller speaking the serial protocol (``docs/serial-protocol.md``) on a pty.

It is the device side of the wire: it answers HELLO, follows SETPOINTs with one :class:`AxisModel` per
axis, reports FEEDBACK and HEARTBEATs, obeys COMMANDs, runs the mandatory setpoint watchdog, trips on
its own following-error window, and injects the faults it was given.  It speaks version 1.1: after STREAM
(§10) it queues setpoints and plays them on its own servo clock (:mod:`simulator.serial.setpoint_queue`), and stops
the axes along the queued path when the queue runs dry.  It runs in a thread (tests) or
as the process ``python -m simulator`` (operators), on the master end of a pseudo-terminal pair whose
slave path it prints: motionctl opens that path as ``serial:///dev/pts/N`` exactly like hardware.

Its codec (framing, COBS, CRC, message layouts, sequence numbers) is :mod:`simulator.serial.wire`, written
from the protocol document alone: the device shares no protocol logic with motionctl's host driver.
"""

from __future__ import annotations

import math
import os
import select
import threading
import time
import tty

from motionctl.spec.rig import Rig
from simulator.serial import wire as sw
from simulator.axis import AxisModel, driven_axes
from simulator.faults import FaultInjector, FaultKind
from simulator.serial.setpoint_queue import QueuedStreaming

HEARTBEAT_S = 0.1
LINK_TIMEOUT_S = 0.5
TIMER_S = 0.002
FOLLOWING_WINDOW_M = 0.02           # the drive's own trip window (wider than motionctl's watchdog)
FOLLOWING_WINDOW_RAD = math.radians(5.0)


def open_pty() -> tuple[int, str]:
    """A raw pseudo-terminal pair: (master fd for the device, slave path for the host)."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)      # the host opens it by path; the device keeps the master
    os.set_blocking(master, False)   # a host that stops reading must never stall the device
    return master, path


class SerialDevice:
    """The simulated controller.  ``start()`` runs it on a thread; ``serve_forever()`` in the caller's."""

    def __init__(self, rig: Rig, faults: FaultInjector | None = None, *, name: str = "motionctl-sim",
                 initial: "list[float] | None" = None, log=None, lockstep: bool = False) -> None:
        self.rig = rig
        #: Lock-step (simulated time): the device's time passes only in :meth:`lockstep_tick`, one servo
        #: period per host tick; without it, the device keeps its own (wall) clock like hardware.
        self.lockstep = lockstep
        self.device_tick = 0
        self.bytes_in = 0                 # bytes read from the wire (lock-step: the host says how many to expect)
        self.bytes_out = 0                # bytes written to the wire
        self._io = threading.RLock()      # the wire and the model: the device thread and lock-step ticks
        self._pending: sw.Setpoint | None = None
        self._setpoint_tick = 0
        self.faults = faults or FaultInjector()
        self.name = name[:16]
        self.fd, self.path = open_pty()
        scales = driven_axes(rig)
        lens = {l.name: l for l in rig.lens}
        axes = {a.name: a for a in rig.axes}
        self.axes: list[AxisModel] = []
        self.window: list[float] = []
        for s in scales:
            if s.name in axes:
                a = axes[s.name]
                model = AxisModel(s.name, s.counts_per_unit, a.vmax * 1.5, a.amax * 3.0)
                self.window.append(FOLLOWING_WINDOW_M if a.linear else FOLLOWING_WINDOW_RAD)
                index = rig.axis_names.index(s.name)
                start = rig.park if initial is None else initial
                model.position = model.target = float(start[index])
            else:
                l = lens[s.name]
                model = AxisModel(s.name, s.counts_per_unit, 5.0, 50.0)   # normalised encoder units
                self.window.append(0.05)
                model.position = model.target = float(l.encoder(l.default))
            self.axes.append(model)
        self.count = len(self.axes)
        self.enabled = [False] * self.count
        self.quick = [False] * self.count
        self.fault = [0] * self.count
        self.configured = False
        self.rate_hz = 500
        self.watchdog_s = 0.02
        self._decoder = sw.FrameDecoder()
        self._outgoing: list[tuple[float, bytes]] = []
        self._seq = {"heartbeat": 0, "event": 0}
        self._acks: dict[int, sw.CommandAck] = {}
        self._t0: float | None = None
        self._last_step = time.monotonic()
        self._last_setpoint = time.monotonic()
        self._last_rx = time.monotonic()
        self._last_rx_tick = 0
        self._next_heartbeat = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.unplugged = False
        self.received_setpoints = 0
        self.overflowed = 0
        self.log = log or (lambda message: None)
        self._setpoints = sw.SequenceTracker()
        self.dropped_setpoints: dict[str, int] = {}
        #: Version 1.1 (§10): the session's minor (§6.1), and STREAM with the setpoint queue.
        self.session_minor = 0
        self.streaming = QueuedStreaming(self)

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> SerialDevice:
        self._thread = threading.Thread(target=self.serve_forever, name="sim-serial", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self._close_fd()

    def __enter__(self) -> SerialDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close_fd(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1

    def clock_s(self) -> float:
        """The device's own clock (s): its tick count in lock-step, the wall clock otherwise."""
        return self.device_tick / self.rate_hz if self.lockstep else time.monotonic()

    def now(self) -> float:
        """Seconds since the first setpoint (the clock of fault injection)."""
        return 0.0 if self._t0 is None else self.clock_s() - self._t0

    # -- main loop ------------------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        while not self._stop.is_set() and self.fd >= 0:
            ready, _, _ = select.select([self.fd], [], [], self.streaming.wall_timeout(TIMER_S))
            with self._io:
                self.streaming.wall_ticks()     # queued (§10.4): the ticks due before what has just arrived
                if ready:
                    self._receive()
                if not self.lockstep:
                    self._timer()
                    self._flush()
                # Lock-step: the link is judged on the device's ticks (in _timer), never on how long the
                # machine took between two of them (a busy host is not a silent one in simulated time).

    def _receive(self) -> bool:
        """Read what the wire holds and act on it; False if the host end is gone."""
        if self.fd < 0:
            return False
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return True
        except OSError:
            time.sleep(TIMER_S)         # no host attached (EIO): keep waiting
            return False
        self.bytes_in += len(data)
        t = self.now()
        if data and not self.faults.active(FaultKind.STALL, t):
            self._last_rx = time.monotonic()
            self._last_rx_tick = self.device_tick
            for message in self._decoder.feed(data):
                if self.lockstep and self.streaming.queued:
                    self.streaming.defer(message)
                else:
                    self._handle(message)
        return True

    def lockstep_tick(self, tick: int, host_bytes: int, timeout_s: float = 10.0) -> int:
        """One servo period of simulated time, once every byte the host wrote before it has been read.

        The host's setpoint of the tick before is latched and followed for one period, its FEEDBACK sent,
        the watchdog, heartbeats and timed faults run on the device's tick count.  Returns how many bytes
        the device has written in all, so the host can read up to exactly there.  Queued (§10.4): what was
        read arrived during the tick before ``tick``, after any ticks a jump of ``tick`` skipped have played.
        """
        deadline = time.monotonic() + timeout_s
        with self._io:
            while self.bytes_in < host_bytes and self.fd >= 0:
                ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
                if not ready or not self._receive():
                    break
            gap = tick - self.device_tick - 1 if self.device_tick else 0
            if self.streaming.queued:
                self.streaming.lockstep(tick, gap)
            else:
                if gap > 0:
                    # The host missed ticks: the drives went on without a setpoint for that long.
                    self.device_tick = tick - 1
                    self._hold_targets()
                    self._advance(gap / self.rate_hz)
                self.device_tick = tick
                self._lockstep_setpoint()
            self._timer()
            self._flush()
            return self.bytes_out

    def _timer(self) -> None:
        now = time.monotonic()
        t = self.now()
        for fault in self.faults.once(FaultKind.UNPLUG, t) if self._t0 is not None else []:
            self.unplugged = True
            self._close_fd()
            return
        for fault in self.faults.once(FaultKind.DRIVE, t) if self._t0 is not None else []:
            self._trip(self._axis(fault.axis), int(fault.value) or sw.FaultCode.OVERCURRENT)
        for fault in self.faults.once(FaultKind.FOLLOWING, t) if self._t0 is not None else []:
            self.axes[self._axis(fault.axis)].blocked = True
        clock = self.clock_s()
        period = 1.0 / self.rate_hz
        if not self.lockstep and not self.streaming.queued and now - self._last_setpoint > 2 * period:
            # The stream has stopped: the drive's own clock carries on (hold, brake, trip).
            self._hold_targets()
            self._advance(now - self._last_step)
            self._last_step = now
        since = ((self.device_tick - self._setpoint_tick) * period if self.lockstep
                 else now - self._last_setpoint)
        following = [self.enabled[i] and not self.quick[i] and not self.fault[i] for i in range(self.count)]
        queued = self.streaming.holds_setpoints        # §10.4: the queue-empty stop comes first
        if any(following) and not queued and since > self.watchdog_s + 1e-9:
            for i in range(self.count):
                if following[i]:
                    self._trip(i, sw.FaultCode.WATCHDOG)
        silent_s = ((self.device_tick - self._last_rx_tick) / self.rate_hz if self.lockstep
                    else now - self._last_rx)
        if self.configured and silent_s > LINK_TIMEOUT_S:
            self._link_timeout()
        if clock >= self._next_heartbeat:
            self._next_heartbeat = clock + HEARTBEAT_S
            if not self.faults.active(FaultKind.HEARTBEAT, t):
                self._seq["heartbeat"] = (self._seq["heartbeat"] + 1) & 0xFFFF
                self._send(sw.Heartbeat(seq=self._seq["heartbeat"], state=self._node_state(),
                                        time_us=self._time_us()))

    def _link_timeout(self) -> None:
        self.log("link timeout: no frame from the host for 500 ms; session closed")
        self.configured = False
        for i in range(self.count):
            if self.enabled[i]:
                self.quick[i] = True

    def _axis(self, name: str | None) -> int:
        names = [a.name for a in self.axes]
        return names.index(name) if name in names else 0

    def _hold_targets(self) -> None:
        """No new setpoint: every axis holds its last target (no more feed-forward)."""
        for axis in self.axes:
            axis.target_velocity = 0.0

    def _advance(self, dt: float) -> None:
        """The drives' physics for ``dt`` seconds: follow, brake, or trip on the following-error window."""
        if dt <= 0:
            return
        for i, axis in enumerate(self.axes):
            if self.streaming.stopping[i]:      # §10.5: slowing along the queued path
                axis.step(dt)
            elif self.quick[i] or (self.fault[i] and axis.velocity != 0.0):
                axis.brake(dt, axis.amax)
            elif self.enabled[i]:
                axis.step(dt)
                if abs(axis.target - axis.position) > self.window[i]:
                    self._trip(i, sw.FaultCode.FOLLOWING_ERROR)

    def _trip(self, index: int, code: int) -> None:
        """A drive fault: that axis faults, every moving axis brakes on its quick-stop ramp."""
        if self.fault[index]:
            return
        moving = [a.name for i, a in enumerate(self.axes) if self.enabled[i] and i != index]
        self.log(f"{self.axes[index].name}: fault 0x{int(code):04X} ({sw.fault_text(int(code))}); "
                 f"quick stop on {len(moving)} other axes")
        self.fault[index] = int(code)
        self.enabled[index] = False
        for i in range(self.count):
            if self.enabled[i]:
                self.quick[i] = True
        self._seq["event"] = (self._seq["event"] + 1) & 0xFFFF
        self._send(sw.Event(seq=self._seq["event"], device_time_us=self._time_us(), axis=index, fault=int(code),
                            text_code=0))

    # -- messages -----------------------------------------------------------------------------------------
    def _handle(self, message: sw.Message) -> None:
        if isinstance(message, sw.Hello):
            result = sw.Result.OK
            if (message.version_major, message.version_minor)[0] != sw.PROTOCOL_VERSION[0]:
                result = sw.Result.VERSION_MISMATCH
            elif message.axis_count != self.count:
                result = sw.Result.AXIS_COUNT_MISMATCH
            elif message.servo_rate_hz not in (250, 500, 1000):
                result = sw.Result.RATE_UNSUPPORTED
            if result is sw.Result.OK:
                self.configured = True
                self._setpoints = sw.SequenceTracker()
                self.rate_hz = message.servo_rate_hz
                self.watchdog_s = message.watchdog_ms / 1000.0
                # §6.1 point 3, §10.1: the session runs at min(host minor, device minor), latched
                # (1.0) until a STREAM says queued.
                self.session_minor = min(message.version_minor, sw.PROTOCOL_VERSION[1])
                self.streaming.new_session()
            caps = sw.Capability.SIMULATED | sw.Capability.ABSOLUTE_ENCODERS | sw.Capability.SETPOINT_QUEUE
            self._send(sw.HelloAck(seq=message.seq, result=result, version_major=sw.PROTOCOL_VERSION[0],
                                   version_minor=sw.PROTOCOL_VERSION[1], axis_count=self.count,
                                   capabilities=caps, max_servo_rate_hz=1000, device_name=self.name))
        elif isinstance(message, sw.Setpoint):
            self._setpoint(message)
        elif isinstance(message, sw.Stream):
            self.streaming.stream(message)
        elif isinstance(message, sw.Command):
            self._command(message)

    def _setpoint(self, message: sw.Setpoint) -> None:
        if not self.configured or len(message.targets) != self.count:
            reason = sw.NakReason.NOT_CONFIGURED if not self.configured else sw.NakReason.AXIS_COUNT
            self._send(sw.Nak(seq=message.seq, rejected_type=int(sw.MessageType.SETPOINT), reason=reason))
            return
        decision = self._setpoints.observe(message.seq)
        if not decision.accept:            # duplicate or older than the newest: never actuated
            self.dropped_setpoints[decision.verdict.name.lower()] = (
                self.dropped_setpoints.get(decision.verdict.name.lower(), 0) + 1)
            return
        if self.streaming.queued:
            self.streaming.setpoint(message)
            return
        if self.lockstep:
            self._pending = message         # latched at the next tick (the newest wins)
            return
        now = time.monotonic()
        cycles = max(1.0, (now - self._last_setpoint) * self.rate_hz)   # how long the host took, on our clock
        self._last_setpoint = self._last_step = now
        self._latch(message, cycles)

    def _following(self, i: int) -> bool:
        return self.enabled[i] and not self.quick[i] and not self.fault[i]

    def _lockstep_setpoint(self) -> None:
        """The tick of simulated time: latch the newest setpoint, or let the drives follow the old one."""
        message, self._pending = self._pending, None
        if message is not None:
            self._setpoint_tick = self.device_tick
            self._latch(message)
        else:
            self._advance(1.0 / self.rate_hz)

    def _latch(self, message: sw.Setpoint, cycles: float = 1.0) -> None:
        """One servo period per setpoint latched: the model advances by the nominal period, never by how
        late this process woke up (a starved simulator must not look like a drive that fell behind)."""
        if self._t0 is None:
            self._t0 = self.clock_s()
        period = 1.0 / self.rate_hz
        self.received_setpoints += 1
        self._advance(period)
        # Report against the demand the axis has been following (as a CSP drive does), then latch the new one.
        feedback = sw.Feedback(seq=message.seq, device_time_us=self._time_us(), state=self._node_state(),
                               axes=tuple(self._axis_feedback(i) for i in range(self.count)))
        for i, (axis, counts) in enumerate(zip(self.axes, message.targets)):
            if self.enabled[i] and not self.quick[i]:
                jump = axis.set_target(counts / axis.counts_per_unit, period)
                if abs(jump) > axis.vmax * period * cycles * 4 + 1e-6:
                    self._trip(i, sw.FaultCode.SETPOINT_STEP)
        self._send(feedback)

    def _axis_feedback(self, i: int) -> sw.AxisFeedback:
        axis = self.axes[i]
        status = sw.Status.READY
        if self.enabled[i]:
            status |= sw.Status.ENABLED
        if self.quick[i]:
            status |= sw.Status.QUICK_STOP
        if self.fault[i]:
            status = sw.Status.FAULT
        if self.streaming.stopping[i]:
            status |= sw.Status.QUEUE_STOP
        following = axis.following_error_counts if self.enabled[i] or self.streaming.stopping[i] else 0
        return sw.AxisFeedback(axis.position_counts, axis.velocity_counts,
                               max(-2**31, min(2**31 - 1, following)), int(status), self.fault[i])

    def _command(self, message: sw.Command) -> None:
        if message.seq in self._acks:          # a retransmission: answer again, do not run twice
            self._send(self._acks[message.seq])
            return
        mask = [bool(message.axis_mask >> i & 1) for i in range(self.count)]
        result = sw.Result.OK
        code = message.command
        refused = 0
        if code is sw.CommandCode.QUICK_STOP:
            for i in range(self.count):
                if mask[i] and self.enabled[i]:
                    self.quick[i] = True
            self.streaming.empty()
        elif not self.configured:
            result = sw.Result.REJECTED_STATE
        elif code is sw.CommandCode.ENABLE:
            if any(self.fault[i] for i in range(self.count) if mask[i]):
                result = sw.Result.REJECTED_FAULT
            else:
                self._last_setpoint = time.monotonic()
                self._setpoint_tick = self.device_tick
                self.streaming.empty()
                for i in range(self.count):
                    if mask[i]:
                        self.enabled[i], self.quick[i] = True, False
                        self.axes[i].hold()
        elif code is sw.CommandCode.DISABLE:
            self.streaming.empty()
            for i in range(self.count):
                if mask[i]:
                    self.enabled[i] = self.quick[i] = False
        elif code is sw.CommandCode.FAULT_RESET:
            refused = sum(1 << i for i in range(self.count) if mask[i] and self.streaming.stopping[i])
            if refused:                         # §10.5: the cause persists until the queue-empty stop ends
                result = sw.Result.REJECTED_FAULT
            for i in range(self.count):
                if mask[i] and not refused:
                    self.fault[i] = 0
                    self.quick[i] = self.enabled[i] = False
                    self.axes[i].blocked = False
        ack = sw.CommandAck(seq=message.seq, command=code, result=result,
                            axis_mask=refused or message.axis_mask)
        self._acks[message.seq] = ack
        self._send(ack)

    def _node_state(self) -> sw.NodeState:
        if any(self.fault):
            return sw.NodeState.FAULT
        if any(self.quick):
            return sw.NodeState.STOPPING
        if any(self.enabled):
            return sw.NodeState.ENABLED
        return sw.NodeState.IDLE if self.configured else sw.NodeState.BOOT

    def _time_us(self, at: float | None = None) -> int:
        return int((self.clock_s() if at is None else at) * 1e6) & 0xFFFFFFFF

    # -- output with fault injection ------------------------------------------------------------------
    def _send(self, message: sw.Message) -> None:
        t = self.now()
        if self._t0 is not None and self.faults.active(FaultKind.STALL, t):
            return
        if self._t0 is not None and self.faults.chance(FaultKind.DROP, t):
            return
        frame = bytearray(sw.encode(message))
        if self._t0 is not None and self.faults.chance(FaultKind.CORRUPT, t) and len(frame) > 2:
            frame[self.faults.random.randrange(len(frame) - 1)] ^= 1 << self.faults.random.randrange(8)
        self._outgoing.append((self.clock_s() + self.faults.delay_s(t), bytes(frame)))
        if not self.lockstep:
            return
        # Lock-step: written at once (within the tick), so the tick's byte count includes it.
        self._flush()

    def _flush(self) -> None:
        now = self.clock_s()
        due = [f for at, f in self._outgoing if at <= now + 1e-9]
        self._outgoing = [(at, f) for at, f in self._outgoing if at > now + 1e-9]
        if due and self.fd >= 0:
            data = b"".join(due)
            try:
                written = os.write(self.fd, data)
                self.bytes_out += written
                if written < len(data):
                    self.overflowed += 1
            except BlockingIOError:
                self.overflowed += 1      # the host is not reading: the frames are lost, as on a wire
            except OSError:
                pass
