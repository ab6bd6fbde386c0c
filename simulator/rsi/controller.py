"""A simulated KUKA robot controller running RSI (RobotSensorInterface) with an Ethernet object over UDP.

It plays the robot's side of ``docs/kuka-rsi-facts.md`` in the ROS-Industrial configuration: the KRL
program has called ``RSI_ON(#ABSOLUTE, #IPO_FAST)`` and ``RSI_MOVECORR()``, so every IPO cycle (4 ms) the
controller sends one XML datagram (:mod:`simulator.rsi.datagrams`) to the external system, and takes the
answer that echoes that datagram's IPOC as the total axis correction (AK, EK) relative to where RSI
started (ASPos, ESPos).  It is written from KUKA's published RSI description; it shares nothing with
motionctl's host driver.

Each IPO cycle (:meth:`KukaRsiController._cycle`):

1. the answers that arrived are read; one echoing the last datagram's IPOC is on time.  An on-time
   answer's correction is clamped to the AXISCORR limits, checked against AXISCORRMON and the axes'
   maximum speeds, and becomes the command ``ASPos + correction``.  Otherwise the cycle is late: Delay
   grows and the last correction is held (HOLDON=1); when Delay reaches the Ethernet object's Timeout,
   RSI ends.  ``<Stop>1</Stop>`` ends RSI too.
2. the arm moves: it reports the command of ``follow_cycles`` cycles before (a pure delay, default one
   cycle: the answer to datagram n is applied in the cycle that sends n+1 and reached in datagram n+2).
   Once RSI has ended, the arm brakes to rest on its own ramp (each axis' amax) instead.
3. the next datagram goes out (IPOC + ipo_ms), unless RSI has ended: then nothing more is sent.

Modelling choices (see the facts file):

* Delay counts late or missing answers in a row and goes back to 0 with an on-time answer
  (``timeout_counting="consecutive"``); ``"total"`` counts them all, never resetting.
* The session starts when motionctl listens: datagrams flow from the first cycle, but nothing is counted
  late until the first answer has arrived.  A real controller counts from its first datagram, so on a
  real robot the KRL program is started after motionctl listens.
* The speed check compares the commanded step with the axis' maximum speed (plus ``speed_margin``) over
  the time since the last applied command, so catching up after held cycles is not a speed violation.

Time: with ``lockstep=False``, :meth:`start` runs the cycles in a thread on absolute deadlines of the
monotonic clock.  With ``lockstep=True`` the host's runtime calls :meth:`lockstep_tick` once per servo
tick; the model depends only on what arrives, never on how late a thread woke, so two lock-step runs with
the same answers write byte-identical datagrams.
"""

from __future__ import annotations

import math
import select
import socket
import threading
import time
from collections import deque
from typing import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import InputError
from motionctl.spec.rig import Rig
from simulator.faults import FaultInjector, FaultKind
from simulator.rsi.datagrams import (MM_PER_M, SLOTS, Answer, AnswerError, bind_slots, format_rob,
                                    parse_answer)

STOP_REASON = "stopped by the external system"
ROBOT_STOP_REASON = ("stopped at the robot controller (enabling switch released or program stopped); "
                     "RSI ended and the arm braked to rest")


