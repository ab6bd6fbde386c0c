"""The streamer over a real pty against the simulated controller, in simulated time: runs, stops, faults,
E-stop, takes.  Every outcome is exact: the same run gives the same ticks on any machine."""

from __future__ import annotations

import time

import numpy as np
import pytest

from motionctl.planner.limits import axis_limits, derivatives
from motionctl.runtime.streamer import RunState, StreamerOptions
from motionctl.runtime.takes import read_take
from motionctl.runtime.watchdogs import HOST_OVERLOADED, HOST_STALLED


def _commanded(plan, take, states=("running",)):
    rows = [r for r in take.rows if r[take.columns.index("state")] in states]
    names = plan.rig.axis_names
    return np.array([[float(r[take.columns.index(f"cmd_{a}")]) for a in names] for r in rows])


def _within_limits(plan, commanded, skip=3):
    v, a, j = (d[skip:] for d in derivatives(commanded, plan.rate_hz))
    for i, lim in enumerate(axis_limits(plan.rig)[: commanded.shape[1]]):
        assert np.abs(v[:, i]).max() <= lim.vmax * (1 + 1e-9), lim.name
        assert np.abs(a[:, i]).max() <= lim.amax * (1 + 1e-9), lim.name
        assert np.abs(j[:, i]).max() <= lim.jmax * (1 + 1e-9), lim.name


def test_dry_run_to_the_end_records_a_take(product_plan, sim_rig, tmp_path):
    result = sim_rig(near_start=False).take(product_plan, tmp_path)
    assert result.state is RunState.DONE, result.summary["faults"]
    assert result.summary["overruns"] == 0
    assert max(abs(v) for v in result.start_error) < 1e-4
    take = read_take(result.take)
    assert take.complete
    assert take.meta["summary"]["state"] == "done"
    # Every planned sample was streamed, once, in order: the run's commanded joints are the plan's.
    cmd = _commanded(product_plan, take, ("running", "done"))
    q = product_plan.trajectory.q
    assert np.array_equal(cmd[: len(q) - 1], q[1:])             # the tick of the last sample says "done"
    assert np.all(cmd[len(q) - 1:] == q[-1])                    # and the rig holds there
    _within_limits(product_plan, cmd)
    # The measured motion follows: following error stays small.
    assert result.summary["max_following_error"]["track"] < StreamerOptions().following_error_m


def test_the_same_run_twice_writes_the_same_take(product_plan, sim_rig, tmp_path):
    first = sim_rig().take(product_plan, tmp_path / "a")
    second = sim_rig().take(product_plan, tmp_path / "b")
    for name in ("samples.csv", "events.jsonl"):
        assert (first.take / name).read_bytes() == (second.take / name).read_bytes(), name


@pytest.mark.parametrize("transport", ["serial", "can"])
def test_a_busy_machine_between_open_and_run_is_not_a_silent_device(product_plan, sim_rig, tmp_path, transport):
    """In simulated time the device answers only on ticks.  A machine too busy to start the run for more
    than the link timeout of wall time after the drives were opened (here: a pause) made the serial driver
    call the device silent ("silent for more than 500 ms", seen in make test beside busy processes): the
    link's age is on the run's clock, and the take is the same as without the pause."""
    quick = sim_rig(transport=transport).take(product_plan, tmp_path / "a")
    rig = sim_rig(transport=transport)
    time.sleep(0.8)                     # wall time only: simulated time stands still meanwhile
    paused = rig.take(product_plan, tmp_path / "b")
    assert paused.state is RunState.DONE, paused.summary["faults"]
    for name in ("samples.csv", "events.jsonl"):
        assert (quick.take / name).read_bytes() == (paused.take / name).read_bytes(), name


def test_arming_far_from_the_start_is_refused(product_plan, sim_rig, tmp_path):
    """With a start tolerance below the encoder resolution the measured pose is never close enough."""
    rig = sim_rig()
    streamer = rig.streamer(product_plan, tmp_path, StreamerOptions(start_tolerance_m=1e-12, start_tolerance_rad=1e-12))
    streamer.arm()                                    # not at start yet: refused by the state machine
    streamer.wait_for({RunState.ARMED}, 0.2)
    assert streamer.state is RunState.IDLE
    streamer.go_to_start()
    assert streamer.wait_for({RunState.AT_START}, 30) is RunState.AT_START
    streamer.arm()
    streamer.wait_for({RunState.ARMED}, 0.5)
    assert streamer.state is RunState.AT_START, (streamer.fault_message, streamer.events[-5:])
    assert any("not armed" in r and "from the start" in r for r in streamer.refusals)
    streamer.start()                                  # start without arming is refused too
    streamer.wait_for({RunState.RUNNING}, 0.3)
    assert streamer.state is RunState.AT_START, (streamer.fault_message, streamer.events[-5:])


