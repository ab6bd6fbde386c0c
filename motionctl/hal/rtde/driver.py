"""Universal Robots backend (``rtde://HOST``): a UR e-Series arm through RTDE and a control program.

RTDE (TCP 30004) carries state from the controller at its own 500 Hz and our input registers to it; it
cannot move the arm by itself.  So on enable, motionctl sends a small URScript program
(``ur_servo.script``, shipped with motionctl; its contract in docs/ur-rtde.md) to the secondary interface
(TCP 30002), the way UR's own clients send scripts.  Every cycle the servo loop writes a counter, a command
and the six joint targets into input registers; the program ``servoj``\\ s to them with a documented
lookahead and gain, and stops the arm and ends by itself when the counter stops changing (motionctl gone).

The robot's own state is read every cycle and said in words: robot mode (powered off, brakes on, running),
safety mode (protective stop, emergency stops) and the program (running, stopped on the pendant, ended
because the registers went stale).  motionctl never powers the robot or releases its brakes: that is the
operator's, on the pendant.

URL options: ``rtde_port`` (30004), ``script_port`` (30002); the simulator gives its own.  Rig axes bind to
joints by ``[hardware] address``: 1-6 are base, shoulder, elbow, wrist 1, wrist 2, wrist 3 (rad both sides).
"""

from __future__ import annotations

import math
import select
import socket
import struct
import threading
import time
from importlib import resources

from motionctl.errors import HardwareError, InputError, ProtocolError
from motionctl.hal.rtde import wire as w
from motionctl.hal.cycles import CycleQueue
from motionctl.hal.driver import AxisScale, AxisState, Driver, DriveStatus, RigState
from motionctl.hal.registry import TransportUrl

#: e-Series controllers publish at 500 Hz: one RTDE cycle per servo tick; CB3 controllers (software 3.x)
#: at 125 Hz: one cycle every 4th tick of a 500 Hz rig.
RATE_HZ = 500
CB3_RATE_HZ = 125
OUTPUTS = ("timestamp", "actual_q", "actual_qd", "target_q", "robot_mode", "safety_mode", "runtime_state",
           "output_int_register_24", "output_int_register_25")
INPUTS = ("input_int_register_24", "input_int_register_25") + tuple(f"input_double_register_{24 + i}"
                                                                     for i in range(6))
HOLD, FOLLOW, STOP, END = 0, 1, 2, 3
#: How far ahead of the controller the servo loop streams (as for KUKA RSI and the serial queue).
DEFAULT_LOOKAHEAD_MS = 60.0
#: How long enable() waits for the control program to say it holds: a controller compiles the URScript
#: it is sent before running it, and a busy machine running a simulated one is slower still.  The wait
#: ends as soon as the program reports; only a program that never starts costs the whole of it.
PROGRAM_START_S = 10.0
#: The program's states (output_int_register_24).
NOT_RUNNING, HOLDING, FOLLOWING, STOPPED, ENDED_STALE, ENDED_ASKED = range(6)
PROGRAM_STATES = {NOT_RUNNING: "not running", HOLDING: "holding", FOLLOWING: "following", STOPPED: "stopped",
                  ENDED_STALE: "ended: the registers went stale (motionctl's cycles stopped arriving)",
                  ENDED_ASKED: "ended by motionctl"}
PROGRAM_HEADER = "# motionctl servo program 1"
#: Joint angles travel as doubles; the driver contract's integer counts are nano-radians here.
COUNTS_PER_RAD = 1e9


def servo_program(decel_rad_s2: float, cycle_s: float = 1.0 / RATE_HZ) -> str:
    """The URScript program, with the rig's smallest joint deceleration for its stops and the controller's
    cycle (servoj's time)."""
    text = resources.files("motionctl.hal.rtde").joinpath("ur_servo.script").read_text()
    return text.replace("{decel}", f"{decel_rad_s2:.4f}").replace("{dt}", f"{cycle_s:.3f}")


