"""Serial backend: the binary streaming protocol of ``docs/serial-protocol.md`` over pyserial.

A reader thread decodes every byte that arrives (frames that are corrupt, short, duplicated or out of
order are dropped and counted, never acted on), keeps the newest FEEDBACK, answers nothing by itself,
and sends the host HEARTBEAT every 100 ms.  Commands wait for their COMMAND_ACK.  A device that goes
silent for the link timeout, or a port that errors, turns into a :class:`HardwareError` on the next call.
"""

from __future__ import annotations

import threading
import time

import serial

from motionctl.errors import HardwareError, ProtocolError
from motionctl.hal.serial import protocol as sp
from motionctl.hal.serial import stream as ss
from motionctl.hal.driver import AxisState, Driver, DriveStatus, RigState
from motionctl.hal.registry import TransportUrl

HEARTBEAT_S = 0.1
LINK_TIMEOUT_S = 0.5
HELLO_TRIES = 5


def drive_status(flags: sp.Status) -> DriveStatus:
    if flags & sp.Status.FAULT:
        return DriveStatus.FAULT
    if flags & sp.Status.QUICK_STOP:
        return DriveStatus.QUICK_STOP
    if flags & sp.Status.ENABLED:
        return DriveStatus.ENABLED
    if flags & sp.Status.READY:
        return DriveStatus.READY
    return DriveStatus.DISABLED