def _running(plan, rig, tmp_path, seconds: float):
    streamer = rig.started(plan, tmp_path)
    assert streamer.run_until(lambda: streamer.run_time >= seconds, seconds + 1)
    assert streamer.state is RunState.RUNNING, streamer.fault_message
    return streamer


def test_estop_during_a_run_quick_stops_every_axis(product_plan, sim_rig, tmp_path):
    rig = sim_rig()
    streamer = _running(product_plan, rig, tmp_path, 1.0)
    streamer.estop()
    assert streamer.wait_for({RunState.ESTOPPED}, 0.1) is RunState.ESTOPPED
    # the drives' answers say so as soon as the next setpoints play (on a queued link, the lookahead after:
    # QUICK_STOP empties the queue, the drives quick-stop at once, and report it when setpoints play again)
    streamer.clock.step(streamer.lookahead + 3)
    state = streamer.last_state
    assert all(a.status.value == "quick stop" for a in state.axes[:7]), [a.status for a in state.axes]
    assert all(rig.device.quick[i] for i in range(7))


def test_a_controlled_stop_mid_run_holds_every_limit_and_stays_on_the_path(product_plan, sim_rig, tmp_path):
    rig = sim_rig()
    streamer = _running(product_plan, rig, tmp_path, 1.2)
    streamer.stop()
    assert streamer.wait_for({RunState.STOPPED}, 10) is RunState.STOPPED, streamer.fault_message
    assert streamer.run_until(lambda: streamer.drained, 2)      # a queued link has played it all
    streamer.shutdown()
    streamer.take.finish(streamer.summary.__dict__)
    take = read_take(streamer.take.path)
    cmd = _commanded(product_plan, take, ("running", "stopping", "stopped"))
    _within_limits(product_plan, cmd)
    # on the plan's path: every commanded pose lies on it
    path = product_plan.joint_path(np.linspace(0, product_plan.joint_path.duration, 40000))
    assert max(np.min(np.linalg.norm(path - row, axis=1)) for row in cmd[::10]) < 2e-3
    assert np.array_equal(cmd[-1], cmd[-2])          # at rest


def test_drive_fault_latches_and_needs_reset_and_a_new_go_to_start(product_plan, sim_rig, tmp_path):
    rig = sim_rig("drive:wrist_1@3.0=0x0010")
    streamer = rig.streamer(product_plan, tmp_path)
    streamer.go_to_start()
    assert streamer.wait_for({RunState.AT_START, RunState.FAULTED}, 30) is RunState.AT_START
    streamer.arm()
    streamer.wait_for({RunState.ARMED}, 2)
    streamer.start()
    assert streamer.wait_for({RunState.FAULTED}, 15) is RunState.FAULTED
    assert "wrist_1" in streamer.fault_message and "current" in streamer.fault_message
    streamer.arm()                                     # latched: arming is refused
    streamer.wait_for({RunState.ARMED}, 0.3)
    assert streamer.state is RunState.FAULTED
    streamer.reset()
    assert streamer.wait_for({RunState.IDLE}, 3) is RunState.IDLE, (streamer.refusals, streamer.events[-6:])
    streamer.arm()                                     # still needs a fresh go-to-start
    streamer.wait_for({RunState.ARMED}, 0.3)
    assert streamer.state is RunState.IDLE


def test_following_error_watchdog_ends_in_controlled_stop_and_latched_fault(product_plan, sim_rig, tmp_path):
    result = sim_rig("following:track@2.5").take(product_plan, tmp_path)
    assert result.state is RunState.FAULTED
    assert any("following error on track" in f for f in result.summary["faults"]), result.summary["faults"]
    take = read_take(result.take)
    states = [r[take.columns.index("state")] for r in take.rows]
    assert "stopping" in states                   # a controlled stop, not a quick stop


def test_stale_feedback_watchdog(product_plan, sim_rig, tmp_path):
    result = sim_rig("stall@0.5+2").take(product_plan, tmp_path)
    assert result.state is RunState.FAULTED
    assert any("no feedback" in f for f in result.summary["faults"]), result.summary["faults"]