class RtdeDriver(Driver):
    schemes = ("rtde",)

    def __init__(self, rig, url: str, **options: object) -> None:
        super().__init__(rig, url, **options)
        parsed = TransportUrl.parse(url)
        self.host = parsed.host
        self.rtde_port = int(parsed.options.get("rtde_port", 30004))
        self.script_port = int(parsed.options.get("script_port", 30002))
        rate = int(options.get("rate_hz") or (rig.hardware.servo_rate_hz if rig.hardware else RATE_HZ))
        if rate % RATE_HZ:
            raise InputError(f"a UR e-Series controller runs RTDE at {RATE_HZ} Hz (a CB3 at {CB3_RATE_HZ} Hz): run "
                             f"this rig at {RATE_HZ} Hz or a multiple of it, not {rate} Hz")
        self.rate_hz = rate
        #: Servo ticks per controller cycle: known once open (the controller says whether it is a CB3).
        self.ticks_per_cycle = rate // RATE_HZ
        self.controller_hz = RATE_HZ
        self.lockstep = bool(options.get("lockstep", False))
        address = rig.hardware.address
        self.joint_index = tuple(address[s.name] - 1 for s in self.scales)
        if sorted(self.joint_index) != list(range(6)):
            raise InputError(f'rig "{rig.name}": a UR arm needs its six joints bound to addresses 1-6, got '
                             + ", ".join(f"{s.name}={address[s.name]}" for s in self.scales))
        self.scales = tuple(AxisScale(s.name, COUNTS_PER_RAD) for s in self.scales)
        limits = {a.name: a for a in rig.axes}
        self.decel = min(limits[s.name].amax for s in self.scales if s.name in limits)
        self._amax = [0.0] * 6                       # rad/s^2, in joint order
        for k, s in enumerate(self.scales):
            self._amax[self.joint_index[k]] = limits[s.name].amax if s.name in limits else self.decel
        lookahead_ms = float(parsed.options.get("lookahead_ms", options.get("lookahead_ms", DEFAULT_LOOKAHEAD_MS)))
        self.lookahead_ticks = max(self.ticks_per_cycle, int(round(lookahead_ms * rate / 1000.0)))
        self._cycles = CycleQueue(self.lookahead_ticks, self.ticks_per_cycle, self._amax_per_cycle())
        self._fault: str | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._quit = threading.Event()
        self._fresh = threading.Condition()
        self._outputs: w.Recipe | None = None
        self._inputs: w.Recipe | None = None
        self._latest: RigState | None = None
        self._values: dict[str, object] = {}
        self._counter = 0
        self._targets = [0.0] * 6
        self._command = HOLD
        self._error: str | None = None
        self._send_lock = threading.Lock()
        self.controller_version = ""
        self.events: list[str] = []

    # -- wire ------------------------------------------------------------------------------------------
    def _request(self, kind: int, payload: bytes, timeout_s: float = 2.0) -> bytes:
        """One request and its reply during set-up (before the reader thread runs)."""
        sock = self._sock
        sock.sendall(w.package(kind, payload))
        buffer = bytearray()
        deadline = time.monotonic() + timeout_s
        while True:
            for reply_kind, reply in w.split(buffer):
                if reply_kind == kind:
                    return reply
                if reply_kind == w.TEXT_MESSAGE:
                    self.events.append(f"robot: {w.text_message(reply)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HardwareError(f"the UR controller at {self.host} did not answer RTDE request "
                                    f"'{chr(kind)}' within {timeout_s:.0f} s")
            sock.settimeout(remaining)
            chunk = sock.recv(4096)
            if not chunk:
                raise HardwareError(f"the UR controller at {self.host} closed RTDE during set-up"
                                    + (f" ({self.events[-1]})" if self.events else ""))
            buffer += chunk

    def _send_inputs(self) -> None:
        values: dict[str, object] = {"input_int_register_24": self._counter, "input_int_register_25": self._command}
        for i in range(6):
            values[f"input_double_register_{24 + i}"] = self._targets[i]
        data = self._inputs.pack(values)
        try:
            with self._send_lock:
                self._sock.sendall(data)
                self.wire_sent += 1
        except (OSError, AttributeError) as exc:
            self._error = self._error or f"RTDE to the UR controller at {self.host} failed: {exc}"
            raise HardwareError(self._error) from None

    def _read_loop(self) -> None:
        buffer = bytearray()
        sock = self._sock
        sock.settimeout(0.05)
        while not self._quit.is_set():
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""                 # the controller went away: the same as an orderly close
            except OSError as exc:
                self._error = self._error or f"RTDE to the UR controller at {self.host} failed: {exc}"
                break
            if not chunk:
                self._closed()
                break
            buffer += chunk
            try:
                packages = w.split(buffer)
            except ProtocolError as exc:
                self._error = f"RTDE from the UR controller is garbled: {exc}"
                break
            for kind, payload in packages:
                if kind == w.DATA_PACKAGE:
                    self._take(self._outputs.unpack(payload))
                    self._took_in(1)
                elif kind == w.TEXT_MESSAGE:
                    self.events.append(f"robot: {w.text_message(payload)}")
        with self._fresh:
            self._fresh.notify_all()
        with self._wire:
            self._wire.notify_all()

    def _closed(self) -> None:
        self._error = self._error or (f"the UR controller at {self.host} closed the RTDE connection"
                                      + (f" ({self.events[-1]})" if self.events else ""))

    def _check_connection(self) -> None:
        """Whether the controller has closed RTDE, asked of the socket now (a peek), not left to the receiver
        thread: the servo loop writes no package of its own any more, and in simulated time a closed
        connection must be seen at the same tick on every run."""
        sock = self._sock
        if sock is None or self._error:
            return
        try:
            # select first: the socket has a timeout, and its recv would wait that long for data.
            readable, _, _ = select.select([sock], [], [], 0.0)
            if readable and sock.recv(1, socket.MSG_PEEK) == b"":
                self._closed()
        except (BlockingIOError, InterruptedError, TimeoutError):
            pass                            # open (the receiver thread took what was waiting)
        except (OSError, ValueError):
            self._closed()                  # reset by the peer, or closed here

    def _take(self, values: dict[str, object]) -> None:
        now_ns = self.now_ns()
        status, text = self._judge(values)
        axes = []
        for k, name in enumerate(self.axis_names):
            j = self.joint_index[k]
            axes.append(AxisState(name, float(values["actual_q"][j]), float(values["actual_qd"][j]),
                                  float(values["target_q"][j]) - float(values["actual_q"][j]), status,
                                  0 if status is not DriveStatus.FAULT else 1, text))
        state = RigState(now_ns, int(round(float(values["timestamp"]) * 1e6)), tuple(axes))
        self.stats.received += 1
        with self._fresh:
            self._values = values
            self._latest = state
            self._fresh.notify_all()
        self._answer(float(values["timestamp"]))

    def _answer(self, timestamp_s: float) -> None:
        """This cycle's inputs, at once: from the queue while following (:mod:`motionctl.hal.cycles`)."""
        with self._fresh:
            if self.enabled and self._command == FOLLOW:
                self._targets, alive = self._cycles.answer(int(round(timestamp_s * self.controller_hz)))
                if self._cycles.fault and self._fault is None:
                    self._fault = self._cycles.fault
                    self.events.append(self._fault)
            else:
                alive = True
            if alive:
                self._counter = (self._counter + 1) & 0x7FFFFFFF
            try:
                self._send_inputs()
            except HardwareError:
                return                      # said by the next read or write (self._error)
        self._cycle_out()

    def _judge(self, values: dict[str, object]) -> tuple[DriveStatus, str]:
        """What the robot's modes and the program's state mean for every joint, in words."""
        robot, safety = int(values["robot_mode"]), int(values["safety_mode"])
        runtime, program = int(values["runtime_state"]), int(values["output_int_register_24"])
        if safety not in (w.SAFETY_NORMAL, w.SAFETY_REDUCED):
            return DriveStatus.FAULT, f"the robot is in {w.SAFETY_MODES.get(safety, f'safety mode {safety}')}"
        if robot != w.ROBOT_RUNNING:
            return DriveStatus.FAULT if self.enabled else DriveStatus.DISABLED, \
                f"the robot is {w.ROBOT_MODES.get(robot, f'in robot mode {robot}')}"
        if not self.enabled:
            return DriveStatus.READY, ""
        if self._fault:
            return DriveStatus.FAULT, self._fault
        if program in (ENDED_STALE,):
            return DriveStatus.FAULT, f"the control program {PROGRAM_STATES[program]}"
        if runtime != w.RUNTIME_PLAYING and program in (HOLDING, FOLLOWING, STOPPED):
            return DriveStatus.FAULT, f"the control program was {w.RUNTIME_STATES.get(runtime, 'stopped')} " \
                                      "on the robot (pendant or dashboard)"
        if program == STOPPED:
            return DriveStatus.QUICK_STOP, "stopped by motionctl's E-stop (stopj)"
        if program in (HOLDING, FOLLOWING) and runtime == w.RUNTIME_PLAYING:
            return DriveStatus.ENABLED, ""
        return DriveStatus.READY, "the control program is starting"

    # -- backend hooks ----------------------------------------------------------------------------------
    def _do_open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.rtde_port), timeout=2.0)
        except OSError as exc:
            raise HardwareError(f"cannot reach the UR controller's RTDE at {self.host}:{self.rtde_port}: {exc}") \
                from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        try:
            if self._request(w.REQUEST_PROTOCOL_VERSION, struct.pack(">H", 2)) != b"\x01":
                raise ProtocolError(f"the UR controller at {self.host} refused RTDE protocol version 2")
            major, minor, bugfix, build = struct.unpack(">IIII", self._request(w.GET_URCONTROL_VERSION, b"")[:16])
            self.controller_version = f"{major}.{minor}.{bugfix}.{build}"
            if (major, minor) < (3, 4):
                raise ProtocolError(f"controller software {self.controller_version} has no RTDE (3.4 or later)")
            # A CB3 (software 3.x) runs its control loop, and RTDE, at 125 Hz: it plays every 4th tick of a
            # 500 Hz rig; servoj's time is its 8 ms cycle.
            self.controller_hz = CB3_RATE_HZ if major < 5 else RATE_HZ
            self.ticks_per_cycle = self.rate_hz // self.controller_hz
            self._cycles = CycleQueue(max(self.lookahead_ticks, self.ticks_per_cycle), self.ticks_per_cycle,
                                      self._amax_per_cycle())
            self._outputs = w.recipe_from_reply(
                self._request(w.SETUP_OUTPUTS, w.setup_outputs(self.controller_hz, OUTPUTS)[3:]), OUTPUTS, "outputs")
            self._inputs = w.recipe_from_reply(self._request(w.SETUP_INPUTS, w.setup_inputs(INPUTS)[3:]),
                                               INPUTS, "input registers 24-29")
            if self._request(w.START, b"") != b"\x01":
                raise ProtocolError(f"the UR controller at {self.host} refused to start RTDE")
        except (HardwareError, OSError) as exc:
            sock.close()
            self._sock = None
            if isinstance(exc, HardwareError):
                raise
            raise HardwareError(f"RTDE set-up with the UR controller at {self.host} failed: {exc}") from None
        self._error = None
        self._quit.clear()
        self._thread = threading.Thread(target=self._read_loop, name=f"rtde-{self.host}", daemon=True)
        self._thread.start()

    def _do_close(self) -> None:
        if self._sock is not None and self._error is None and self.enabled:
            self._command = END
            try:
                self._send_inputs()
            except HardwareError:
                pass
        self._quit.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        if self._sock is not None:
            try:
                self._sock.sendall(w.package(w.PAUSE))
            except OSError:
                pass
            self._sock.close()
        self._sock = None

    def _do_enable(self, timeout_s: float) -> None:
        with self._fresh:
            if not self._values:
                self._fresh.wait(timeout_s)
            values = dict(self._values)
        if not values:
            raise HardwareError(self._error or f"no state from the UR controller at {self.host}")
        robot, safety = int(values["robot_mode"]), int(values["safety_mode"])
        if safety not in (w.SAFETY_NORMAL, w.SAFETY_REDUCED):
            raise HardwareError(f"the robot is in {w.SAFETY_MODES.get(safety, f'safety mode {safety}')}: clear it "
                                "on the pendant (inspect the cause first), then enable again")
        if robot != w.ROBOT_RUNNING:
            raise HardwareError(f"the robot is {w.ROBOT_MODES.get(robot, f'in robot mode {robot}')}: power it on "
                                "and release the brakes on the pendant, then enable again")
        # Hold where the arm is until the servo loop streams: the program starts holding there.
        with self._fresh:
            self._targets = [float(values["actual_q"][j]) for j in range(6)]
            self._cycles.start(self._targets)
            self._command = HOLD
            self._fault = None
        self._send_program()
        if self.lockstep:
            return                   # in simulated time the program's first cycles come with the ticks
        wait_s = max(timeout_s, PROGRAM_START_S)
        deadline = time.monotonic() + wait_s
        with self._fresh:
            while int(self._values.get("output_int_register_24", 0)) not in (HOLDING, FOLLOWING) or \
                    int(self._values.get("runtime_state", 0)) != w.RUNTIME_PLAYING:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._error:
                    raise HardwareError(self._error or "the robot did not start motionctl's control program "
                                        f"within {wait_s:.1f} s (is it in remote control?)")
                self._fresh.wait(remaining)

    def _send_program(self) -> None:
        program = servo_program(self.decel, 1.0 / self.controller_hz)
        try:
            with socket.create_connection((self.host, self.script_port), timeout=2.0) as script:
                script.sendall(program.encode("utf-8"))
        except OSError as exc:
            raise HardwareError(f"cannot send the control program to {self.host}:{self.script_port}: {exc}") \
                from None

    def _do_disable(self) -> None:
        self._command = END
        self._counter += 1
        self._send_inputs()

    def _do_quick_stop(self) -> None:
        self._command = STOP
        self._counter += 1
        try:
            self._send_inputs()
        except HardwareError:
            pass                # a dead link: the program stops the arm itself when its registers go stale

    def _amax_per_cycle(self) -> list[float]:
        cycle = 1.0 / self.controller_hz
        return [a * cycle * cycle for a in self._amax]

    def _do_fault_reset(self) -> None:
        with self._fresh:
            values = dict(self._values)
            self._fault = None
        safety = int(values.get("safety_mode", w.SAFETY_NORMAL))
        if safety not in (w.SAFETY_NORMAL, w.SAFETY_REDUCED):
            raise HardwareError(f"the robot is in {w.SAFETY_MODES.get(safety, 'a safety stop')}: inspect the cause, "
                                "unlock it on the pendant, then reset")
        self._command = HOLD        # the next enable sends the program again

    def _do_probe(self) -> None:
        """Nothing to send: the controller publishes its state every cycle on its own."""

    def _do_write(self, sequence: int, counts: list[int], tick: int) -> None:
        """Queue tick ``tick``'s targets; the receiver thread answers the controller's cycles from them."""
        self._check_connection()
        if self._error:
            raise HardwareError(self._error)
        targets = [0.0] * 6
        for k, c in enumerate(counts):
            targets[self.joint_index[k]] = c / COUNTS_PER_RAD
        with self._fresh:
            self._cycles.put(tick, targets)
            if self.enabled and self._command == HOLD:
                self._command = FOLLOW

    def _do_read(self, timeout_s: float) -> RigState | None:
        with self._fresh:
            if self._latest is None and timeout_s > 0 and not self._error:
                self._fresh.wait(timeout_s)
            state, self._latest = self._latest, None
        if state is None and self._error:
            raise HardwareError(self._error)
        return state

    @property
    def link_broken(self) -> bool:
        return self._error is not None