class SerialDriver(Driver):
    schemes = ("serial",)

    def __init__(self, rig, url: str, **options: object) -> None:
        super().__init__(rig, url, **options)
        parsed = TransportUrl.parse(url)
        self.port = parsed.path
        self.baud = int(parsed.options.get("baud", 1_000_000))
        self.rate_hz = int(options.get("rate_hz") or (rig.hardware.servo_rate_hz if rig.hardware else 500))
        #: Serial 1.1's setpoint queue: ``queue=auto`` (default: when the device has one), ``off``, or
        #: ``required`` (refuse a device without one); ``lookahead_ms`` how far ahead to stream (default 60).
        self.queue_mode = str(parsed.options.get("queue", options.get("queue", "auto")))
        if self.queue_mode not in ("auto", "off", "required"):
            raise ProtocolError(f'{url}: queue={self.queue_mode}: expected auto, off or required')
        self.lookahead_ms = float(parsed.options.get("lookahead_ms", options.get("lookahead_ms", 60.0)))
        wanted = max(1, int(round(self.lookahead_ms * self.rate_hz / 1000.0)))
        self._wanted_lookahead = wanted if self.queue_mode != "off" else 0
        # The device's own watchdog must allow for the queue: setpoints arrive that far ahead of their tick.
        self.watchdog_ms = min(1000, max(20, int(10_000 / self.rate_hz),
                                         int(self._wanted_lookahead * 1000 / self.rate_hz) + 40))
        self.session_minor = 0
        self._serial: serial.Serial | None = None
        self._decoder = ss.FrameDecoder()
        self._tracker = ss.SequenceTracker()
        self._latest: sp.Feedback | None = None
        self._latest_ns = 0
        self._fresh = threading.Condition()
        self._acks: dict[int, sp.Message] = {}
        self._acks_ready = threading.Condition()
        self._events: list[sp.Event] = []
        self._alive_ns: int | None = None       # when the device was last heard, on the run's clock
        self._error: str | None = None
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._command_seq = 0
        self._heartbeat_seq = 0
        self.device_name = ""
        self.device_faults: dict[int, int] = {}

    @property
    def link_broken(self) -> bool:
        return bool(self._error)

    # -- wire ------------------------------------------------------------------------------------------
    def _send(self, message: sp.Message) -> None:
        port = self._serial
        if port is None:
            raise HardwareError(f"serial port {self.port} is closed")
        data = sp.encode(message)
        try:
            with self._write_lock:
                port.write(data)
                self.wire_sent += len(data)
        except (serial.SerialException, OSError) as exc:
            self._error = f"serial port {self.port} failed: {exc}"
            raise HardwareError(self._error) from None

    def _read_loop(self) -> None:
        next_heartbeat = time.monotonic()
        while not self._stop.is_set():
            try:
                port = self._serial
                # read() waits for the full size or the timeout: ask for what is there (at least 1 byte).
                data = port.read(port.in_waiting or 1) if port is not None else b""
            except (serial.SerialException, OSError, TypeError) as exc:
                self._error = f"serial port {self.port} failed (unplugged?): {exc}"
                break
            if data:
                before = self._decoder.stats.dropped
                for message in self._decoder.feed(data):
                    self._handle(message)
                dropped = self._decoder.stats.dropped - before
                if dropped:
                    self.stats.drop("corrupt frame", dropped)
                self._took_in(len(data))
            now = time.monotonic()
            if now >= next_heartbeat:
                next_heartbeat = now + HEARTBEAT_S
                try:
                    self._heartbeat_seq = (self._heartbeat_seq + 1) & 0xFFFF
                    self._send(sp.Heartbeat(seq=self._heartbeat_seq, state=sp.NodeState.ENABLED,
                                            time_us=int(time.monotonic_ns() // 1000) & 0xFFFFFFFF))
                except HardwareError:
                    break
        with self._fresh:
            self._fresh.notify_all()

    def _handle(self, message: sp.Message) -> None:
        # On the run's clock, as the CAN driver ages heartbeats: in a lock-step dry run the device answers
        # only on ticks, so a busy machine that takes more than LINK_TIMEOUT_S of wall time between two
        # ticks (planning, starting up) is not a silent device (seen in make test beside busy processes).
        self._alive_ns = self.now_ns()
        if isinstance(message, sp.Feedback):
            decision = self._tracker.observe(message.seq)
            if not decision.accept:
                self.stats.drop(decision.verdict.name.lower())
                return
            if decision.missing:
                self.stats.drop("missing feedback", decision.missing)
            self.stats.received += 1
            with self._fresh:
                self._latest = message
                self._latest_ns = self.now_ns()
                self._fresh.notify_all()
        elif isinstance(message, (sp.CommandAck, sp.HelloAck, sp.Nak, sp.StreamAck)):
            with self._acks_ready:
                self._acks[message.seq] = message
                self._acks_ready.notify_all()
        elif isinstance(message, sp.Event):
            self._events.append(message)
            self.device_faults[message.axis] = message.fault

    def _await_ack(self, seq: int, timeout_s: float) -> sp.Message:
        deadline = time.monotonic() + timeout_s
        with self._acks_ready:
            while seq not in self._acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._error:
                    raise HardwareError(self._error or f"the device on {self.port} did not answer within "
                                        f"{timeout_s * 1000:.0f} ms")
                self._acks_ready.wait(remaining)
            return self._acks.pop(seq)

    # -- backend hooks ----------------------------------------------------------------------------------
    def _do_open(self) -> None:
        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baud, timeout=0.01, write_timeout=0.5)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise HardwareError(f"cannot open serial port {self.port}: {exc}") from None
        self._serial.write(b"\x00")        # resynchronise the device's decoder
        self._stop.clear()
        self._reader = threading.Thread(target=self._read_loop, name=f"serial-{self.port}", daemon=True)
        self._reader.start()
        count = len(self.scales)
        for attempt in range(1, HELLO_TRIES + 1):
            self._command_seq = (self._command_seq + 1) & 0xFFFF
            seq = self._command_seq
            self._send(sp.Hello(seq=seq, servo_rate_hz=self.rate_hz, axis_count=count, watchdog_ms=self.watchdog_ms))
            try:
                ack = self._await_ack(seq, 0.3)
            except HardwareError:
                if attempt == HELLO_TRIES:
                    self._do_close()
                    raise HardwareError(f"no device answers on {self.port} (sent HELLO {HELLO_TRIES} times)") from None
                continue
            if isinstance(ack, sp.HelloAck) and ack.result is sp.Result.OK:
                self.device_name = ack.device_name
                self.session_minor = min(sp.PROTOCOL_VERSION[1], ack.version_minor)
                self._start_queue(ack)
                return
            self._do_close()
            reason = ack.result.name if isinstance(ack, sp.HelloAck) else f"NAK {ack.reason.name}"
            raise ProtocolError(f"the device on {self.port} refused the session: {reason.replace('_', ' ').lower()} "
                                f"(we speak v{sp.PROTOCOL_VERSION[0]}.{sp.PROTOCOL_VERSION[1]}, {count} axes, "
                                f"{self.rate_hz} Hz)")

    def _start_queue(self, ack: sp.HelloAck) -> None:
        """Serial 1.1: stream setpoints ahead into the device's queue, where it has one (docs §10)."""
        self.lookahead_ticks = 0
        queued = self.session_minor >= 1 and bool(ack.capabilities & sp.Capability.SETPOINT_QUEUE)
        if not queued:
            if self.queue_mode == "required":
                self._do_close()
                raise ProtocolError(f"the device on {self.port} speaks protocol 1.{ack.version_minor} without a "
                                    "setpoint queue; this rig needs 1.1 (or give queue=auto)")
            return
        if not self._wanted_lookahead:
            return
        self._command_seq = (self._command_seq + 1) & 0xFFFF
        seq = self._command_seq
        self._send(sp.Stream(seq=seq, lookahead_ticks=self._wanted_lookahead, mode=1))
        answer = self._await_ack(seq, 1.0)
        if not isinstance(answer, sp.StreamAck) or answer.result is not sp.Result.OK:
            self._do_close()
            why = answer.result.name if isinstance(answer, sp.StreamAck) else f"NAK {answer.reason.name}"
            raise ProtocolError(f"the device on {self.port} refused a setpoint queue of {self._wanted_lookahead} "
                                f"ticks: {why.replace('_', ' ').lower()}")
        self.lookahead_ticks = self._wanted_lookahead

    def _do_close(self) -> None:
        self._stop.set()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(1.0)
        if self._serial is not None:
            try:
                self._serial.close()
            except (serial.SerialException, OSError):
                pass
        self._serial = None

    def _command(self, code: sp.CommandCode, timeout_s: float = 1.0) -> None:
        self._command_seq = (self._command_seq + 1) & 0xFFFF
        seq = self._command_seq
        self._send(sp.Command(seq=seq, command=code, axis_mask=(1 << len(self.scales)) - 1))
        ack = self._await_ack(seq, timeout_s)
        if isinstance(ack, sp.CommandAck) and ack.result is not sp.Result.OK:
            raise HardwareError(f"the device refused {code.name.lower().replace('_', ' ')}: "
                                f"{ack.result.name.lower().replace('_', ' ')}")

    def _do_enable(self, timeout_s: float) -> None:
        self._command(sp.CommandCode.ENABLE, timeout_s)

    def _do_disable(self) -> None:
        self._command(sp.CommandCode.DISABLE)

    def _do_quick_stop(self) -> None:
        try:
            self._command_seq = (self._command_seq + 1) & 0xFFFF
            self._send(sp.Command(seq=self._command_seq, command=sp.CommandCode.QUICK_STOP,
                                  axis_mask=(1 << len(self.scales)) - 1))
        except HardwareError:
            pass   # a dead link: the device's own watchdog stops the axes

    def _do_fault_reset(self) -> None:
        self._command(sp.CommandCode.FAULT_RESET)

    def _do_write(self, sequence: int, counts: list[int], tick: int) -> None:
        if self._error:
            raise HardwareError(self._error)
        self._send(sp.Setpoint(seq=sequence, host_tick=tick & 0xFFFFFFFF, targets=tuple(counts)))
        self._cycle_out()

    def _do_read(self, timeout_s: float) -> RigState | None:
        if self._error:
            raise HardwareError(self._error)
        with self._fresh:
            if self._latest is None and timeout_s > 0:
                self._fresh.wait(timeout_s)
            message, at_ns = self._latest, self._latest_ns
            self._latest = None
        if message is None:
            if self._alive_ns is not None and self.now_ns() - self._alive_ns > LINK_TIMEOUT_S * 1e9:
                raise HardwareError(f"the device on {self.port} has been silent for more than "
                                    f"{LINK_TIMEOUT_S * 1000:.0f} ms")
            return None
        axes = []
        for i, (name, fb) in enumerate(zip(self.axis_names, message.axes)):
            flags = fb.flags
            axes.append(AxisState(name, self.to_si(i, fb.position), fb.velocity / self.scales[i].counts_per_unit,
                                  fb.following_error / self.scales[i].counts_per_unit, drive_status(flags),
                                  fb.fault, sp.fault_text(fb.fault) if fb.fault else ""))
        return RigState(at_ns, message.device_time_us, tuple(axes), message.seq)
