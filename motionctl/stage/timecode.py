"""The stage's timecode on the network: one master publishes every frame, each rig chases it locally.

Each rig daemon turns the frames it receives into observations "frame F started at (the run's clock at
arrival)", the same kind the LTC reader makes of audio, and its own :class:`~motionctl.runtime.chase.Chase`
locks to them, starts frame 0 of its move on the tick nearest its start frame and keeps the run on the
timecode.  The arrival time stands for the frame's start, as an LTC reader's sample clock does: no clock
on the stage has to agree with another's, and the network's delay (the same for every rig on one switch,
tens of microseconds on 127.0.0.1, measured in docs/benchmarks.md) is the rigs' shared offset, not a
difference between them.  When the master stops or is cut off, each rig's lock is lost after 5 frame
periods and the run ends in a controlled stop, as with LTC.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction

from motionctl.runtime.chase import JUMP_FRAMES, Observation
from motionctl.timecode import FrameRate, Timecode

#: Frames whose arrival phases are pooled (a second at 25 fps).
SMOOTHING = 25
#: Frames in a row off the master's phase by more than JUMP_FRAMES before they count as a timecode jump.
JUMP_AFTER = 3


class StageTimecode:
    """A timecode source (``roll``/``poll``/``close``, as the runtime's) fed by :meth:`offer`."""

    def __init__(self, rate: FrameRate, *, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.rate = rate
        self._clock = clock
        self._queue: deque[Observation] = deque()
        self._lock = threading.Lock()
        self._rolled = False
        self._period_ns = float(Fraction(10**9) * rate.frame_duration)
        self._offsets: deque[float] = deque(maxlen=SMOOTHING)
        self._outliers = 0
        self.description = f"the stage's timecode at {rate.label} fps"

    def offer(self, frame: int, fps: str) -> bool:
        """A frame from the master, now (any thread); False if it is at another rate than the move's.

        Arrivals jitter (a busy host, a daemon whose paced simulated clock lags the wall for a moment,
        frames delivered in a burst): each is stamped with the median over the last :data:`SMOOTHING`
        frames of (arrival - the frame's nominal time), plus its nominal time.  The master sends on
        absolute deadlines, so that median is the master's phase; a late or early arrival no longer looks
        like a timecode jump, while a real one (frame numbers out of step with time for :data:`JUMP_AFTER`
        frames in a row) still does."""
        if fps != self.rate.label:
            return False
        at = self._clock()
        nominal = frame * self._period_ns
        with self._lock:
            if not self._rolled:
                return True
            raw = at - nominal
            offset = sorted(self._offsets)[len(self._offsets) // 2] if self._offsets else raw
            # Far from the master's phase: jitter if it does not last, a jump of the timecode if it does
            # (then the raw arrival goes to the lock, which calls it a jump, as for LTC).
            self._outliers = self._outliers + 1 if abs(raw - offset) > JUMP_FRAMES * self._period_ns else 0
            if self._outliers >= JUMP_AFTER:
                self._offsets.clear()
                offset = raw
            self._offsets.append(raw)
            self._queue.append(Observation(frame, int(round(offset + nominal))))
        return True

    def roll(self) -> None:
        with self._lock:
            self._rolled = True
            self._queue.clear()
            self._offsets.clear()
            self._outliers = 0

    def poll(self) -> list[Observation]:
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
        return out

    def close(self) -> None:
        with self._lock:
            self._rolled = False
            self._queue.clear()


class TimecodeMaster:
    """Publishes the stage's timecode from ``start`` at ``rate``: one message at each frame's start, on
    absolute deadlines of the monotonic clock (a late wake-up sends that frame late, never drifts)."""

    def __init__(self, publish: Callable[[int], None], rate: FrameRate, start: Timecode) -> None:
        self.rate = rate
        self.start_frame = start.frame
        self._publish = publish
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def start(self) -> TimecodeMaster:
        self._thread = threading.Thread(target=self._run, name="motionctl-timecode-master", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        period = Fraction(10**9) * self.rate.frame_duration
        t0 = time.monotonic_ns()
        n = 0
        while not self._stop.is_set():
            due = t0 + int(n * period)
            wait = (due - time.monotonic_ns()) / 1e9
            if wait > 0 and self._stop.wait(wait):
                return
            self._publish(self.start_frame + n)
            self.sent += 1
            n += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
