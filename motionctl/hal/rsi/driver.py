"""KUKA RSI backend (``rsi://BIND:PORT``): a KUKA arm (and its linear unit) through RSI's Ethernet object.

The robot controller is the clock: every interpolation cycle (4 ms, ``#IPO_FAST``) it sends one ``<Rob>``
datagram to the address this driver binds, and expects one ``<Sen>`` answer, echoing its ``IPOC``, within
the cycle; it counts late or missing answers and ends RSI past its limit.  So this driver never sends
unasked, and it answers from its receiver thread the moment a datagram arrives, never waiting for the servo
loop.  The servo loop keeps its own clock and streams setpoints ``lookahead_ticks`` ahead, tagged with the
tick they are for, into a queue here (the same contract as serial protocol 1.1's device queue): the answer
to the robot's cycle ``r`` carries the setpoint of host tick ``tick(r) + k``, the cycle in which the robot
applies it (``k`` ticks per 4 ms cycle: 1 at 250 Hz, 2 in a 500 Hz rig).  ``tick(r)`` is fixed when
streaming starts (the host's current tick, ``lookahead`` behind the newest setpoint) and re-fixed whenever
the rig holds still, so the two clocks may drift apart between moves (:mod:`motionctl.hal.cycles`).

A host that falls behind by more than the lookahead leaves the queue dry.  A real controller given the same
correction twice stops dead, which at speed is a jump its own monitoring punishes; instead this driver
continues along the last direction, slowing uniformly to rest within every axis' acceleration limit, and
latches a fault saying so (the counterpart of the serial device's own stop along its queued path).

Corrections are absolute (``RSI_ON(#ABSOLUTE)``): the total correction from where RSI started (``ASPos``,
``ESPos``).  Rig axes bind to RSI axes by ``[hardware] address``: 1-6 are A1-A6, 7-12 are E1-E6.  Units on
the wire: degrees, and mm for a linear external axis; four decimals.  Setup of the controller, the datagram
layout and the KRL program: docs/kuka-rsi.md.
"""

from __future__ import annotations

import math
import socket
from collections import deque
import threading
import time

from motionctl.errors import HardwareError, InputError, ProtocolError
from motionctl.hal.rsi import datagrams
from motionctl.hal.cycles import CycleQueue
from motionctl.hal.driver import AxisScale, AxisState, Driver, DriveStatus, RigState
from motionctl.hal.registry import TransportUrl

#: One interpolation cycle of ``#IPO_FAST``: the only cycle motionctl supports (one per servo tick at 250 Hz,
#: one per k ticks in a rig at k x 250 Hz).
IPO_MS = 4
RATE_HZ = 1000 // IPO_MS
#: The cycles RSI has: #IPO_FAST and #IPO.
IPO_CYCLES_MS = (4, 12)
#: Wire resolution: 0.0001 degree (rotary) or 0.0001 mm (linear) per count.
COUNTS_PER_WIRE_UNIT = 10_000
#: No datagram for this long (on the run's clock) while RSI was running: the robot has ended RSI.
SILENCE_S = 0.1
DEFAULT_LOOKAHEAD_MS = 60.0          # as the serial queue's: rides through the stalls measured here
#: A robot that reads the corrections as relative ones is told by the arm sitting where the summed
#: corrections put it, more than 0.5 degree (or mm) from where they mean, for 3 cycles in a row, comparing
#: with the last 4 answers (the arm follows a cycle or two behind).
MISREAD_COUNTS = 0.5 * COUNTS_PER_WIRE_UNIT
MISREAD_CYCLES = 3
MISREAD_LAG_CYCLES = 4
#: Datagrams in a row whose IPOC steps say the robot's cycle is not the rig's ``ipo_ms``.
CYCLE_MISMATCH_DATAGRAMS = 3


def wire_axis(address: int) -> str:
    if 1 <= address <= 6:
        return datagrams.ROBOT_AXES[address - 1]
    if 7 <= address <= 12:
        return datagrams.EXTERNAL_AXES[address - 7]
    raise InputError(f"address {address} is not an RSI axis (1-6 are A1-A6, 7-12 are E1-E6)")


