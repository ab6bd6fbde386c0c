"""The streamer over a real pty against the simulated controller: runs, stops, faults, E-stop, takes."""

from __future__ import annotations

import numpy as np

from motionctl.planner.limits import derivatives
from motionctl.runtime.session import run_take
from motionctl.runtime.streamer import RunState, Streamer, StreamerOptions
from motionctl.runtime.takes import TakeWriter, read_take
from motionctl.runtime.watchdogs import HOST_STALLED
from tests.conftest import real_time
from tests.runtime.conftest import faulted_with, finished

#: Tests that are not about host timing must not fail because a shared CI machine is busy.
CALM = StreamerOptions(stall_cycles=50, late_budget=0.5, stale_feedback_s=0.2)


def _streamer(plan, driver, tmp_path):
    take = TakeWriter(tmp_path, {"move": plan.move.name}, driver.axis_names, plan.rate_hz)
    streamer = Streamer(plan, driver, take=take, options=CALM)
    streamer.run_in_thread()
    assert streamer.ready.wait(5)
    driver.enable()
    return streamer


def test_dry_run_to_the_end_records_a_take(product_plan, serial_rig, tmp_path):
    # every tick on time too: a missed deadline (the machine's, not the code's) leaves a row out of the take
    result = real_time(lambda n: run_take(product_plan, serial_rig(from_park=True)[1], takes_dir=tmp_path / str(n),
                                          options=CALM), lambda r: finished(r) and r.summary["overruns"] == 0)
    assert result.state is RunState.DONE, result.summary["faults"]
    assert max(abs(v) for v in result.start_error) < 1e-4
    take = read_take(result.take)
    assert take.complete
    assert take.meta["summary"]["state"] == "done"
    running = [r for r in take.rows if r[take.columns.index("state")] == "running"]
    assert len(running) >= len(product_plan.trajectory) - 2
    # Every commanded tick of the run is within the plan's limits (the drives saw a legal trajectory).
    cmd = np.array([[float(r[take.columns.index(f"cmd_{a}")]) for a in product_plan.rig.axis_names] for r in running])
    v, a, j = derivatives(cmd, product_plan.rate_hz)
    vmax = np.array([ax.vmax for ax in product_plan.rig.axes])
    assert np.all(np.abs(v[3:]) <= vmax * 1.001)
    # The measured motion follows: following error stays small.
    ferr = result.summary["max_following_error"]
    assert ferr["track"] < CALM.following_error_m


def test_arming_far_from_the_start_is_refused(product_plan, serial_rig, tmp_path):
    """With a start tolerance below the encoder resolution the measured pose is never close enough."""
    device, driver = serial_rig()
    take = TakeWriter(tmp_path, {"move": "x"}, driver.axis_names, product_plan.rate_hz)
    streamer = Streamer(product_plan, driver, take=take,
                        options=StreamerOptions(start_tolerance_m=1e-12, start_tolerance_rad=1e-12,
                                                stall_cycles=50, late_budget=0.5, stale_feedback_s=0.2))
    streamer.run_in_thread()
    assert streamer.ready.wait(5)
    driver.enable()
    try:
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
    finally:
        streamer.shutdown()


def test_estop_during_a_run_quick_stops_every_axis(product_plan, serial_rig, tmp_path):
    def running(n):
        device, driver = serial_rig()
        streamer = _streamer(product_plan, driver, tmp_path / str(n))
        streamer.go_to_start()
        if streamer.wait_for({RunState.AT_START}, 30) is RunState.AT_START:
            streamer.arm()
            streamer.wait_for({RunState.ARMED}, 2)
            streamer.start()
            streamer.wait_for({RunState.DONE}, 1.2)
        if streamer.state is not RunState.RUNNING:
            streamer.shutdown()
        return streamer, driver, device
    streamer, driver, device = real_time(running, lambda run: run[0].state is RunState.RUNNING)
    try:
        assert streamer.state is RunState.RUNNING, streamer.fault_message
        streamer.estop()
        assert streamer.wait_for({RunState.ESTOPPED}, 1) is RunState.ESTOPPED
        state = None
        for _ in range(50):
            state = driver.read_state(0.05) or state
            if state and all(a.status.value == "quick stop" for a in state.axes[:7]):
                break
        assert state is not None and all(a.status.value == "quick stop" for a in state.axes[:7])
        assert all(device.quick[i] for i in range(7))
    finally:
        streamer.shutdown()


def test_drive_fault_latches_and_needs_reset_and_a_new_go_to_start(product_plan, serial_rig, tmp_path):
    device, driver = serial_rig("drive:wrist_1@1.0=0x0010")
    streamer = _streamer(product_plan, driver, tmp_path)
    try:
        streamer.go_to_start()
        assert streamer.wait_for({RunState.AT_START, RunState.FAULTED}, 30) is RunState.AT_START or True
        if streamer.state is RunState.AT_START:
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
    finally:
        streamer.shutdown()


def test_following_error_watchdog_ends_in_controlled_stop_and_latched_fault(product_plan, serial_rig, tmp_path):
    result = real_time(lambda n: run_take(product_plan, serial_rig("following:track@2.5")[1],
                                          takes_dir=tmp_path / str(n), options=CALM),
                       faulted_with("following error on track"))
    assert result.state is RunState.FAULTED
    assert any("following error on track" in f for f in result.summary["faults"]), result.summary["faults"]
    take = read_take(result.take)
    states = [r[take.columns.index("state")] for r in take.rows]
    assert "stopping" in states                   # a controlled stop, not a quick stop


