"""Timecode chase over the real pty: start exactly on the start frame, stay locked, stop on loss or jump."""

from __future__ import annotations


import pytest

from motionctl.runtime.chase import InternalTimecode, Observation, TimecodeLock
from motionctl.runtime.session import run_take
from motionctl.runtime.streamer import RunState, StreamerOptions
from motionctl.timecode import FrameRate, Timecode
from tests.conftest import real_time
from tests.runtime.conftest import faulted_with, finished

CALM = StreamerOptions(stall_cycles=50, late_budget=0.5, stale_feedback_s=0.3)


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


def _locked(start: float, sync: float):
    """A take that ran to its end, started within ``start`` ticks of its timecode and stayed within ``sync``."""
    def wanted(result) -> bool:
        return (finished(result) and abs(result.summary["start_error_ticks"]) <= start
                and result.summary["max_sync_error_ticks"] <= sync)
    return wanted


def test_frame_zero_starts_on_the_start_timecode_and_stays_locked(product_plan, serial_rig, tmp_path):
    def attempt(n):
        source = InternalTimecode(product_plan.move.rate, product_plan.move.start - 75)    # 1.5 s pre-roll
        return run_take(product_plan, serial_rig()[1], takes_dir=tmp_path / str(n), options=CALM, timecode=source)
    result = real_time(attempt, _locked(start=1.0, sync=2.0))
    assert result.state is RunState.DONE, result.summary["faults"]
    assert abs(result.summary["start_error_ticks"]) <= 1.0
    assert result.summary["max_sync_error_ticks"] <= 2.0


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


def test_timecode_lost_mid_run_ends_in_a_controlled_stop(product_plan, serial_rig, tmp_path):
    result = real_time(lambda n: run_take(product_plan, serial_rig()[1], takes_dir=tmp_path / str(n), options=CALM,
                                          timecode=_StoppingDeck(product_plan.move.rate, product_plan.move.start - 50,
                                                                 frames=50 + 40)),
                       faulted_with("timecode lost"))
    assert result.state is RunState.FAULTED
    assert any("timecode lost" in f for f in result.summary["faults"]), result.summary["faults"]


def test_timecode_jump_mid_run_ends_in_a_controlled_stop(product_plan, serial_rig, tmp_path):
    result = real_time(lambda n: run_take(product_plan, serial_rig()[1], takes_dir=tmp_path / str(n), options=CALM,
                                          timecode=_JumpingDeck(product_plan.move.rate, product_plan.move.start - 50,
                                                                after=50 + 40)),
                       faulted_with("jumped"))
    assert result.state is RunState.FAULTED
    assert any("jumped" in f for f in result.summary["faults"]), result.summary["faults"]


def test_arming_after_the_start_timecode_passed_is_a_fault(product_plan, serial_rig, tmp_path):
    device, driver = serial_rig()
    source = InternalTimecode(product_plan.move.rate, product_plan.move.start + 100)
    result = run_take(product_plan, driver, takes_dir=tmp_path, options=CALM, timecode=source)
    assert result.state is RunState.FAULTED
    assert any("already passed" in f for f in result.summary["faults"]), result.summary["faults"]


def test_chase_an_ltc_file_starts_on_the_start_frame(product_plan, serial_rig, tmp_path):
    from motionctl.ltc import encode, write_wav
    from motionctl.runtime.chase import LtcFileTimecode

    rate = product_plan.move.rate
    first = product_plan.move.start - 60                     # 1.2 s of pre-roll at 50 fps
    wav = tmp_path / "ltc.wav"
    write_wav(wav, encode(first.frame, 60 + 200, rate, 48000), 48000)
    result = real_time(lambda n: run_take(product_plan, serial_rig()[1], takes_dir=tmp_path / str(n), options=CALM,
                                          timecode=LtcFileTimecode(str(wav), rate)),
                       _locked(start=1.0, sync=3.0))
    assert result.state is RunState.DONE, result.summary["faults"]
    assert abs(result.summary["start_error_ticks"]) <= 1.0
    assert result.summary["max_sync_error_ticks"] <= 3.0