class KukaRsiController:
    """The robot controller; the host talks to it over UDP like to a real KR C4/KR C5 running RSI."""

    def __init__(self, rig: Rig, host_address: tuple[str, int], faults: FaultInjector | None = None, *,
                 lockstep: bool = False, initial: Sequence[float] | None = None, ipo_ms: int = 4,
                 timeout_packets: int = 100, log: Callable[[str], None] | None = None,
                 timeout_counting: str = "consecutive", follow_cycles: int = 1,
                 axiscorr: Mapping[str, tuple[float, float]] | None = None,
                 axiscorrmon: Mapping[str, float] | None = None, speed_margin: float = 0.05,
                 ipoc_start: int = 1_000_000, sen_type: str | None = "ImFree",
                 bind_host: str = "127.0.0.1") -> None:
        if timeout_counting not in ("consecutive", "total"):
            raise InputError(f'timeout_counting must be "consecutive" or "total", not "{timeout_counting}"')
        if ipo_ms <= 0 or timeout_packets < 1 or follow_cycles < 0:
            raise InputError("ipo_ms and timeout_packets must be positive, follow_cycles not negative")
        self.rig = rig
        self.host_address = host_address
        self.faults = faults or FaultInjector()
        self.lockstep = lockstep
        self.ipo_ms = ipo_ms
        self.period = ipo_ms / 1000.0
        self.timeout_packets = timeout_packets
        self.timeout_counting = timeout_counting
        self.speed_margin = speed_margin
        self.sen_type = sen_type
        self.log = log or (lambda message: None)
        binding = bind_slots(rig)
        self._axis_of, self._scale = binding.axis_of, binding.scale
        self._vmax, self._amax = binding.vmax, binding.amax
        start = np.asarray(rig.park if initial is None else initial, dtype=float)
        if start.shape != (len(rig.axes),):
            raise InputError(f"initial needs {len(rig.axes)} values (the rig's axes), got {start.shape}")
        self._start = [0.0] * len(SLOTS)               # ASPos / ESPos, wire units
        for slot, axis in enumerate(self._axis_of):
            if axis is not None:
                self._start[slot] = float(start[axis]) * self._scale[slot]
        self._actual = list(self._start)
        self._velocity = [0.0] * len(SLOTS)           # wire units per second
        self._correction = [0.0] * len(SLOTS)
        self._command = list(self._start)
        self._pipeline: deque[list[float]] = deque(list(self._start) for _ in range(follow_cycles))
        self._limits(axiscorr, axiscorrmon)
        # The wire and the session.
        self._io = threading.RLock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((bind_host, 0))
        self._sock.setblocking(False)
        self._address: tuple[str, int] = self._sock.getsockname()
        self._inbox: list[bytes] = []
        self._outgoing: list[tuple[float, bytes]] = []
        self.ipoc = ipoc_start
        self._cycles = 0                    # IPO cycles run (controller time = cycles * period)
        self._sent_first = False
        self._session_cycle: int | None = None   # the cycle the first answer arrived in
        self._withheld = False              # the last datagram was withheld by the controller (stall)
        self._since_command = 1             # cycles since the last applied command
        self._last_tick: int | None = None
        self._malformed_logged = False
        self._clamp_logged: set[int] = set()
        self._stalled = False
        # Observable state.
        self.delay = 0
        self.late_total = 0
        self.malformed_answers = 0
        self.ended = False
        self.end_reason: str | None = None
        self.datagrams_sent = 0
        self.answers_received = 0
        self.unplugged = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- configuration ------------------------------------------------------------------------------------
    def _limits(self, axiscorr: Mapping[str, tuple[float, float]] | None,
                axiscorrmon: Mapping[str, float] | None) -> None:
        """AXISCORR (clamp of the total correction) and AXISCORRMON (end RSI past it), wire units."""
        for table in (axiscorr or {}, axiscorrmon or {}):
            for key in table:
                if key not in SLOTS:
                    raise InputError(f'unknown RSI axis "{key}": one of {", ".join(SLOTS)}')
        self._corr_low = [-math.inf] * len(SLOTS)
        self._corr_high = [math.inf] * len(SLOTS)
        self._monitor = [math.inf] * len(SLOTS)
        for slot, axis in enumerate(self._axis_of):
            if axis is not None:   # default: anywhere within the axis' range
                spec = self.rig.axes[axis]
                self._corr_low[slot] = spec.min * self._scale[slot] - self._start[slot]
                self._corr_high[slot] = spec.max * self._scale[slot] - self._start[slot]
        for key, (low, high) in (axiscorr or {}).items():
            slot = SLOTS.index(key)
            self._corr_low[slot], self._corr_high[slot] = float(low), float(high)
        for key, limit in (axiscorrmon or {}).items():
            self._monitor[SLOTS.index(key)] = abs(float(limit))

    # -- observable state -----------------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        """The controller's own UDP address (where the host's answers go)."""
        return self._address

    @property
    def positions(self) -> NDArray[np.float64]:
        """The arm's actual axis positions, SI, in the rig's axis order."""
        out = np.zeros(len(self.rig.axes))
        with self._io:
            for slot, axis in enumerate(self._axis_of):
                if axis is not None:
                    out[axis] = self._actual[slot] / self._scale[slot]
        return out

    @property
    def session_started(self) -> bool:
        return self._session_cycle is not None

    def now(self) -> float:
        """Seconds of controller time since the first answer arrived (the clock of fault injection)."""
        return 0.0 if self._session_cycle is None else (self._cycles - self._session_cycle) * self.period

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> KukaRsiController:
        """Run the IPO cycles on the wall clock.  Lock-step: nothing to start (the host's ticks drive it)."""
        if self.lockstep or self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="sim-kuka-rsi", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        with self._io:
            self._sock.close()

    def __enter__(self) -> KukaRsiController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        """Wall time: cycle k runs at start + k * period (absolute deadlines, no drift)."""
        period_ns = self.ipo_ms * 1_000_000
        origin = time.monotonic_ns()
        k = 0
        while not self._stop.is_set():
            with self._io:
                self._read()
                self._cycle(self._take_inbox())
            k += 1
            deadline = origin + k * period_ns
            while not self._stop.is_set():
                remaining = deadline - time.monotonic_ns()
                if remaining <= 0:
                    break
                try:
                    ready, _, _ = select.select([self._sock], [], [], remaining / 1e9)
                except (OSError, ValueError):
                    return
                if ready:
                    with self._io:
                        self._read()

    def lockstep_tick(self, tick: int, host_units: int, timeout_s: float = 10.0) -> int:
        """One IPO cycle of simulated time, once ``host_units`` answers have arrived in all.

        Returns how many datagrams the controller has sent in all.  The first call only sends the first
        datagram.  A jump of ``tick`` (the host skipped ticks) first runs the skipped cycles without answers.
        """
        deadline = time.monotonic() + timeout_s
        with self._io:
            while self.answers_received < host_units and self._sock.fileno() >= 0:
                ready, _, _ = select.select([self._sock], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                self._read()
            if self._last_tick is not None and tick > self._last_tick + 1:
                for _ in range(tick - self._last_tick - 1):
                    self._cycle([])
            self._last_tick = tick
            self._cycle(self._take_inbox())
            return self.datagrams_sent

    # -- the wire -------------------------------------------------------------------------------------------
    def _read(self) -> None:
        while self._sock.fileno() >= 0:
            try:
                data, _ = self._sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.answers_received += 1
            self._inbox.append(data)

    def _take_inbox(self) -> list[bytes]:
        inbox, self._inbox = self._inbox, []
        return inbox

    def _emit(self, data: bytes) -> None:
        """The datagram leaves the controller, through the injected faults of the way to the host."""
        t = self.now()
        self._withheld = self._stalled
        if self._stalled or self.unplugged:
            return
        if self.session_started and self.faults.chance(FaultKind.DROP, t):
            return
        if self.session_started and self.faults.chance(FaultKind.CORRUPT, t):
            frame = bytearray(data)
            frame[self.faults.random.randrange(len(frame))] ^= 1 << self.faults.random.randrange(8)
            data = bytes(frame)
        delay = self.faults.delay_s(t) if self.session_started else 0.0
        self._outgoing.append((self._cycles * self.period + delay, data))

    def _flush(self) -> None:
        now = self._cycles * self.period + 1e-9
        due = [data for at, data in self._outgoing if at <= now]
        self._outgoing = [(at, data) for at, data in self._outgoing if at > now]
        for data in due:
            if self.unplugged or self._sock.fileno() < 0:
                continue
            try:
                self._sock.sendto(data, self.host_address)
                self.datagrams_sent += 1
            except OSError:
                pass

    # -- one IPO cycle --------------------------------------------------------------------------------------
    def _cycle(self, raw_answers: list[bytes]) -> None:
        if not self._sent_first:           # RSI_ON: the first datagram, the arm at rest at ASPos
            self._sent_first = True
            self._inbox = raw_answers + self._inbox
            self._emit(self._datagram())
            self._flush()
            return
        answers = self._parse([] if self.unplugged else raw_answers)   # unplugged: lost in the cable
        if answers and self._session_cycle is None:
            self._session_cycle = self._cycles
            self.log("RSI: first answer from the external system; corrections active, late answers counted")
        self._timed_faults()
        if not self.ended:
            self._take_answer([] if self.unplugged else answers)   # (this cycle's unplug included)
        self._cycles += 1
        self.ipoc += self.ipo_ms
        self._move()
        if not self.ended:
            self._emit(self._datagram())
        self._flush()

    def _parse(self, raw_answers: list[bytes]) -> list[Answer]:
        answers = []
        for data in raw_answers:
            try:
                answers.append(parse_answer(data, self.sen_type))
            except AnswerError as error:
                self.malformed_answers += 1
                if not self._malformed_logged:
                    self._malformed_logged = True
                    self.log(f"RSI: an answer could not be used and counts as missing: {error} "
                             "(further unusable answers are counted, not logged)")
        return answers

    def _timed_faults(self) -> None:
        if self._session_cycle is None:
            return
        t = self.now()
        for _ in self.faults.once(FaultKind.UNPLUG, t):
            self.unplugged = True
            self._outgoing.clear()
            self.log("RSI: the Ethernet link to the external system is gone (unplugged)")
        was = self._stalled
        self._stalled = bool(self.faults.active(FaultKind.STALL, t))
        if self._stalled != was:
            self.log("RSI: the controller stopped sending datagrams (stall)" if self._stalled
                     else "RSI: the controller sends datagrams again (stall over)")
        if not self.ended and self.faults.once(FaultKind.ROBOTSTOP, t):
            self._end(ROBOT_STOP_REASON)

    def _take_answer(self, answers: list[Answer]) -> None:
        """Apply the on-time answer, or count the cycle late and hold the last correction (HOLDON)."""
        late_window = self.session_started and bool(self.faults.active(FaultKind.LATE, self.now()))
        on_time = [a for a in answers if a.ipoc == self.ipoc]
        if on_time and not late_window:
            answer = on_time[-1]
            if answer.stop:
                self._end(STOP_REASON)
                return
            self._apply(answer)
            return
        if self._session_cycle is None or self._withheld:
            return                         # not counted: no session yet, or the controller withheld it
        self.delay += 1
        self.late_total += 1
        self._since_command += 1
        if self.delay >= self.timeout_packets:
            if self.timeout_counting == "consecutive":
                what = f"{self.delay} IPO cycles in a row without an answer in time"
            else:
                what = f"{self.delay} late or missing answers in all"
            self._end(f"RSI timeout: {what} (Ethernet object Timeout = {self.timeout_packets}: "
                      f"object ETHERNET1 returns error RSITimeout); RSI stopped and the arm braked to rest")

    def _apply(self, answer: Answer) -> None:
        """An on-time answer: AXISCORR clamp, AXISCORRMON and speed monitoring, then the new command."""
        wanted = list(self._correction)
        wanted[:6] = answer.ak
        if answer.ek is not None:
            wanted[6:] = answer.ek
        if self.faults.active(FaultKind.RELATIVE, self.now()):
            # RSI_ON(#RELATIVE): each answer is this cycle's correction, added to the total so far.
            steps = list(answer.ak) + (list(answer.ek) if answer.ek is not None else [0.0] * (len(SLOTS) - 6))
            wanted = [total + step for total, step in zip(self._correction, steps)]
        correction, command = list(self._correction), list(self._command)
        elapsed = self._since_command * self.period
        for slot, axis in enumerate(self._axis_of):
            if axis is None:
                continue
            name, unit = self._name(slot), self._unit(slot)
            value = min(max(wanted[slot], self._corr_low[slot]), self._corr_high[slot])
            if value != wanted[slot] and slot not in self._clamp_logged:
                self._clamp_logged.add(slot)
                self.log(f"RSI: {name} correction {wanted[slot]:.4f} {unit} held at its AXISCORR limit "
                         f"{value:.4f} {unit}")
            if abs(value) > self._monitor[slot]:
                return self._end(f"axis correction monitoring (AXISCORRMON): the total correction of {name}, "
                                 f"{value:.4f} {unit}, exceeds its limit of {self._monitor[slot]:g} {unit}; "
                                 "RSI stopped and the arm braked to rest")
            speed = abs(self._start[slot] + value - self._command[slot]) / elapsed
            if speed > self._vmax[slot] * (1.0 + self.speed_margin) + 1e-9:
                return self._end(f"{name}: commanded speed {speed:.1f} {unit}/s is above the axis' maximum "
                                 f"speed of {self._vmax[slot]:.1f} {unit}/s; RSI stopped and the arm braked "
                                 "to rest")
            correction[slot], command[slot] = value, self._start[slot] + value
        self._correction, self._command, self._since_command = correction, command, 1
        if self.timeout_counting == "consecutive":
            self.delay = 0

    def _end(self, reason: str) -> None:
        """RSI ends: no more datagrams, the arm brakes to rest on its own ramp."""
        if self.ended:
            return
        self.ended = True
        self.end_reason = reason
        self._pipeline.clear()
        self._outgoing.clear()
        self.log(f"RSI ended: {reason}")

    def _move(self) -> None:
        """The arm over one IPO cycle: follow the command with a pure delay, or brake to rest."""
        if self.ended:
            for slot in range(len(SLOTS)):
                v = self._velocity[slot]
                step = self._amax[slot] * self.period
                v = 0.0 if abs(v) <= step else v - math.copysign(step, v)
                self._velocity[slot] = v
                self._actual[slot] += v * self.period
            return
        self._pipeline.append(list(self._command))
        reached = self._pipeline.popleft()
        for slot in range(len(SLOTS)):
            self._velocity[slot] = (reached[slot] - self._actual[slot]) / self.period
            self._actual[slot] = reached[slot]

    def _datagram(self) -> bytes:
        return format_rob(self._actual, self._start, self.delay, self.ipoc)

    def _name(self, slot: int) -> str:
        axis = self._axis_of[slot]
        return SLOTS[slot] if axis is None else f"{SLOTS[slot]} ({self.rig.axes[axis].name})"

    def _unit(self, slot: int) -> str:
        return "mm" if self._scale[slot] == MM_PER_M else "deg"
