"""Timecode chase over the real pty, in simulated time: start exactly on the start frame, stay locked, stop
on loss or jump.  The timecode sources keep the run's (simulated) clock, so every outcome is exact."""

from __future__ import annotations


import pytest

from motionctl.runtime.chase import InternalTimecode, Observation, TimecodeLock
from motionctl.runtime.streamer import RunState
from motionctl.timecode import FrameRate, Timecode


def test_lock_follows_phase_and_rate_of_a_slightly_fast_source():
    rate = FrameRate.parse("25")
    lock = TimecodeLock(rate)
    period = 40_000_000 / 1.001                      # a source running 0.1 % fast
    for k in range(60):
        lock.observe(Observation(1000 + k, int(5_000_000_000 + k * period)))
    assert lock.locked
    assert lock.speed() == pytest.approx(1.001, rel=1e-6)
    assert lock.host_ns_of(1100) == pytest.approx(5_000_000_000 + 100 * period, abs=1000)
    assert not lock.jumps


def test_lock_reports_a_jump_and_a_loss():
    rate = FrameRate.parse("25")
    lock = TimecodeLock(rate)
    for k in range(10):
        lock.observe(Observation(k, k * 40_000_000))
    lock.observe(Observation(500, 10 * 40_000_000))
    assert lock.jumps == [(10, 500)]
    assert lock.lost(10 * 40_000_000 + 6 * 40_000_000)
    assert not lock.lost(10 * 40_000_000 + 2 * 40_000_000)


def test_internal_generator_emits_every_frame_once():
    rate = FrameRate.parse("29.97df")
    now = [0]
    source = InternalTimecode(rate, Timecode.parse("00:00:59;28", rate), clock=lambda: now[0])
    assert source.poll() == []                        # not rolling yet
    source.roll()
    now[0] = int(1001 / 30000 * 1e9 * 3) + 1          # just past the start of the 4th frame
    frames = [o.frame for o in source.poll()]
    assert frames == [1798, 1799, 1800, 1801]
    assert source.poll() == []


def test_frame_zero_starts_on_the_start_timecode_and_stays_locked(product_plan, sim_rig, tmp_path):
    rig = sim_rig()
    source = InternalTimecode(product_plan.move.rate, product_plan.move.start - 75,     # 1.5 s pre-roll
                              clock=rig.clock.now_ns)
    result = rig.take(product_plan, tmp_path, timecode=source)
    assert result.state is RunState.DONE, result.summary["faults"]
    # the internal generator and the servo clock share one time base: frame 0 lands on the tick
    assert abs(result.summary["start_error_ticks"]) <= 0.5
    assert result.summary["max_sync_error_ticks"] <= 0.5


class _StoppingDeck(InternalTimecode):
    """A deck that stops after ``frames`` frames (the cable is pulled)."""

    def __init__(self, *args, frames: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limit = frames
        self.sent = 0

    def poll(self):
        out = [o for o in super().poll()][: max(0, self.limit - self.sent)]
        self.sent += len(out)
        return out


class _JumpingDeck(InternalTimecode):
    """A deck whose timecode jumps 100 frames ahead once it has played ``after`` frames."""

    def __init__(self, *args, after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.after = after
        self.count = 0

    def poll(self):
        out = []
        for o in super().poll():
            self.count += 1
            out.append(Observation(o.frame + (100 if self.count > self.after else 0), o.host_ns))
        return out


def test_timecode_lost_mid_run_ends_in_a_controlled_stop(product_plan, sim_rig, tmp_path):
    rig = sim_rig()
    deck = _StoppingDeck(product_plan.move.rate, product_plan.move.start - 50, frames=50 + 40, clock=rig.clock.now_ns)
    result = rig.take(product_plan, tmp_path, timecode=deck)
    assert result.state is RunState.FAULTED
    assert any("timecode lost" in f for f in result.summary["faults"]), result.summary["faults"]


def test_timecode_lost_before_the_start_frame_never_starts_the_move(product_plan, sim_rig, tmp_path):
    """The deck stops 30 frames into a 50-frame preroll: locked, but the start never comes; no start on a
    guess (the lock would otherwise extrapolate to it)."""
    rig = sim_rig()
    deck = _StoppingDeck(product_plan.move.rate, product_plan.move.start - 50, frames=30, clock=rig.clock.now_ns)
    result = rig.take(product_plan, tmp_path, timecode=deck)
    assert result.state is RunState.FAULTED
    assert any("lost before the start" in f for f in result.summary["faults"]), result.summary["faults"]


def test_timecode_jump_mid_run_ends_in_a_controlled_stop(product_plan, sim_rig, tmp_path):
    rig = sim_rig()
    deck = _JumpingDeck(product_plan.move.rate, product_plan.move.start - 50, after=50 + 40, clock=rig.clock.now_ns)
    result = rig.take(product_plan, tmp_path, timecode=deck)
    assert result.state is RunState.FAULTED
    assert any("jumped" in f for f in result.summary["faults"]), result.summary["faults"]


def test_arming_after_the_start_timecode_passed_is_a_fault(product_plan, sim_rig, tmp_path):
    rig = sim_rig()
    source = InternalTimecode(product_plan.move.rate, product_plan.move.start + 100, clock=rig.clock.now_ns)
    result = rig.take(product_plan, tmp_path, timecode=source)
    assert result.state is RunState.FAULTED
    assert any("already passed" in f for f in result.summary["faults"]), result.summary["faults"]


def test_chase_an_ltc_file_starts_on_the_start_frame(product_plan, sim_rig, tmp_path):
    from motionctl.ltc import encode, write_wav
    from motionctl.runtime.chase import LtcFileTimecode

    rate = product_plan.move.rate
    first = product_plan.move.start - 60                     # 1.2 s of pre-roll at 50 fps
    wav = tmp_path / "ltc.wav"
    write_wav(wav, encode(first.frame, 60 + 200, rate, 48000), 48000)
    rig = sim_rig()
    result = rig.take(product_plan, tmp_path, timecode=LtcFileTimecode(str(wav), rate, clock=rig.clock.now_ns,
                                                                        threaded=False))
    assert result.state is RunState.DONE, result.summary["faults"]
    assert abs(result.summary["start_error_ticks"]) <= 1.0
    assert result.summary["max_sync_error_ticks"] <= 3.0