def test_stale_feedback_watchdog(product_plan, serial_rig, tmp_path):
    result = real_time(lambda n: run_take(product_plan, serial_rig("stall@0.5+2")[1], takes_dir=tmp_path / str(n)),
                       faulted_with("no feedback"))
    assert result.state is RunState.FAULTED
    assert any("no feedback" in f for f in result.summary["faults"]), result.summary["faults"]


def test_speed_override_keeps_the_path_and_slows_the_run(product_plan, serial_rig, tmp_path):
    result = real_time(lambda n: run_take(product_plan, serial_rig()[1], takes_dir=tmp_path / str(n), speed=0.5,
                                          options=CALM), finished)
    assert result.state is RunState.DONE, result.summary["faults"]
    take = read_take(result.take)
    running = [r for r in take.rows if r[take.columns.index("state")] == "running"]
    assert len(running) > 1.7 * len(product_plan.trajectory)
    # Same path: every commanded pose is a pose of the plan's path.
    names = product_plan.rig.axis_names
    cmd = np.array([[float(r[take.columns.index(f"cmd_{a}")]) for a in names] for r in running[::25]])
    path = product_plan.joint_path(np.linspace(0, product_plan.joint_path.duration, 20000))
    gaps = [np.min(np.linalg.norm(path - row, axis=1)) for row in cmd]
    assert max(gaps) < 2e-3


def test_noisy_link_drops_and_counts_bad_frames_but_completes(product_plan, serial_rig, tmp_path):
    result = real_time(lambda n: run_take(product_plan, serial_rig("corrupt=0.02", "drop=0.01")[1],
                                          takes_dir=tmp_path / str(n), options=CALM), finished)
    assert result.state is RunState.DONE, result.summary["faults"]
    dropped = result.summary["link"]["dropped"]
    assert sum(dropped.values()) > 0


def test_unplugged_link_faults_in_plain_words(product_plan, serial_rig, tmp_path):
    device, driver = serial_rig("unplug@0.5")
    result = run_take(product_plan, driver, takes_dir=tmp_path, options=CALM)
    assert result.state in (RunState.FAULTED, RunState.ESTOPPED)
    assert any("feedback" in f or "failed" in f or "silent" in f for f in result.summary["faults"]), result.summary["faults"]


def _run_with_hiccups(product_plan, driver, tmp_path, hiccup, options):
    """Run a take while ``hiccup(streamer, tick)`` may stall the servo thread (a unit-internal stand-in for
    a busy host: the wire, the device and everything else are real)."""
    take = TakeWriter(tmp_path, {"move": "x"}, driver.axis_names, product_plan.rate_hz)
    streamer = Streamer(product_plan, driver, take=take, options=options)
    original = streamer._tick

    def tick():
        if streamer.state is RunState.RUNNING:
            hiccup(streamer)
        original()

    streamer._tick = tick
    streamer.run_in_thread()
    assert streamer.ready.wait(5)
    driver.enable()
    try:
        streamer.go_to_start()
        assert streamer.wait_for({RunState.AT_START}, 30) is RunState.AT_START
        streamer.arm()
        streamer.wait_for({RunState.ARMED}, 2)
        streamer.start()
        streamer.wait_for({RunState.DONE, RunState.FAULTED}, 20)
    finally:
        streamer.shutdown()
        take.finish(streamer.summary.__dict__)
    return streamer, take


def test_a_stalled_setpoint_stream_ends_in_a_controlled_stop(product_plan, serial_rig, tmp_path):
    import time as _time
    def attempt(n):
        stalled = {"done": False}

        def hiccup(streamer):
            if streamer._tau > 1.0 and not stalled["done"]:
                stalled["done"] = True
                _time.sleep(5 / product_plan.rate_hz)      # five cycles without a setpoint
        options = StreamerOptions(stall_cycles=3, late_budget=1.0, stale_feedback_s=0.3)
        return _run_with_hiccups(product_plan, serial_rig()[1], tmp_path / str(n), hiccup, options)
    streamer, take = real_time(attempt, lambda run: any(HOST_STALLED in f for f in run[0].summary.faults))
    assert streamer.state is RunState.FAULTED
    assert any(HOST_STALLED in f for f in streamer.summary.faults), streamer.summary.faults
    recorded = read_take(take.path)
    states = [r[recorded.columns.index("state")] for r in recorded.rows]
    assert "stopping" in states


def test_late_cycles_are_counted_and_a_blown_budget_stops(product_plan, serial_rig, tmp_path):
    import time as _time
    def hiccup(streamer):
        if streamer._tau > 0.5 and streamer.clock.tick % 3 == 0:
            _time.sleep(2.5 / product_plan.rate_hz)        # every third cycle leaves more than a period late
    options = StreamerOptions(stall_cycles=50, late_budget=0.1, stale_feedback_s=0.3)
    streamer, take = real_time(lambda n: _run_with_hiccups(product_plan, serial_rig()[1], tmp_path / str(n), hiccup,
                                                           options),
                               lambda run: any("late" in f and "budget" in f for f in run[0].summary.faults))
    assert streamer.state is RunState.FAULTED
    assert any("late" in f and "budget" in f for f in streamer.summary.faults), streamer.summary.faults
    assert streamer.clock.stats.late_ticks + streamer.clock.stats.overruns > 0
