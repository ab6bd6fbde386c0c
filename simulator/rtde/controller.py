"""A fake Universal Robots e-Series controller: RTDE (30004), the secondary interface (30002), the dashboard
(29999), an arm that servoes, and motionctl's control program modelled.

It is written from UR's published RTDE guide and public clients (``docs/ur-rtde-facts.md``), never from
motionctl's host driver.  The three servers listen on 127.0.0.1 at free ports (:attr:`UrController.ports`).
Every 2 ms control cycle (:meth:`UrController._cycle`):

1. timed faults act (protective stop, program stop, emergency stop, unplug, stall);
2. if the motionctl program runs, it reads its input registers and moves the arm (:mod:`simulator.rtde.arm`),
   writing its state and the counter it saw to output registers 24 and 25; otherwise the arm brakes to rest;
3. the RTDE client, if started, gets an output data package (at its recipe's frequency).

Time: with ``lockstep=False`` the cycles run in the server thread on absolute deadlines of
``time.monotonic_ns()``.  With ``lockstep=True`` the host's runtime calls :meth:`UrController.lockstep_tick`
once per 2 ms tick (``motionctl.runtime.simtime``): it waits until the host's input data packages have
arrived, runs one cycle and returns how many output packages the controller has sent in all.  The model
depends only on what arrived, so two lock-step runs with the same inputs send byte-identical packages.
"""

from __future__ import annotations

import math
import select
import socket
import threading
import time
from typing import Callable, NamedTuple, Sequence

from motionctl.errors import HardwareError, InputError
from motionctl.spec.rig import Rig
from simulator.rtde import wire as w
from simulator.faults import FaultInjector, FaultKind
from simulator.rtde.arm import GAIN, JOINTS, LOOKAHEAD_S, Joint, ServoProgram, UrArm
from simulator.rtde.session import RtdeSession
from simulator.rtde.robot import UrRobot
from simulator.rtde.text import GREETING, ScriptAssembler, dashboard_reply

#: Limits of a UR joint no rig axis is bound to (it stays where it is; these only bound its braking).
DEFAULT_VMAX = math.pi
DEFAULT_AMAX = 2 * math.pi
MAX_LATE_CYCLES = 50              # wall time: further behind than this, the cycle clock skips ahead


class UrPorts(NamedTuple):
    rtde: int            # stands for 30004
    secondary: int       # stands for 30002
    dashboard: int       # stands for 29999


