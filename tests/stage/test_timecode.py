"""The stage's timecode: what a rig makes of the master's frames (on a simulated clock), and the master."""

from __future__ import annotations

import time

import pytest

from motionctl.runtime.chase import Observation, TimecodeLock
from motionctl.stage.timecode import StageTimecode, TimecodeMaster
from motionctl.timecode import FrameRate, Timecode

RATE = FrameRate.parse("25")


def test_frames_become_observations_at_their_arrival_only_once_rolled_and_at_the_moves_rate():
    now = [0]
    source = StageTimecode(RATE, clock=lambda: now[0])
    assert source.offer(100, "25") and source.poll() == []               # not rolled: nothing kept
    source.roll()
    for k in range(5):
        now[0] = 1_000_000_000 + k * 40_000_000
        assert source.offer(900_000 + k, "25")
    assert not source.offer(900_005, "29.97df")                         # another rate: refused
    observations = source.poll()
    assert observations == [Observation(900_000 + k, 1_000_000_000 + k * 40_000_000) for k in range(5)]
    assert source.poll() == []
    lock = TimecodeLock(RATE)
    for observation in observations:
        lock.observe(observation)
    assert lock.locked and lock.host_ns_of(900_010) == pytest.approx(1_000_000_000 + 10 * 40_000_000, abs=1)
    source.close()
    source.offer(900_006, "25")
    assert source.poll() == []


def test_jittered_arrivals_are_not_a_jump_and_a_real_jump_is():
    """Arrivals up to 2.5 frames late or early (a lagging clock, bursts) keep the lock; a frame number out
    of sequence is still a jump.  Seeded: the same arrivals every run."""
    import random

    rng = random.Random(17)
    now = [0]
    source = StageTimecode(RATE, clock=lambda: now[0])
    source.roll()
    lock = TimecodeLock(RATE)
    t0, period = 5_000_000_000, 40_000_000
    for k in range(200):
        now[0] = t0 + k * period + (rng.choice([-1, 1]) * 100_000_000 if k % 17 == 5 else rng.randint(0, 3_000_000))
        source.offer(900_000 + k, "25")
        for observation in source.poll():
            lock.observe(observation)
    assert lock.locked and lock.jumps == []
    for k in range(200, 203):                                 # 100 frames on: the master was cued elsewhere
        now[0] = t0 + k * period
        source.offer(900_100 + k, "25")
        for observation in source.poll():
            lock.observe(observation)
    assert lock.jumps


@pytest.mark.wall_clock
def test_the_master_sends_every_frame_in_order_from_its_start():
    sent: list[int] = []
    start = Timecode.parse("09:59:58:00", RATE)
    master = TimecodeMaster(sent.append, RATE, start).start()
    time.sleep(0.5)
    master.stop()
    count = len(sent)
    assert count >= 3 and master.sent == count
    assert sent == list(range(start.frame, start.frame + count))           # none skipped, none repeated
    time.sleep(0.1)
    assert len(sent) == count                                            # stopped
