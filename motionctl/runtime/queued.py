"""What went out for each tick still in a device's setpoint queue (serial 1.1), kept until it has played.

On a queued link the setpoint of tick ``t`` leaves the host ``lookahead`` ticks before the device plays it.
Two things need to know, for a tick already sent, exactly what was sent and from where:

* the take, which records a row when its tick *plays* (what was sent for it, in which state, at which time
  along the plan);
* a controlled stop that begins inside the queue (docs/serial-protocol.md §10.6): it must start from the
  state of the tick before its first, which for a run is the speed governor's state then (a snapshot kept
  per tick sent) and for a go-to-start is the sample index of the transition sent then.

:class:`QueueLog` keeps both, for a window of ticks a few lookaheads long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from motionctl.planner.governor import SpeedGovernor
from motionctl.planner.transitions import Transition
from motionctl.runtime.states import RunState


@dataclass(frozen=True)
class Sent:
    """One tick's setpoint as it went out."""

    command: NDArray[np.float64]
    state: RunState
    tau: float                          # the plan's time of the sample (0 before a run)
    transition: Transition | None       # the transition it came from (a go-to-start or a stop), if any
    index: int                          # its sample's index in that transition (its last once past the end)


class QueueLog:
    """Setpoints sent per tick, and the run's governor after each, over a window of a few lookaheads."""

    def __init__(self, lookahead: int) -> None:
        self.keep_ticks = 4 * lookahead + 8
        self._sent: dict[int, Sent] = {}
        self._governed: dict[int, tuple] = {}
        self._governed_by: SpeedGovernor | None = None       # the governor that made them (a run)
        self._governed_head = 0                               # and the last tick it made

    def keep(self, head: int, sent: Sent, governor: SpeedGovernor | None) -> None:
        """``sent`` went out for tick ``head``; ``governor``: the running plan's, after that tick (or None)."""
        old = head - self.keep_ticks
        self._sent[head] = sent
        self._sent.pop(old, None)
        self._governed.pop(old, None)
        if governor is not None:
            if governor is not self._governed_by:
                self._governed.clear()
            self._governed[head] = governor.snapshot()
            self._governed_by, self._governed_head = governor, head

    def sent(self, tick: int) -> Sent | None:
        return self._sent.get(tick)

    def governor_before(self, at: int, governor: SpeedGovernor) -> tuple[SpeedGovernor, int] | None:
        """``governor`` (the run's) in its state after tick ``at - 1``, or in its latest state and the
        number of ticks still to step with the target frozen to get there; None when it has made no tick
        yet, or tick ``at - 1`` is queued but was not this run's."""
        kept = self._governed.get(at - 1)
        if governor is not self._governed_by or (at - 1 <= self._governed_head and kept is None):
            return None
        before = max(0, at - 1 - self._governed_head)
        if before == 0:
            governor = governor.clone()
            governor.restore(kept)
        return governor, before
