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

from motionctl.runtime.chase import Observation
from motionctl.timecode import FrameRate, Timecode


class StageTimecode:
    """A timecode source (``roll``/``poll``/``close``, as the runtime's) fed by :meth:`offer`."""

    def __init__(self, rate: FrameRate, *, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.rate = rate
        self._clock = clock
        self._queue: deque[Observation] = deque()
        self._lock = threading.Lock()
        self._rolled = False
        self.description = f"the stage's timecode at {rate.label} fps"

    def offer(self, frame: int, fps: str) -> bool:
        """A frame from the master, now (any thread); False if it is at another rate than the move's."""
        if fps != self.rate.label:
            return False
        at = self._clock()
        with self._lock:
            if self._rolled:
                self._queue.append(Observation(frame, at))
        return True

    def roll(self) -> None:
        with self._lock:
            self._rolled = True
            self._queue.clear()

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
