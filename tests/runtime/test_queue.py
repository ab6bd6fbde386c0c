"""Serial 1.1's setpoint queue, end to end in simulated time: a host stall shorter than the lookahead
changes no sample the drives play; a longer one ends in the device's own stop along the queued path;
E-stop never waits behind queued motion.  (docs/serial-protocol.md §10)"""

from __future__ import annotations

import numpy as np

from motionctl.planner.limits import axis_limits, derivatives
from motionctl.runtime.streamer import RunState, StreamerOptions
from motionctl.runtime.takes import read_take

LOOKAHEAD_MS = 60          # 15 ticks at 250 Hz


def _rows(plan, take, states=None):
    rows = [r for r in take.rows if states is None or r[take.columns.index("state")] in states]
    names = plan.rig.axis_names
    cmd = np.array([[float(r[take.columns.index(f"cmd_{a}")]) for a in names] for r in rows])
    meas = np.array([[float(r[take.columns.index(f"meas_{a}")] or "nan") for a in names] for r in rows])
    return cmd, meas


def _within_limits(plan, cmd):
    v, a, j = (d[3:] for d in derivatives(cmd, plan.rate_hz))
    for i, lim in enumerate(axis_limits(plan.rig)[: cmd.shape[1]]):
        assert np.abs(v[:, i]).max() <= lim.vmax * (1 + 1e-9), lim.name
        assert np.abs(a[:, i]).max() <= lim.amax * (1 + 1e-9), lim.name
        assert np.abs(j[:, i]).max() <= lim.jmax * (1 + 1e-9), lim.name


def _stalled_run(plan, sim_rig, tmp_path, stall_s: float, **options):
    rig = sim_rig(lookahead_ms=LOOKAHEAD_MS)
    assert rig.driver.lookahead_ticks == LOOKAHEAD_MS * plan.rate_hz // 1000
    return rig, rig.take(plan, tmp_path, options=StreamerOptions(host_stall=(1.0, stall_s), **options))


def test_a_queued_run_plays_exactly_the_plan(product_plan, sim_rig, tmp_path):
    rig = sim_rig(lookahead_ms=LOOKAHEAD_MS)
    result = rig.take(product_plan, tmp_path)
    assert result.state is RunState.DONE, result.summary["faults"]
    cmd, _ = _rows(product_plan, read_take(result.take), ("running", "done"))
    q = product_plan.trajectory.q
    assert np.array_equal(cmd[: len(q) - 1], q[1:])


def test_a_host_stall_of_half_the_lookahead_changes_no_played_sample(product_plan, sim_rig, tmp_path):
    rig, result = _stalled_run(product_plan, sim_rig, tmp_path, LOOKAHEAD_MS / 2 / 1000)
    assert result.state is RunState.DONE, result.summary["faults"]
    take = read_take(result.take)
    cmd, _ = _rows(product_plan, take, ("running", "done"))
    q = product_plan.trajectory.q
    assert np.array_equal(cmd[: len(q) - 1], q[1:])              # every sample played as planned
    assert result.summary["overruns"] > 0                        # the host did stall (missed ticks)
    assert not result.summary["faults"]


def test_a_host_stall_of_twice_the_lookahead_ends_in_the_devices_stop_along_the_path(product_plan, sim_rig,
                                                                                      tmp_path):
    rig, result = _stalled_run(product_plan, sim_rig, tmp_path, 2 * LOOKAHEAD_MS / 1000,
                               stall_cycles=1000)          # the host's own stall watchdog out of the way
    assert result.state is RunState.FAULTED
    assert any("queue ran dry" in f for f in result.summary["faults"]), result.summary["faults"]
    # The drives came to rest on the path (the device braked along the queued targets; tests/simulator/
    # test_serial_queue.py checks its played targets tick by tick).  The take's rows for the stalled ticks
    # carry the measurement the host read when it woke, so the rest pose is what is checked here.
    cmd, meas = _rows(product_plan, read_take(result.take), ("running", "faulted"))
    rest = meas[-1]
    path = product_plan.joint_path(np.linspace(0, product_plan.joint_path.duration, 20000))
    assert np.min(np.linalg.norm(path - rest, axis=1)) < 0.01
    assert np.allclose(meas[-1], meas[-10], atol=1e-9)


