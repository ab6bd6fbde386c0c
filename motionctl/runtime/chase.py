"""Chasing timecode: when frame N of the house timecode happens on the host's monotonic clock.

A *timecode source* reports observations: "frame F started at host time T" (an internal generator
makes them up from the clock; an LTC reader gets them from audio).  :class:`TimecodeLock` fits a line
through the recent observations (frame duration and phase, so a source that runs 0.1 % fast is
followed, not fought), predicts the host time of any frame, and says when the lock is lost (no
observation for a while) or the timecode jumped (an observation far from the prediction).

The streamer asks the lock two things: when does the move's start frame happen (to start frame 0 on
it), and how far ahead or behind the run is (to slew its speed, within bounds, to stay on it).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

import numpy as np

from motionctl.runtime.watchdogs import Fault
from motionctl.timecode import FrameRate, Timecode

LOCK_OBSERVATIONS = 3            # frames seen before the lock is trusted
WINDOW = 50                      # observations kept for the fit (2 s at 25 fps)
LOST_AFTER_FRAMES = 5            # no observation for this many frame periods: lock lost
JUMP_FRAMES = 1.5                # an observation further than this from the prediction: a jump


@dataclass(frozen=True)
class Observation:
    frame: int          # 0-based frame count of the label (timecode.label_to_frame)
    host_ns: int        # host monotonic time at which that frame started


class TimecodeLock:
    """Phase and rate of a timecode stream against the host clock, from its observations."""

    def __init__(self, rate: FrameRate) -> None:
        self.rate = rate
        self.nominal_ns = float(Fraction(10**9) * rate.frame_duration)
        self._obs: deque[Observation] = deque(maxlen=WINDOW)
        self._lock = threading.Lock()
        self._cached: tuple[float, float, int] | None = None
        self.jumps: list[tuple[int, int]] = []           # (predicted frame, observed frame)
        self.last_ns = 0

    def observe(self, obs: Observation) -> None:
        with self._lock:
            if len(self._obs) >= LOCK_OBSERVATIONS:
                predicted = self._frame_at_locked(obs.host_ns)
                if abs(predicted - obs.frame) > JUMP_FRAMES:
                    self.jumps.append((int(round(predicted)), obs.frame))
                    self._obs.clear()
            self._obs.append(obs)
            self._cached = None
            self.last_ns = obs.host_ns

    @property
    def locked(self) -> bool:
        return len(self._obs) >= LOCK_OBSERVATIONS

    def lost(self, now_ns: int) -> bool:
        """Nothing heard for LOST_AFTER_FRAMES frame periods (only meaningful once locked)."""
        return bool(self.last_ns) and now_ns - self.last_ns > LOST_AFTER_FRAMES * self.nominal_ns

    def _fit(self) -> tuple[float, float, int]:
        """host_ns ~ a + b * (frame - f0), least squares over the window (b = measured frame duration)."""
        if self._cached is None:
            self._cached = self._fit_now()
        return self._cached

    def _fit_now(self) -> tuple[float, float, int]:
        obs = list(self._obs)
        f0 = obs[0].frame
        n = len(obs)
        xs = [o.frame - f0 for o in obs]
        ys = [o.host_ns - obs[0].host_ns for o in obs]
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else self.nominal_ns
        a = my - b * mx + obs[0].host_ns
        return a, b, f0

    def host_ns_of(self, frame: float) -> float:
        """Predicted host time at which ``frame`` starts."""
        with self._lock:
            a, b, f0 = self._fit()
            return a + b * (frame - f0)

    def _frame_at_locked(self, host_ns: int) -> float:
        a, b, f0 = self._fit()
        return f0 + (host_ns - a) / b

    def frame_at(self, host_ns: int) -> float:
        """The (fractional) timecode frame at host time ``host_ns``."""
        with self._lock:
            return self._frame_at_locked(host_ns)

    def speed(self) -> float:
        """Measured speed of the source relative to its nominal rate (1.0 = exact)."""
        with self._lock:
            return self.nominal_ns / self._fit()[1] if len(self._obs) >= 2 else 1.0


class InternalTimecode:
    """A free-running generator: from ``start`` (label) at exactly the rate, on the monotonic clock.

    It rolls when :meth:`roll` is called (the streamer does so when the move is armed), like a deck
    rolling after the operator armed.
    """

    def __init__(self, rate: FrameRate, start: Timecode, *, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.rate = rate
        self.start = start
        self._clock = clock
        self.t0_ns: int | None = None
        self._next = 0
        self.description = f"internal timecode from {start.label} at {rate.label} fps"

    def roll(self) -> None:
        self.t0_ns = self._clock()
        self._next = 0

    def poll(self) -> list[Observation]:
        """Observations of every frame that started since the last poll."""
        if self.t0_ns is None:
            return []
        now = self._clock()
        duration = Fraction(10**9) * self.rate.frame_duration
        out = []
        while True:
            at = self.t0_ns + int(self._next * duration)
            if at > now:
                return out
            out.append(Observation(self.start.frame + self._next, at))
            self._next += 1

    def close(self) -> None:
        return None


def describe(source: object) -> str:
    return getattr(source, "description", type(source).__name__)


class LtcFileTimecode:
    """LTC audio from a WAV file, played back in real time from :meth:`roll` (a deck rolling tape).

    A reader thread hands the decoder the samples the audio clock has reached (in 10 ms chunks) and
    turns every decoded frame into an observation: the frame started at ``t0 + start_sample / rate``.
    This is the same path a live sound-card stream would take; only the sample source differs.  In
    simulated time (``threaded=False``) the servo loop's poll hands the decoder what the clock reached.
    """

    CHUNK_S = 0.01

    def __init__(self, path: str, rate: FrameRate, *, clock: Callable[[], int] = time.monotonic_ns,
                 threaded: bool = True) -> None:
        from motionctl.ltc import LtcDecoder, read_wav

        self.samples, self.sample_rate = read_wav(path)
        self.rate = rate
        self._decoder = LtcDecoder(self.sample_rate, rate)
        self._clock = clock
        self._queue: deque[Observation] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0_ns: int | None = None
        self.threaded = threaded
        self._fed = 0
        self.description = f"LTC from {path}"

    def roll(self) -> None:
        self.t0_ns = self._clock()
        self._fed = 0
        if self.threaded:
            self._thread = threading.Thread(target=self._play, name="ltc-reader", daemon=True)
            self._thread.start()

    def _play(self) -> None:
        while not self._stop.is_set() and self._fed < len(self.samples):
            self._feed_until(self._clock())
            self._stop.wait(self.CHUNK_S)

    def _feed_until(self, now_ns: int) -> None:
        """Decode the samples the audio clock has reached by ``now_ns``."""
        reached = int((now_ns - self.t0_ns) / 1e9 * self.sample_rate)
        if reached > self._fed:
            chunk = self.samples[self._fed:min(reached, len(self.samples))]
            self._fed += len(chunk)
            for frame in self._decoder.feed(chunk):
                at = self.t0_ns + int(frame.start_sample * 1e9 / self.sample_rate)
                self._queue.append(Observation(frame.frame, at))

    def poll(self) -> list[Observation]:
        if not self.threaded and self.t0_ns is not None:
            self._feed_until(self._clock())
        out = []
        while self._queue:
            out.append(self._queue.popleft())
        return out

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)


def timecode_source(spec: str, rate: FrameRate, move_start: Timecode, preroll_s: float = 2.0,
                    clock: Callable[[], int] | None = None) -> object:
    """``internal``, ``internal:HH:MM:SS:FF`` or ``ltc:FILE.wav`` -> a source that rolls when armed.

    ``clock``: the run's clock when it is simulated (the source then keeps simulated time)."""
    now = clock or time.monotonic_ns
    from motionctl.errors import InputError

    kind, _, argument = spec.partition(":")
    if kind == "internal":
        if argument:
            start = Timecode.parse(argument, rate)
        else:
            frames = int(round(preroll_s * float(rate.fps)))
            start = move_start - min(frames, move_start.frame)
        return InternalTimecode(rate, start, clock=now)
    if kind == "ltc" and argument:
        return LtcFileTimecode(argument, rate, clock=now, threaded=clock is None)
    raise InputError(f'--timecode "{spec}": expected internal, internal:HH:MM:SS:FF or ltc:FILE.wav')