class RsiDriver(Driver):
    schemes = ("rsi",)

    def __init__(self, rig, url: str, **options: object) -> None:
        super().__init__(rig, url, **options)
        parsed = TransportUrl.parse(url)
        self.bind_address = (parsed.host, int(parsed.path))
        rate = int(options.get("rate_hz") or (rig.hardware.servo_rate_hz if rig.hardware else RATE_HZ))
        try:
            #: The robot's cycle: 4 ms (RSI_ON(..., #IPO_FAST)) or 12 ms (#IPO), as its KRL program says.
            self.ipo_ms = int(parsed.options.get("ipo_ms", options.get("ipo_ms", IPO_MS)))
        except ValueError:
            raise InputError("ipo_ms must be 4 (#IPO_FAST) or 12 (#IPO)") from None
        if self.ipo_ms not in IPO_CYCLES_MS:
            raise InputError(f"ipo_ms must be 4 (#IPO_FAST) or 12 (#IPO), not {self.ipo_ms}")
        if rate * self.ipo_ms % 1000:
            raise InputError(f"KUKA RSI answers one {self.ipo_ms} ms interpolation cycle every "
                             f"{1000 // self.ipo_ms if self.ipo_ms == 4 else '83.3'} Hz: run this rig at 250, 500 or "
                             f"1000 Hz (a whole number of ticks per cycle), not {rate} Hz")
        #: Servo ticks per robot cycle: 1 at 250 Hz with #IPO_FAST; a faster rig (its UR arm or CAN drives
        #: need 500 Hz), or the 12 ms #IPO cycle, plays every k-th tick on the KUKA controller.
        self.ticks_per_cycle = rate * self.ipo_ms // 1000
        lookahead_ms = float(parsed.options.get("lookahead_ms", options.get("lookahead_ms", DEFAULT_LOOKAHEAD_MS)))
        self.lookahead_ticks = max(self.ticks_per_cycle, int(round(lookahead_ms * rate / 1000.0)))
        address = rig.hardware.address
        self.wire_names = tuple(wire_axis(address[s.name]) for s in self.scales)
        if len(set(self.wire_names)) != len(self.wire_names):
            raise InputError(f'rig "{rig.name}": two axes bound to the same RSI axis')
        linear = {a.name: a.linear for a in rig.axes}
        # Our own scale, whatever the rig's encoder counts: one count is one unit of the wire's last decimal.
        self.scales = tuple(AxisScale(s.name, COUNTS_PER_WIRE_UNIT * (1000.0 if linear.get(s.name) else
                                                                     180.0 / math.pi)) for s in self.scales)
        self._externals = any(w.startswith("E") for w in self.wire_names)
        # The robot sends first, once its operator starts the program: open() waits for its first datagram
        # (in simulated time the simulated controller sends with the first tick: nothing to wait for).
        self.lockstep = bool(options.get("lockstep", False))
        self.start_timeout_s = float(parsed.options.get("wait_s", options.get("wait_s", 60.0)))
        limits = {a.name: a for a in rig.axes}
        #: Each axis' acceleration limit in counts per cycle^2 (the dry-queue stop's deceleration).
        dt = self.ipo_ms / 1000.0
        self._amax_counts = [limits[s.name].amax * s.counts_per_unit * dt * dt if s.name in limits else 0.0
                             for s in self.scales]
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._quit = threading.Event()
        self._mutex = threading.Lock()
        self._fresh = threading.Condition(self._mutex)
        # What the servo loop streamed, and what each robot cycle is answered from it (counts).
        self._cycles = CycleQueue(self.lookahead_ticks, self.ticks_per_cycle, self._amax_counts)
        self._commanded: list[float] | None = None    # counts answered last (what the robot now heads for)
        self._commanded_seq = -1
        self._start: dict[str, float] | None = None   # ASPos/ESPos of the session
        self._previous_actual: list[float] | None = None
        self._latest: RigState | None = None
        self._alive_ns: int | None = None
        self._robot_delay: int | None = None
        self._session_live = False
        self._ended: str | None = None                 # why the session ended, in words
        self._stop_asked: str | None = None            # answer <Stop>1</Stop> from now on, and why
        self._fault: str | None = None                 # a latched fault of this driver (dry queue)
        self._broken: str | None = None
        self._told_malformed = False
        self.robot_late_answers = 0
        self.events: list[str] = []
        # The check that the robot reads the corrections as absolute ones (_corrections_misread).
        self._summed = [0.0] * len(self.wire_names)
        self._absolute_model: deque[list[float]] = deque(maxlen=MISREAD_LAG_CYCLES)
        self._relative_model: deque[list[float]] = deque(maxlen=MISREAD_LAG_CYCLES)
        self._misread_cycles = 0
        # The check that the robot's cycle is the rig's ipo_ms (_cycle_mismatch).
        self._last_ipoc: int | None = None
        self._mismatched = 0

    # -- receiving and answering (the receiver thread) ------------------------------------------------
    def _receive_loop(self) -> None:
        sock = self._sock
        while not self._quit.is_set() and sock is not None:
            try:
                data, sender = sock.recvfrom(datagrams.MAX_DATAGRAM + 1)
            except socket.timeout:
                continue
            except OSError as exc:
                self._broken = f"the RSI socket failed: {exc}"
                break
            try:
                self._answer(datagrams.parse_robot(data), sender)
            except ProtocolError as exc:
                self.stats.drop("malformed datagram")
                if not self._told_malformed:         # once: a misconfigured controller sends 250 a second
                    self._told_malformed = True
                    self.events.append(f"malformed datagram from {sender[0]}:{sender[1]}: {exc}")
            finally:
                self._took_in(1)
        with self._fresh:
            self._fresh.notify_all()

    def _answer(self, datagram: datagrams.RobotDatagram, sender: tuple[str, int]) -> None:
        now_ns = self.now_ns()
        with self._fresh:
            missing = [w for w in self.wire_names if w not in datagram.actual or w not in datagram.start]
            if missing:
                raise ProtocolError(f"the datagram has no position for {missing[0]} (see docs/kuka-rsi.md: the "
                                    "Ethernet configuration must send AIPos, ASPos and, for a linear unit, "
                                    "EIPos and ESPos)")
            if self._start != datagram.start:
                self._new_session(datagram)
            actual = [datagram.actual[w] * COUNTS_PER_WIRE_UNIT for w in self.wire_names]
            misread = self._cycle_mismatch(datagram.ipoc) or self._corrections_misread(actual)
            if misread and self._stop_asked is None:
                self._stop_asked = self._fault = misread
                self.events.append(misread)
            target, sequence = self._next_target(datagram.ipoc)
            self._models(target)
            stop = self._stop_asked is not None
            correction = {w: (target[i] / COUNTS_PER_WIRE_UNIT - self._start[w])
                          for i, w in enumerate(self.wire_names)}
            answer = datagrams.format_answer(datagram.ipoc, correction, externals=self._externals, stop=stop)
            applied, applied_seq = self._commanded, self._commanded_seq
            self._commanded, self._commanded_seq = target, sequence
            self._count_robot_delay(datagram.delay)
            self._alive_ns = now_ns
            self._session_live = True
            self._latest = self._state(now_ns, datagram, actual, applied, applied_seq)
            self._previous_actual = actual
            self.stats.received += 1
            self._fresh.notify_all()
        try:
            self._sock.sendto(answer, sender)
        except (OSError, AttributeError) as exc:
            self._ended = f"cannot answer the robot at {sender[0]}:{sender[1]}: {exc}"
            return
        self.wire_sent += 1
        self._cycle_out()

    def _models(self, target: list[float]) -> None:
        """Where the robot heads after this answer if it reads it as motionctl means it (absolute: start +
        correction) and if it adds it to the last (relative): the last few of each, for the check."""
        start = [self._start[w] * COUNTS_PER_WIRE_UNIT for w in self.wire_names]
        self._summed = [total + (t - s) for total, t, s in zip(self._summed, target, start)]
        self._absolute_model.append(list(target))
        self._relative_model.append([s + total for s, total in zip(start, self._summed)])

    def _corrections_misread(self, actual: list[float]) -> str | None:
        """Whether the robot adds each correction to the last (its program says RSI_ON(#RELATIVE)).

        motionctl sends absolute corrections: the total from where RSI started.  A robot that reads them
        as relative ones adds each to the last, and the arm runs away from the checked path faster and
        faster.  Its signature: the arm is where the summed corrections put it, not where the answers put
        it, cycle after cycle (each compared over the last few answers: the arm follows with a delay).
        """
        if len(self._absolute_model) < 2:
            return None
        def off(models: deque) -> list[float]:
            """Per axis, how far the arm is from the nearest of ``models``' recent commands."""
            return min(([abs(a - m) for a, m in zip(actual, model)] for model in models), key=max)
        gaps = off(self._absolute_model)
        absolute, relative = max(gaps), max(off(self._relative_model))
        if absolute > MISREAD_COUNTS and relative < absolute / 4:
            self._misread_cycles += 1
        else:
            self._misread_cycles = 0
        if self._misread_cycles < MISREAD_CYCLES:
            return None
        worst = gaps.index(absolute)
        unit = "mm" if self.scales[worst].counts_per_unit == COUNTS_PER_WIRE_UNIT * 1000.0 else "deg"
        return ("the robot adds each correction to the last, as RSI_ON(#RELATIVE) does: motionctl sends absolute "
                "corrections, so its program must say RSI_ON(#ABSOLUTE, #IPO_FAST) (docs/kuka-rsi.md). RSI "
                f"stopped with {self.wire_names[worst]} {absolute / COUNTS_PER_WIRE_UNIT:.1f} {unit} off the path")

    def _cycle_mismatch(self, ipoc: int) -> str | None:
        """Whether the robot's interpolation cycle is not the one the rig's URL names (``ipo_ms``).

        IPOC counts milliseconds and steps by the robot's cycle (a lost datagram makes one step a multiple
        of it).  Answered as if its cycle were another, every answer would stand for the wrong stretch of
        the plan and the dry-queue stop would brake at the wrong rate.  A 12 ms robot steps by 12 every
        datagram; a 4 ms robot by 4 or 8, never a multiple of 12 several times in a row.  Seen before any
        motion (the robot sends from the moment RSI starts), so the stop ends the session at rest.
        """
        last, self._last_ipoc = self._last_ipoc, ipoc
        if last is None or ipoc <= last:
            return None
        step = ipoc - last
        robot_ms = 12 if self.ipo_ms == 4 and step == 12 else 4 if self.ipo_ms == 12 and step % 12 else None
        self._mismatched = self._mismatched + 1 if robot_ms else 0
        if self._mismatched < CYCLE_MISMATCH_DATAGRAMS:
            return None
        mode = "#IPO_FAST" if robot_ms == 4 else "#IPO"
        return (f"the robot's interpolation cycle is {robot_ms} ms (its IPOC steps by {step} ms; RSI_ON(..., "
                f"{mode})), but the rig says {self.ipo_ms} ms: set ?ipo_ms={robot_ms} in the rig's [hardware] "
                "URL, or change the robot's program (docs/kuka-rsi.md). motionctl stopped RSI before any motion")

    def _new_session(self, datagram: datagrams.RobotDatagram) -> None:
        """The first datagram, or one with another start position: RSI (re)started on the robot."""
        if self._start is not None:
            self.events.append("RSI restarted on the robot (a new start position)")
        self._start = dict(datagram.start)
        self._commanded = [datagram.start[w] * COUNTS_PER_WIRE_UNIT for w in self.wire_names]
        self._cycles.start(self._commanded)
        self._ended, self._robot_delay = None, None
        self._previous_actual = None
        self._summed = [0.0] * len(self.wire_names)
        self._absolute_model.clear()
        self._relative_model.clear()
        self._misread_cycles = 0

    def _next_target(self, ipoc: int) -> tuple[list[float], int]:
        """The counts to answer the cycle stamped ``ipoc`` with, and the sequence they were streamed under
        (the queue's rules: :mod:`motionctl.hal.cycles`)."""
        if self._stop_asked is not None or not self.enabled:
            return self._commanded, self._commanded_seq
        counts, _ = self._cycles.answer(ipoc // self.ipo_ms)
        if self._cycles.fault and self._fault is None:
            self._fault = self._cycles.fault
            self.events.append(self._fault)
        return counts, self._cycles.sequence

    def _count_robot_delay(self, delay: int) -> None:
        if self._robot_delay is not None and delay > self._robot_delay:
            late = delay - self._robot_delay
            self.robot_late_answers += late
            self.stats.drop("late answers counted by the robot", late)
        self._robot_delay = delay

    def _state(self, now_ns: int, datagram: datagrams.RobotDatagram, actual: list[float],
               applied: list[float] | None, sequence: int) -> RigState:
        dt = self.ipo_ms / 1000.0
        if self._fault or self._stop_asked:
            status, text = (DriveStatus.FAULT, self._fault) if self._fault else (DriveStatus.QUICK_STOP,
                                                                                 self._stop_asked)
        else:
            status, text = (DriveStatus.ENABLED if self.enabled else DriveStatus.READY), ""
        axes = []
        for i, name in enumerate(self.axis_names):
            unit = self.scales[i].counts_per_unit
            previous = self._previous_actual[i] if self._previous_actual else actual[i]
            error = (applied[i] - actual[i]) / unit if applied is not None else 0.0
            axes.append(AxisState(name, actual[i] / unit, (actual[i] - previous) / unit / dt, error, status,
                                  0 if status is not DriveStatus.FAULT else 1, text or ""))
        return RigState(now_ns, datagram.ipoc * 1000, tuple(axes), sequence)

    @property
    def listening(self) -> tuple[str, int] | None:
        """The address the robot must send to (the bound one: port 0 in the URL picks a free port)."""
        return self._sock.getsockname() if self._sock is not None else None

    # -- backend hooks ----------------------------------------------------------------------------------
    def _do_open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(self.bind_address)
        except OSError as exc:
            sock.close()
            raise HardwareError(f"cannot listen for the KUKA controller on {self.bind_address[0]}:"
                                f"{self.bind_address[1]}: {exc}") from None
        sock.settimeout(0.05)
        self._sock = sock
        self._quit.clear()
        self._thread = threading.Thread(target=self._receive_loop, name=f"rsi-{self.bind_address[1]}", daemon=True)
        self._thread.start()
        if self.lockstep:
            return
        with self._fresh:
            self._fresh.wait_for(lambda: self._session_live or self._broken is not None, self.start_timeout_s)
        if not self._session_live:
            self._do_close()
            raise HardwareError(f"no datagram from the KUKA controller on {self.bind_address[0]}:"
                                f"{self.bind_address[1]} within {self.start_timeout_s:.0f} s: start the motionctl "
                                "program on the pendant once motionctl listens (docs/kuka-rsi.md)")

    def _do_close(self) -> None:
        if self._session_live and self._ended is None and self._stop_asked is None:
            # End RSI on the robot in an orderly way: the next answer says <Stop>1</Stop>.
            self._stop_asked = "motionctl closed the connection"
            answered = self.wire_sent
            deadline = time.monotonic() + 5 * self.ipo_ms / 1000.0
            while self.wire_sent == answered and time.monotonic() < deadline:
                time.sleep(0.001)
        self._quit.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        if self._sock is not None:
            self._sock.close()
        self._sock = None

    def _session_error(self) -> str | None:
        """Why the robot's session is over (None while it runs), on the run's clock."""
        if self._ended:
            return self._ended
        if self._session_live and self._alive_ns is not None and \
                self.now_ns() - self._alive_ns > SILENCE_S * 1e9:
            late = f"; it had counted {self.robot_late_answers} late answers" if self.robot_late_answers else ""
            self._ended = (f"the KUKA controller stopped sending RSI datagrams: RSI has ended on the robot (a stop "
                           f"on the pendant, its Ethernet timeout or a monitoring limit: its message window says "
                           f"which){late}")
        return self._ended

    def _do_enable(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._fresh:
            while not self._session_live and time.monotonic() < deadline:
                self._fresh.wait(max(0.0, deadline - time.monotonic()))
            ended = self._session_error()
            if not self._session_live or ended:
                raise HardwareError((ended + ". " if ended else "") + "The robot is not in an RSI session: start "
                                    "the motionctl program on the KUKA pendant (docs/kuka-rsi.md)")
            if self._stop_asked or self._fault:
                raise HardwareError(f"reset first: {self._stop_asked or self._fault}")
            self._cycles.retie()

    def _do_disable(self) -> None:
        """The robot holds where it was last sent (RSI itself stays on: the KRL program owns it)."""

    def _do_quick_stop(self) -> None:
        with self._fresh:
            # Every answer from now on asks the controller to end RSI; it brings the arm to rest on its own
            # ramp.  The hardwired E-stop chain of the cell stays the authority (docs/kuka-rsi.md).
            self._stop_asked = self._stop_asked or "E-stop: RSI stop sent to the robot"

    def _do_fault_reset(self) -> None:
        with self._fresh:
            if self._stop_asked is not None or self._session_error():
                raise HardwareError("RSI has ended on the robot: restart the motionctl program on the KUKA "
                                    "pendant, then reset")
            self._fault = None
            self._cycles.clear_fault()

    def _do_probe(self) -> None:
        """Nothing to send: the robot's datagrams come on its own clock (RSI never answers the host)."""

    def _do_write(self, sequence: int, counts: list[int], tick: int) -> None:
        if self._session_error() and self._stop_asked is None:
            raise HardwareError(self._ended)
        with self._fresh:
            self._cycles.put(tick, [float(c) for c in counts], sequence)

    def _do_read(self, timeout_s: float) -> RigState | None:
        with self._fresh:
            if self._latest is None and timeout_s > 0:
                self._fresh.wait(timeout_s)
            state, self._latest = self._latest, None
        if state is None:
            ended = self._session_error()
            if ended and self._stop_asked is None:
                raise HardwareError(ended)
        return state

    @property
    def link_broken(self) -> bool:
        return self._broken is not None
