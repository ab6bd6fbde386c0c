"""Watchdogs of a run: drive faults, silent or self-stopped drives, following error, stale feedback, a
stalled setpoint stream and too many late cycles.

:class:`Watchdogs` looks at what one tick brought (the state, the drives' feedback, the clock) and says
whether something is wrong, as a :class:`Fault`: what to tell the operator, and whether the drives can
still follow a controlled stop along the path or must quick-stop on their own ramps.  Acting on it is
the streamer's job; this object only judges, so every rule can be read (and tested) in one place.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from motionctl.hal.driver import DriveStatus, RigState
from motionctl.runtime.states import RunState, StreamerOptions

#: How the host-timing faults end: the machine running motionctl, not the move, the wire or the drives.
HOST_STALLED = "the host could not keep up"
HOST_OVERLOADED = "the host is overloaded"

#: States in which the drives are expected to answer and follow.
_WATCHED = (RunState.RUNNING, RunState.GOING_TO_START, RunState.STOPPING, RunState.ARMED, RunState.AT_START,
            RunState.JOGGING)
#: States in which the setpoint stream carries motion (host timing matters).
_MOVING = (RunState.RUNNING, RunState.GOING_TO_START, RunState.JOGGING)
#: States in which a drive that stopped on its own was not told to.
_FOLLOWING = (RunState.RUNNING, RunState.GOING_TO_START, RunState.ARMED, RunState.AT_START, RunState.JOGGING)


@dataclass(frozen=True)
class Fault:
    """Something wrong, in plain words.  ``quick``: the drives cannot (or must not) follow a controlled
    stop; they brake on their own quick-stop ramps."""

    message: str
    quick: bool


class Watchdogs:
    """Judges each tick.  ``linear``/``lens`` say per driven axis how its errors are shown and windowed."""

    def __init__(self, options: StreamerOptions, axis_names: tuple[str, ...], linear: NDArray[np.bool_],
                 lens: NDArray[np.bool_], rate_hz: int, lookahead_ticks: int = 0) -> None:
        self.options = options
        # On a queued link (serial 1.1) the drives answer a setpoint when they play it, up to the lookahead
        # after it was sent (after ENABLE the queue starts empty), and a host late by most of the lookahead
        # is ridden through: feedback may pause by twice the lookahead more.
        self._stale_ns = int((options.stale_feedback_s + 2 * lookahead_ticks / rate_hz) * 1e9)
        # ... and a host stall is only a fault when the queue cannot cover it: once the drives would be
        # within a quarter of the lookahead of running dry (then they stop on their own anyway).
        self._stall_cycles = max(options.stall_cycles, lookahead_ticks - max(2, lookahead_ticks // 4))
        # A late tick only matters when it eats into the queue: more than half of it (without a queue, any
        # tick more than a period late).
        self._late_periods = max(1, lookahead_ticks // 2)
        self.axis_names = axis_names
        self.rate_hz = rate_hz
        self._linear, self._lens = linear, lens
        self._window = np.where(lens, options.following_error_lens,
                                np.where(linear, options.following_error_m, options.following_error_rad))
        self._over = np.zeros(len(axis_names), dtype=int)
        self._late: deque[bool] = deque()          # late or not, over the last second of ticks
        self._late_count = 0
        #: The largest following error each axis showed (for the take's summary; reset per take).
        self.max_following_error: dict[str, float] = {}

    def reset(self) -> None:
        """After a fault reset: judge following error afresh."""
        self._over[:] = 0

    def drives(self, state: RunState, feedback: RigState | None, now_ns: int,
               last_feedback_ns: int) -> Fault | None:
        """The drives' side: feedback that stopped coming, a drive fault, a silent drive, a drive that
        stopped on its own, a following error over its window for too many ticks."""
        if state in (RunState.ESTOPPED, RunState.FAULTED):
            return None
        watched = state in _WATCHED
        if watched and now_ns - last_feedback_ns > self._stale_ns:
            return Fault(f"no feedback from the drives for {(now_ns - last_feedback_ns) / 1e6:.0f} ms "
                         "(cable, bus-off, or drive power?)", quick=False)
        if feedback is None:
            return None
        faulted = feedback.faulted
        if faulted:
            axis = faulted[0]
            return Fault(f"drive fault on {axis.name}: {axis.fault_text or f'code 0x{axis.fault_code:04X}'}", True)
        offline = [a for a in feedback.axes if a.status is DriveStatus.OFFLINE]
        if offline:
            return Fault(f"drive {offline[0].name} went silent (no heartbeat or feedback): every axis stopped", True)
        stopped = [a for a in feedback.axes if a.status is DriveStatus.QUICK_STOP]
        if stopped and state in _FOLLOWING:
            detail = stopped[0].fault_text or "it no longer heard the host (heartbeat) or hit a limit"
            return Fault(f"drive {stopped[0].name} stopped on its own ({detail}): every axis stopped", True)
        error = np.array([abs(a.following_error) for a in feedback.axes])
        self._over = np.where(error > self._window, self._over + 1, 0)
        for name, value in zip(self.axis_names, error):
            self.max_following_error[name] = max(self.max_following_error.get(name, 0.0), float(value))
        if watched and (self._over >= self.options.following_error_ticks).any():
            i = int(np.argmax(self._over))
            unit, scale = (("% of travel", 100.0) if self._lens[i] else ("mm", 1000.0) if self._linear[i]
                           else ("deg", 180.0 / np.pi))
            return Fault(f"following error on {self.axis_names[i]}: {error[i] * scale:.2f} {unit} "
                         f"(window {self._window[i] * scale:.2f} {unit})", quick=False)
        return None

    def host(self, state: RunState, late_ns: int, missed: int, period_ns: int) -> Fault | None:
        """The host itself: a stalled setpoint stream, or too many late cycles in the last second."""
        late = late_ns > self._late_periods * period_ns or missed >= self._late_periods   # ate into the margin
        self._late.append(late)
        self._late_count += late
        if len(self._late) > self.rate_hz:
            self._late_count -= self._late.popleft()
        if state not in _MOVING:
            return None
        if missed >= self._stall_cycles:
            return Fault(f"the setpoint stream stalled for {missed} cycles ({missed * period_ns / 1e6:.0f} ms): "
                         f"{HOST_STALLED}", quick=False)
        if len(self._late) == self.rate_hz and self._late_count > self.options.late_budget * self.rate_hz:
            return Fault(f"{self._late_count} of the last {self.rate_hz} cycles were late (budget "
                         f"{self.options.late_budget:.0%}): {HOST_OVERLOADED}", quick=False)
        return None