class ChaseStart(Enum):
    """What the chase says while armed."""

    WAIT = "wait"            # the start frame is still to come
    START = "start"          # frame 0 goes out on this tick
    LATE = "late"            # the start frame had already passed when armed: a fault
    LOST = "lost"            # the timecode stopped before the start frame came: a fault, never a start


class Chase:
    """Runs a move on timecode: frame 0 on the tick nearest the start frame's instant, then the speed that
    keeps the run on the timecode (slewed, within bounds), and a fault when the timecode is lost or jumps.

    Inputs are explicit: the time of the tick (``now_ns``) and where the run is (``tau``); outputs are a
    decision or a target speed, or a :class:`~motionctl.runtime.watchdogs.Fault`.  The streamer acts on
    them.  Synchronisation figures (start error, largest sync error) are kept here for the summary.
    """

    def __init__(self, source: object, plan, options, period_ns: int) -> None:
        self.source = source
        self.rate = plan.move.rate
        self.lock = TimecodeLock(self.rate)
        self.start_frame = plan.move.start.frame
        self.start_label = plan.move.start.label
        self.options = options
        self.period_ns = period_ns
        self.description = describe(source)
        self.active = True               # chasing; False once the timecode jumped or was lost
        self.start_error_ticks: float | None = None
        self.max_sync_error_ticks = 0.0
        self.last_sync_error_ticks = 0.0
        # How much faster than planned the run may go to catch up: none if the plan is at a limit already.
        peaks = plan.report.extra.get("axis_peaks") or []
        tightest = max([max(p["v_pct"], 100 * (p["a_pct"] / 100) ** 0.5, 100 * (p["j_pct"] / 100) ** (1 / 3))
                        for p in peaks] or [100.0]) / 100.0
        self.speed_up_room = max(0.0, min(options.chase_max_slew, 1.0 / max(tightest, 1e-9) - 1.0 - 1e-4))

    def poll(self) -> None:
        """Take in the observations that arrived (once per tick)."""
        for observation in self.source.poll():
            self.lock.observe(observation)

    def roll(self) -> None:
        self.source.roll()

    def close(self) -> None:
        self.source.close()

    def start(self, tick_ns: int, now_ns: int | None = None) -> ChaseStart:
        """Armed: does frame 0 go out on the tick whose setpoint applies at ``tick_ns``?"""
        if not self.lock.locked:
            return ChaseStart.WAIT
        if self.lock.lost(tick_ns if now_ns is None else now_ns):   # gone quiet in the preroll: never guess
            return ChaseStart.LOST
        start_ns = self.lock.host_ns_of(self.start_frame)
        if tick_ns - start_ns > self.period_ns:
            return ChaseStart.LATE
        if tick_ns >= start_ns - self.period_ns / 2:
            self.start_error_ticks = (tick_ns - start_ns) / self.period_ns
            return ChaseStart.START
        return ChaseStart.WAIT

    def lost_fault(self) -> Fault:
        return Fault(f"timecode lost before the start timecode {self.start_label} came: not started", quick=False)

    def late_fault(self) -> Fault:
        return Fault(f"the start timecode {self.start_label} had already passed when armed (roll the "
                     "timecode back before it)", quick=False)

    def target(self, tick_ns: int, now_ns: int, tau: float, previous: float, dt: float) -> float | Fault:
        """Running: the speed (1 = as planned) that keeps ``tau`` on the timecode at the tick whose setpoint
        applies at ``tick_ns`` (ahead of ``now_ns`` on a queued link), slewed from ``previous``; or a fault
        (and no more chasing) when the timecode jumped or was lost (judged at ``now_ns``)."""
        if self.lock.jumps:
            predicted, observed = self.lock.jumps[-1]
            self.active = False
            return Fault(f"timecode jumped from frame {predicted} to {observed}", quick=False)
        if self.lock.lost(now_ns):
            self.active = False
            return Fault(f"timecode lost: no frame for {(now_ns - self.lock.last_ns) / 1e6:.0f} ms", quick=False)
        wanted = (self.lock.frame_at(tick_ns) - self.start_frame) * float(self.rate.frame_duration)
        error = wanted - tau
        self.max_sync_error_ticks = max(self.max_sync_error_ticks, abs(error) / dt)
        self.last_sync_error_ticks = error / dt
        correction = float(np.clip(self.options.chase_gain_per_s * error, -self.options.chase_max_slew,
                                   self.speed_up_room))
        # The target slews; the speed governor then follows it within every limit of the plan.
        step = self.options.chase_slew_rate_per_s * dt
        return float(np.clip(1.0 + correction, previous - step, previous + step))