def test_without_the_queue_the_same_short_stall_stops_the_run(product_plan, sim_rig, tmp_path):
    rig = sim_rig(queue="off")
    assert rig.driver.lookahead_ticks == 0
    result = rig.take(product_plan, tmp_path, options=StreamerOptions(host_stall=(1.0, LOOKAHEAD_MS / 2 / 1000)))
    assert result.state is RunState.FAULTED
    assert any("could not keep up" in f for f in result.summary["faults"]), result.summary["faults"]


def test_a_controlled_stop_on_a_queued_link_holds_every_limit(product_plan, sim_rig, tmp_path):
    rig = sim_rig(lookahead_ms=LOOKAHEAD_MS)
    streamer = rig.started(product_plan, tmp_path)
    assert streamer.run_until(lambda: streamer.run_time >= 1.2, 3)
    cmd, _ = _rows(product_plan, _stopped_take(streamer), ("running", "stopping", "stopped"))
    _within_limits(product_plan, cmd)


def test_estop_on_a_queued_link_does_not_wait_behind_the_queue(product_plan, sim_rig, tmp_path):
    rig = sim_rig(lookahead_ms=LOOKAHEAD_MS)
    streamer = rig.started(product_plan, tmp_path)
    assert streamer.run_until(lambda: streamer.run_time >= 1.0, 3)
    streamer.estop()
    streamer.clock.step(2)
    assert all(rig.device.quick[i] for i in range(7))              # quick-stopping now, not after the queue


def _stop_after(plan, rig, tmp_path, run_s: float):
    """Run ``plan`` for ``run_s`` of simulated time, ask for a stop, and return (the tick the servo loop
    took the request in, the take) once the rig has stopped and the queue has drained."""
    streamer = rig.started(plan, tmp_path)
    assert streamer.run_until(lambda: streamer.run_time >= run_s, 3)
    asked = streamer.clock.tick + 1            # simulated time stands still: the next tick takes it in
    return asked, _stopped_take(streamer)


def _stopped_take(streamer):
    """Ask ``streamer`` to stop; its take once the rig has stopped and the queue has drained."""
    streamer.stop()
    assert streamer.wait_for({RunState.STOPPED}, 10) is RunState.STOPPED, streamer.fault_message
    assert streamer.run_until(lambda: streamer.drained, 2)
    streamer.shutdown()
    streamer.take.finish(streamer.summary.__dict__)
    return read_take(streamer.take.path)


def _first_tick(take, state: str) -> int:
    ticks, states = take.columns.index("tick"), take.columns.index("state")
    return min(int(r[ticks]) for r in take.rows if r[states] == state)


def test_a_controlled_stop_replaces_the_queued_tail(product_plan, sim_rig, tmp_path):
    """The stop begins lead + margin ticks after it was asked for, inside the queue (its samples replace
    the queued ones), not a whole lookahead later; every played sample before it is the plan's."""
    from motionctl.runtime.stops import QUEUE_MARGIN_TICKS, STOP_LEAD_S
    rig = sim_rig(lookahead_ms=LOOKAHEAD_MS)
    lookahead = rig.driver.lookahead_ticks
    lead = int(np.ceil(STOP_LEAD_S * product_plan.rate_hz))
    asked, take = _stop_after(product_plan, rig, tmp_path, 1.2)
    first = _first_tick(take, "stopping")
    assert first == asked + lead + QUEUE_MARGIN_TICKS
    assert first < asked + lookahead + lead                       # sooner than from the queue's head
    # What the drives played up to the stop is the plan, sample for sample; from it on, the stop's samples
    # (they differ from the plan's: the rig brakes), and the stop holds every limit across the switch.
    cmd, meas = _rows(product_plan, take, ("running", "stopping", "stopped"))
    ticks = [int(r[take.columns.index("tick")]) for r in take.rows
             if r[take.columns.index("state")] in ("running", "stopping", "stopped")]
    at = ticks.index(first)
    q = product_plan.trajectory.q
    assert np.array_equal(cmd[:at], q[1:at + 1])
    assert not np.array_equal(cmd[at + 5], q[at + 6])
    _within_limits(product_plan, cmd)
    # The drives followed the replaced samples (no jump on the wire): they rest where the stop ended.
    assert np.allclose(meas[-1], cmd[-1], atol=1e-4)


