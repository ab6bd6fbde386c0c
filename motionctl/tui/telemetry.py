"""One coalesced snapshot of the rig for the screen: the servo thread's latest values, in display units.

The servo thread runs at 250-1000 Hz and the screen refreshes at about 10 Hz; the UI reads the latest
feedback the streamer holds (one reference, no queue), so nothing backs up and the newest value wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from motionctl.hal.driver import DriveStatus
from motionctl.runtime.states import RunState

if TYPE_CHECKING:
    from motionctl.tui.controller import RigController


@dataclass(frozen=True)
class AxisRow:
    name: str
    unit: str
    position: float
    velocity: float
    following: float            # in the axis's display unit (mm for linear axes)
    lower: float
    upper: float
    status: str
    fault: str = ""

    @property
    def fraction(self) -> float:
        """Where the axis sits in its range, 0..1 (for the limit bar)."""
        span = self.upper - self.lower
        return float(np.clip((self.position - self.lower) / span, 0.0, 1.0)) if span > 0 else 0.5


@dataclass(frozen=True)
class Telemetry:
    connected: bool
    transport: str = ""
    state: RunState | None = None
    fault: str = ""
    axes: tuple[AxisRow, ...] = ()
    jitter_p99_us: float = 0.0
    jitter_max_us: float = 0.0
    overruns: int = 0
    dropped: int = 0
    sent: int = 0
    received: int = 0
    move: str = ""
    not_runnable: str = ""           #: why no move is loaded though one is on screen (refused, taught illegal)
    frame: int | None = None
    frames: int = 0
    timecode: str = "--:--:--:--"
    fraction: float = 0.0
    override_pct: int = 100
    loop: bool = False
    backwards: bool = False
    timecode_mode: str = "manual"
    locked: bool | None = None
    armed_start: str = ""
    jog_blocked: str = ""
    busy: str = ""


def _axis_rows(controller: RigController) -> tuple[AxisRow, ...]:
    streamer = controller.streamer
    state = streamer.last_state
    if state is None:
        return ()
    rig = streamer.plan.rig
    limits = {a.name: a for a in rig.axes}
    lens = {l.name: l for l in rig.lens}
    rows = []
    for axis in state.axes:
        status = axis.status.value if axis.status is not DriveStatus.FAULT else f"FAULT {axis.fault_code:04X}"
        if axis.name in limits:
            spec = limits[axis.name]
            scale, unit = (1.0, "m") if spec.linear else (180.0 / math.pi, "deg")
            ferr_scale = 1000.0 if spec.linear else 180.0 / math.pi          # mm or degrees
            rows.append(AxisRow(axis.name, unit, axis.position * scale, axis.velocity * scale,
                                axis.following_error * ferr_scale, spec.min * scale, spec.max * scale,
                                status, axis.fault_text))
        elif axis.name in lens:
            spec = lens[axis.name]
            rows.append(AxisRow(axis.name, spec.unit, axis.position, axis.velocity, axis.following_error,
                                spec.min, spec.max, status, axis.fault_text))
    return tuple(rows)


def build_telemetry(controller: RigController) -> Telemetry:
    streamer = controller.streamer
    common = dict(override_pct=controller.override_pct, loop=controller.loop, backwards=controller.backwards,
                  timecode_mode=controller.timecode_mode, busy=controller.busy,
                  not_runnable=controller.not_runnable)
    plan = controller.active_plan()
    if plan is not None:
        common.update(move=plan.move.name, frames=plan.report.frames, armed_start=plan.move.start.label)
    if streamer is None:
        return Telemetry(connected=False, **common)
    recent = list(streamer.clock.stats.recent)
    p99 = float(np.percentile(recent, 99)) / 1000 if recent else 0.0
    stats = streamer.driver.stats
    fps = float(streamer.plan.move.rate.fps)
    state = streamer.state
    frame = None
    timecode = "--:--:--:--"
    lock = streamer.lock
    locked = None if lock is None else bool(lock.locked)
    if lock is not None and lock.locked:
        from motionctl.timecode import Timecode
        now = int(np.floor(lock.frame_at(streamer.clock.now_ns()) + 1e-9))     # the run's clock (wall or sim)
        if now >= 0:
            timecode = Timecode(now, streamer.plan.move.rate).label
    if state in (RunState.RUNNING, RunState.STOPPING, RunState.DONE, RunState.STOPPED):
        frame = min(int(streamer.run_time * fps + 1e-9), streamer.plan.report.frames - 1)
        if lock is None or not lock.locked:
            timecode = streamer.plan.move.timecode_at(frame)
    duration = max(streamer.plan.trajectory.duration_s, 1e-9)
    return Telemetry(
        connected=True, transport=streamer.driver.url, state=state, fault=streamer.fault_message,
        axes=_axis_rows(controller), jitter_p99_us=p99, jitter_max_us=(max(recent) / 1000 if recent else 0.0),
        overruns=streamer.clock.stats.overruns, dropped=sum(stats.dropped.values()), sent=stats.sent,
        received=stats.received, frame=frame, timecode=timecode, fraction=min(1.0, streamer.run_time / duration),
        locked=locked, jog_blocked=streamer.jog_blocked, **common)
