"""Streams the real camera to the game engine during a run: one FreeD and one OpenTrackIO sample per frame.

The pose is FK of the *measured* joints (what the arm did, not what it was told), through the stage ->
engine transform.  The servo thread only hands over the newest measurement (latest wins); FK, encoding
and ``sendto`` happen on this publisher's own thread, so a slow network never touches the servo loop,
and a send error is counted, never raised: the vcam output must never stop motion.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from motionctl.kinematics import Kinematics
from motionctl.spec.rig import Rig
from motionctl.spec.stage import Stage
from motionctl.timecode import Timecode


@dataclass(frozen=True)
class _Measurement:
    q: NDArray[np.float64]
    lens: dict[str, float]
    timecode: Timecode
    sequence: int
    measured_at_ns: int


class VcamPublisher:
    def __init__(self, sender, rig: Rig, stage: Stage | None, axis_names: tuple[str, ...]) -> None:
        self.sender = sender
        self.rig = rig
        self.stage = stage
        self.kin = Kinematics(rig)
        self._arm = [axis_names.index(a) for a in rig.axis_names]
        self._lens = {l.name: axis_names.index(l.name) for l in rig.lens if l.name in axis_names}
        self._pending: _Measurement | None = None
        self.inline = False               # simulated time: publish on the servo thread, every frame
        self._wake = threading.Condition()
        self._stop = False
        self.published = 0
        self.last_frame: int | None = None
        self._thread = threading.Thread(target=self._run, name="vcam-out", daemon=True)
        self._thread.start()

    def offer_measured(self, state, plan, lock, run_state, tau: float, tick: int, rate_hz: int) -> None:
        """One camera sample per frame from what the drives measured (``state``): labelled with the timecode
        when the run is locked to one, else with the run's own frame, else (not running) with the move's
        start, fed at the frame rate."""
        from motionctl.runtime.states import RunState

        fps = float(plan.move.rate.fps)
        if lock is not None and lock.locked:
            frame = int(np.floor(lock.frame_at(state.host_time_ns) + 1e-9))
            timecode = Timecode(frame, plan.move.rate)
        elif run_state in (RunState.RUNNING, RunState.STOPPING):
            frame = plan.move.start.frame + int(np.floor(tau * fps + 1e-9))
            timecode = Timecode(frame, plan.move.rate)
        else:
            frame = -1 - int(tick * fps / rate_hz)
            timecode = plan.move.start
        lens = {l.name: float(v) for l, v in zip(plan.rig.lens, plan.trajectory.lens[0])}
        self.offer(state.positions, frame, timecode, state.host_time_ns, lens)

    def summary(self) -> dict[str, object]:
        """What went out, for the run's summary."""
        sent = self.sender.stats
        return {"samples": self.published, "freed_sent": sent.freed_sent,
                "otrk_samples_sent": sent.otrk_samples_sent, "send_errors": sent.send_errors,
                "freed_latency_mean_us": (sent.freed_latency.mean_ns or 0) / 1000,
                "freed_latency_max_us": (sent.freed_latency.max_ns or 0) / 1000,
                "otrk_latency_mean_us": (sent.otrk_latency.mean_ns or 0) / 1000,
                "otrk_latency_max_us": (sent.otrk_latency.max_ns or 0) / 1000}

    def offer(self, positions: NDArray[np.float64], frame_key: int, timecode: Timecode, measured_at_ns: int,
              fallback_lens: dict[str, float]) -> None:
        """Called every tick by the servo thread; publishes when ``frame_key`` (the frame) changes."""
        if frame_key == self.last_frame:
            return
        self.last_frame = frame_key
        lens = dict(fallback_lens)
        lens.update({name: float(positions[i]) for name, i in self._lens.items()})
        measurement = _Measurement(np.asarray(positions)[self._arm].copy(), lens, timecode, frame_key & 0xFFFFFFFF,
                                   measured_at_ns)
        if self.inline:
            self._publish(measurement)
            return
        with self._wake:
            self._pending = measurement
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                m, self._pending = self._pending, None
            self._publish(m)

    def _publish(self, m: _Measurement) -> None:
        pose = self.kin.camera(m.q)
        self.sender.send(pose, m.lens, m.timecode, m.sequence, self.rig, self.stage,
                         measured_at_ns=m.measured_at_ns)
        self.published += 1

    def close(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(1.0)
        self.sender.close()