def test_a_controlled_stop_on_a_queued_link_is_the_same_every_time(product_plan, sim_rig, tmp_path):
    takes = []
    for n in range(2):
        asked, take = _stop_after(product_plan, sim_rig(lookahead_ms=LOOKAHEAD_MS), tmp_path / str(n), 0.8)
        takes.append((take.path / "samples.csv").read_bytes())
    assert takes[0] == takes[1]


def test_a_queued_stop_the_host_was_too_late_to_switch_to_is_planned_again(product_plan, sim_rig, tmp_path):
    """The host stalls across the tick it had to replace the queue at: the stop is planned again from
    later (never switched to late, which would jump), and still holds every limit."""
    from motionctl.runtime.stops import QUEUE_MARGIN_TICKS, STOP_LEAD_S
    rig = sim_rig(lookahead_ms=LOOKAHEAD_MS)
    dt = 1.0 / product_plan.rate_hz
    streamer = rig.started(product_plan, tmp_path, options=StreamerOptions(host_stall=(1.0, 10 * dt)))
    # The stall comes when the queue's head reaches 1.0 s of the plan: ask for the stop 6 ticks before.
    assert streamer.run_until(lambda: streamer.motion.tau >= 1.0 - 6.5 * dt, 3)
    asked = streamer.clock.tick + 1
    take = _stopped_take(streamer)
    lead = int(np.ceil(STOP_LEAD_S * product_plan.rate_hz))
    stall = next(e["tick"] for e in take.events if "host stall injected" in e.get("message", ""))
    assert asked < stall < asked + lead                        # the stall came while the stop was due
    # The servo loop wakes 11 ticks on (10 missed), past the tick it had to replace the queue at: the stop
    # is planned again from there, with the same lead (simulated time waits for the planner).
    assert _first_tick(take, "stopping") == stall + 11 + lead + QUEUE_MARGIN_TICKS
    cmd, _ = _rows(product_plan, take, ("running", "stopping", "stopped"))
    _within_limits(product_plan, cmd)


def test_a_stop_of_a_go_to_start_begins_inside_the_queue(product_plan, sim_rig, tmp_path):
    """A go-to-start stopped on a queued link brakes from lead + margin ticks after the request, as a run
    does (not a whole lookahead later): the go-to-start's samples up to there, then the stop's, every limit
    held across the switch, and the drives at rest where the stop ended."""
    from motionctl.runtime.stops import QUEUE_MARGIN_TICKS, STOP_LEAD_S
    rig = sim_rig(lookahead_ms=LOOKAHEAD_MS, near_start=False)          # from park: a long go-to-start
    lookahead = rig.driver.lookahead_ticks
    lead = int(np.ceil(STOP_LEAD_S * product_plan.rate_hz))
    streamer = rig.streamer(product_plan, tmp_path)
    streamer.go_to_start()
    assert streamer.run_until(lambda: streamer.state is RunState.GOING_TO_START
                              and streamer.motion.transition_index > 2 * lookahead + 100, 10)
    going = streamer.motion.transition
    assert len(going.values) > streamer.motion.transition_index + lookahead + 50      # far from its end
    asked = streamer.clock.tick + 1
    take = _stopped_take(streamer)
    first = _first_tick(take, "stopping")
    assert first == asked + lead + QUEUE_MARGIN_TICKS
    cmd, meas = _rows(product_plan, take, ("going to start", "stopping", "stopped"))
    ticks = [int(r[take.columns.index("tick")]) for r in take.rows
             if r[take.columns.index("state")] in ("going to start", "stopping", "stopped")]
    at = ticks.index(first)
    # Up to the stop, exactly the go-to-start's samples (joints, in order); from it on, the stop's.
    joints = going.values[:, : cmd.shape[1]]
    start = int(np.flatnonzero((joints == cmd[0]).all(axis=1))[0])
    assert np.array_equal(cmd[:at], joints[start:start + at])
    assert not np.array_equal(cmd[at + 5], joints[start + at + 5])
    _within_limits(product_plan, cmd)
    assert np.allclose(meas[-1], cmd[-1], atol=1e-4)