def test_speed_override_keeps_the_path_and_slows_the_run(product_plan, sim_rig, tmp_path):
    result = sim_rig().take(product_plan, tmp_path, speed=0.5)
    assert result.state is RunState.DONE, result.summary["faults"]
    take = read_take(result.take)
    cmd = _commanded(product_plan, take)
    assert 1.95 * len(product_plan.trajectory) < len(cmd) < 2.05 * len(product_plan.trajectory)
    _within_limits(product_plan, cmd)
    # Same path: every commanded pose is a pose of the plan's path.
    path = product_plan.joint_path(np.linspace(0, product_plan.joint_path.duration, 20000))
    gaps = [np.min(np.linalg.norm(path - row, axis=1)) for row in cmd[::25]]
    assert max(gaps) < 2e-3


def test_noisy_link_drops_and_counts_bad_frames_but_completes(product_plan, sim_rig, tmp_path):
    result = sim_rig("corrupt=0.02", "drop=0.01").take(product_plan, tmp_path)
    assert result.state is RunState.DONE, result.summary["faults"]
    dropped = result.summary["link"]["dropped"]
    assert sum(dropped.values()) > 0


def test_unplugged_link_faults_in_plain_words(product_plan, sim_rig, tmp_path):
    result = sim_rig("unplug@0.5").take(product_plan, tmp_path)
    assert result.state in (RunState.FAULTED, RunState.ESTOPPED)
    assert any("feedback" in f or "failed" in f or "silent" in f for f in result.summary["faults"]), result.summary["faults"]


def _run_with_hiccups(plan, rig, tmp_path, hiccup, options):
    """Run a take while ``hiccup(streamer)`` makes the host late (in simulated time: the clock is told the
    servo thread woke late; the wire, the device and everything else are real)."""
    streamer = rig.streamer(plan, tmp_path, options)
    original = streamer._tick

    def tick():
        if streamer.state is RunState.RUNNING:
            hiccup(streamer)
        original()

    streamer._tick = tick
    streamer.go_to_start()
    assert streamer.wait_for({RunState.AT_START}, 30) is RunState.AT_START
    streamer.arm()
    streamer.wait_for({RunState.ARMED}, 2)
    streamer.start()
    streamer.wait_for({RunState.DONE, RunState.FAULTED}, 20)
    streamer.run_until(lambda: streamer.drained, 2)
    streamer.shutdown()
    streamer.take.finish(streamer.summary.__dict__)
    return streamer, streamer.take


def test_a_stalled_setpoint_stream_ends_in_a_controlled_stop(product_plan, sim_rig, tmp_path):
    stalled = {"done": False}

    def hiccup(streamer):
        if streamer.run_time > 1.0 and not stalled["done"]:
            stalled["done"] = True
            streamer.clock.stall(5 / product_plan.rate_hz)       # five cycles without a setpoint
    options = StreamerOptions(stall_cycles=3, late_budget=1.0, stale_feedback_s=0.3)
    # Without a setpoint queue (protocol 1.0 latching): with one, five cycles are ridden through (test_queue).
    streamer, take = _run_with_hiccups(product_plan, sim_rig(queue="off"), tmp_path, hiccup, options)
    assert streamer.state is RunState.FAULTED
    assert any(HOST_STALLED in f and "stalled for 5 cycles" in f for f in streamer.summary.faults), streamer.summary.faults
    recorded = read_take(take.path)
    states = [r[recorded.columns.index("state")] for r in recorded.rows]
    assert "stopping" in states
    # the drives were never given a jump: after the stall, the next setpoint of the plan
    _within_limits(product_plan, _commanded(product_plan, recorded, ("running", "stopping")))


def test_late_cycles_are_counted_and_a_blown_budget_stops(product_plan, sim_rig, tmp_path):
    def hiccup(streamer):
        if streamer.run_time > 0.5 and streamer.clock.tick % 3 == 0:
            streamer.clock.stall(2.5 / product_plan.rate_hz)   # every third cycle leaves more than a period late
    options = StreamerOptions(stall_cycles=50, late_budget=0.1, stale_feedback_s=0.3)
    # Without a setpoint queue: with one, a tick 2.5 periods late leaves the drives' queue 12 ticks deep.
    streamer, take = _run_with_hiccups(product_plan, sim_rig(queue="off"), tmp_path, hiccup, options)
    assert streamer.state is RunState.FAULTED
    assert any("late" in f and "budget" in f and HOST_OVERLOADED in f for f in streamer.summary.faults), \
        streamer.summary.faults
    assert streamer.clock.stats.late_ticks + streamer.clock.stats.overruns > 0