class UrController(UrRobot):
    def __init__(self, rig: Rig, faults: FaultInjector | None = None, *, lockstep: bool = False,
                 initial: Sequence[float] | None = None, frequency_hz: float | None = None,
                 log: Callable[[str], None] | None = None, powered: bool = False,
                 version: tuple[int, int, int, int] = w.CONTROLLER_VERSION) -> None:
        # A CB3 (software 3.x) runs its control loop at 125 Hz, an e-Series (5.x) at 500 Hz.
        self.version = version
        if frequency_hz is None:
            frequency_hz = w.CB3_FREQUENCY_HZ if version[0] < 5 else w.MAX_FREQUENCY_HZ
        if not 0 < frequency_hz <= w.MAX_FREQUENCY_HZ:
            raise InputError(f"frequency_hz must be within 0..{w.MAX_FREQUENCY_HZ:g}, not {frequency_hz}")
        self.rig = rig
        self.faults = faults or FaultInjector()
        self.lockstep = lockstep
        self.frequency_hz = float(frequency_hz)
        self.period = 1.0 / self.frequency_hz
        self._log = log or (lambda message: None)
        start = list(rig.park if initial is None else initial)
        if len(start) != len(rig.axes):
            raise InputError(f"initial needs {len(rig.axes)} values (the rig's axes), got {len(start)}")
        self._initial = [float(v) for v in start]
        self.arm = UrArm(self._bind(rig), omega=math.sqrt(GAIN / LOOKAHEAD_S), dt=self.period)
        # Registers and state.
        self.inputs: dict[str, float | int] = {name: 0.0 if kind == "DOUBLE" else 0
                                               for name, kind in w.INPUTS.items()}
        self.outputs_int = [0] * w.REGISTERS
        self.outputs_double = [0.0] * w.REGISTERS
        self.robot_mode = w.RUNNING if powered else w.POWER_OFF
        self.safety_mode = w.NORMAL
        self.runtime_state = w.STOPPED
        self.program: ServoProgram | None = None
        self.program_text: str | None = None
        self.program_name = "<unnamed>"
        self.events: list[str] = []
        self.cycles = 0
        self.inputs_received = 0          # RTDE input data packages, in all (lock-step: the host's units)
        self.outputs_sent = 0             # RTDE output data packages, in all
        self.late_cycles = 0
        self._program_cycle0: int | None = None   # the cycle the first program started (fault time base)
        self._protective_cycle = 0
        self._estop_release: float | None = None
        self._estop_power_off = False
        self._last_tick: int | None = None
        # Sockets and threads.
        self._lock = threading.RLock()
        self._arrived = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: dict[str, socket.socket] = {}
        self.session: RtdeSession | None = None
        self._dashboards: dict[socket.socket, bytearray] = {}
        self._secondaries: dict[socket.socket, ScriptAssembler] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)

    def _bind(self, rig: Rig) -> list[Joint]:
        """Rig axes -> UR joints: ``[hardware] address`` 1-6 is base, shoulder, elbow, wrist 1-3."""
        if rig.hardware is None:
            raise HardwareError(f'rig "{rig.name}" has no [hardware] section: no joint addresses for the UR')
        self._axis_of: list[int | None] = [None] * JOINTS
        joints = [Joint(DEFAULT_VMAX, DEFAULT_AMAX) for _ in range(JOINTS)]
        for index, axis in enumerate(rig.axes):
            address = rig.hardware.address.get(axis.name)
            if not isinstance(address, int) or not 1 <= address <= JOINTS:
                continue                          # not on this controller
            if axis.linear:
                raise HardwareError(f'axis "{axis.name}" is linear: UR joint {address} is rotary')
            if self._axis_of[address - 1] is not None:
                raise HardwareError(f"two rig axes are bound to UR joint {address}")
            self._axis_of[address - 1] = index
            joints[address - 1] = Joint(axis.vmax, axis.amax, axis.min, axis.max)
        for joint, axis in zip(joints, self._axis_of):
            joint.q = self._initial[axis] if axis is not None else 0.0
            joint.hold_here()
        return joints

    # -- observable state -----------------------------------------------------------------------------------
    @property
    def ports(self) -> UrPorts:
        return UrPorts(*(self._listeners[k].getsockname()[1] for k in ("rtde", "secondary", "dashboard")))

    @property
    def positions(self) -> list[float]:
        """The arm's joint positions, SI, in the rig's axis order (axes not on this controller: as given)."""
        with self._lock:
            out = list(self._initial)
            for joint, axis in zip(self.arm.joints, self._axis_of):
                if axis is not None:
                    out[axis] = joint.q
            return out

    @property
    def program_state(self) -> int:
        """The program's state as it reports it in output_int_register_24."""
        return self.outputs_int[24]

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> UrController:
        if self._thread is not None:
            return self
        for name in ("rtde", "secondary", "dashboard"):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen(4)
            listener.setblocking(False)
            self._listeners[name] = listener
        self._thread = threading.Thread(target=self._serve, name="sim-ur", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        with self._lock:
            if self.session is not None:
                self.session.close("controller stopped")
            for sock in [*self._dashboards, *self._secondaries, *self._listeners.values(),
                         self._wake_r, self._wake_w]:
                sock.close()
            self._dashboards.clear()
            self._secondaries.clear()

    def __enter__(self) -> UrController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # -- the server thread ----------------------------------------------------------------------------------
    def _serve(self) -> None:
        period_ns = round(self.period * 1e9)
        origin = time.monotonic_ns()
        k = 0
        while not self._stop.is_set():
            with self._lock:
                readers = [self._wake_r, *self._listeners.values(), *self._dashboards, *self._secondaries]
                writers = []
                if self.session is not None:
                    readers.append(self.session.sock)
                    if self.session.pending:
                        writers.append(self.session.sock)
            next_ns = origin + (k + 1) * period_ns
            timeout = 0.2 if self.lockstep else max(0.0, (next_ns - time.monotonic_ns()) / 1e9)
            try:
                ready, writable, _ = select.select(readers, writers, [], timeout)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                continue                                  # a socket was closed meanwhile: look again
            with self._lock:
                self._service(ready, writable)
                if not self.lockstep:
                    due = (time.monotonic_ns() - origin) // period_ns
                    if due - k > MAX_LATE_CYCLES:
                        self.late_cycles += due - k - 1
                        k = due - 1
                    while k < due:
                        k += 1
                        self._cycle()
                self._arrived.notify_all()

    def _service(self, ready: list[socket.socket], writable: list[socket.socket]) -> None:
        """Accept, read and write whatever the sockets are ready for (under the lock)."""
        if self._wake_r in ready:
            try:
                self._wake_r.recv(4096)
            except OSError:
                pass
        for name, listener in self._listeners.items():
            if listener in ready:
                self._accept(name, listener)
        if self.session is not None and (self.session.sock in ready or self.session.sock in writable):
            self.session.flush()
            if not self.session.closed:
                self.session.receive()
        for sock in [s for s in self._dashboards if s in ready]:
            self._dashboard_read(sock)
        for sock in [s for s in self._secondaries if s in ready]:
            self._secondary_read(sock)

    def _accept(self, name: str, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if name == "rtde":
            if self.session is not None:
                sock.sendall(w.text_message("another RTDE client is connected", "RTDE", w.ERROR))
                sock.close()
                self.event("rtde: second client refused")
                return
            self.session = RtdeSession(sock, self, self.event)
            self.event("rtde: client connected")
        elif name == "dashboard":
            sock.setblocking(False)
            self._dashboards[sock] = bytearray()
            sock.sendall((GREETING + "\n").encode())
        else:
            sock.setblocking(False)
            self._secondaries[sock] = ScriptAssembler()

    def _drain(self) -> None:
        """Lock-step: act on everything the sockets already hold, before the cycle (under the lock).

        Round after round until nothing is ready: a connection accepted in one round (a script sent just
        before the tick) has its text read in the next, whether or not the server thread accepted it first,
        so the program starts on the same cycle in every run."""
        for _ in range(8):
            readers = [*self._listeners.values(), *self._dashboards, *self._secondaries]
            if self.session is not None:
                readers.append(self.session.sock)
            try:
                ready, _, _ = select.select(readers, [], [], 0)
            except (OSError, ValueError):
                return
            if not ready:
                return
            self._service(ready, [])

    def _read_text(self, sock: socket.socket, table: dict) -> bytes | None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            data = b""
        if not data:
            table.pop(sock, None)
            sock.close()
            return None
        return data

    def _dashboard_read(self, sock: socket.socket) -> None:
        data = self._read_text(sock, self._dashboards)
        if not data:
            return
        buffer = self._dashboards[sock]
        buffer += data
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            reply, close = dashboard_reply(self, line.decode("utf-8", "replace"))
            self.event(f"dashboard: {line.decode('utf-8', 'replace').strip()} -> {reply}")
            try:
                sock.sendall((reply + "\n").encode())
            except OSError:
                close = True
            if close:
                self._dashboards.pop(sock, None)
                sock.close()
                return

    def _secondary_read(self, sock: socket.socket) -> None:
        data = self._read_text(sock, self._secondaries)
        if data:
            for text in self._secondaries[sock].feed(data):
                self.load_program(text)

    # -- RTDE session callbacks -----------------------------------------------------------------------------
    def close_rtde(self, reason: str) -> None:
        if self.session is not None:
            self.session.close(reason)

    def session_closed(self, session: RtdeSession, reason: str) -> None:
        if self.session is session:
            self.session = None
            self.event(f"rtde: connection closed ({reason})")
            self._arrived.notify_all()

    def apply_inputs(self, values: dict[str, object]) -> None:
        self.inputs.update(values)            # type: ignore[arg-type]
        self.inputs_received += 1
        self._arrived.notify_all()

    # -- lock-step ------------------------------------------------------------------------------------------
    def lockstep_tick(self, tick: int, host_units: int, timeout_s: float = 10.0) -> int:
        """One control cycle of simulated time, once ``host_units`` RTDE input data packages have arrived in
        all.  Returns the output data packages sent in all.  Skipped ticks run as cycles without inputs."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            self._drain()
            while self.inputs_received < host_units and self.session is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(min(remaining, 0.05))
                self._drain()
            if self._last_tick is not None and tick > self._last_tick + 1:
                for _ in range(tick - self._last_tick - 1):
                    self._cycle()
            self._last_tick = tick
            self._cycle()
            return self.outputs_sent

    # -- the control cycle ----------------------------------------------------------------------------------
    def _cycle(self) -> None:
        self.cycles += 1
        self._timed_faults()
        if self.runtime_state == w.PLAYING and self.program is not None:
            self._run_program(self.program)
        else:
            self.arm.brake()
        if self._estop_power_off and self.arm.at_rest:
            self._estop_power_off = False
            self.robot_mode = w.POWER_OFF
            self.event("robot powered off after the emergency stop")
        self._send_outputs()

    def _send_outputs(self) -> None:
        session = self.session
        if session is None or not session.output_due():
            return
        if self.faults.active(FaultKind.STALL, self.now()) and self._program_cycle0 is not None:
            return
        assert session.output is not None
        if session.send(session.output.pack(self.output_values(session.output.names))):
            self.outputs_sent += 1

