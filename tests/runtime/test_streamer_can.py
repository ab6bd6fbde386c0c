"""The streamer over the virtual CAN bus against simulated CiA 402 drives, in simulated time: a full run
and the CAN faults, each with its exact outcome."""

from __future__ import annotations

import numpy as np

from motionctl.planner.limits import axis_limits, derivatives
from motionctl.runtime.streamer import RunState
from motionctl.runtime.takes import read_take


def _stop_within_limits(plan, result) -> None:
    """No commanded step while stopping exceeds an axis limit."""
    take = read_take(result.take)
    # (in "faulted" the drives ignore targets: the host sends where they are, so nothing jumps on reset)
    rows = [r for r in take.rows if r[take.columns.index("state")] in ("running", "stopping", "stopped")]
    names = plan.rig.axis_names
    cmd = np.array([[float(r[take.columns.index(f"cmd_{a}")]) for a in names] for r in rows])
    v, a, _ = derivatives(cmd, plan.rate_hz)
    for i, lim in enumerate(axis_limits(plan.rig)[: len(names)]):
        assert np.abs(v[3:, i]).max() <= lim.vmax * (1 + 1e-9), lim.name
        assert np.abs(a[3:, i]).max() <= lim.amax * (1 + 1e-9), lim.name


def test_full_dry_run_over_can(product_plan, sim_rig, tmp_path):
    result = sim_rig(transport="can").take(product_plan, tmp_path)
    assert result.state is RunState.DONE, result.summary["faults"]
    assert read_take(result.take).complete


def test_the_same_can_run_twice_writes_the_same_take(product_plan, sim_rig, tmp_path):
    first = sim_rig(transport="can").take(product_plan, tmp_path / "a")
    second = sim_rig(transport="can").take(product_plan, tmp_path / "b")
    for name in ("samples.csv", "events.jsonl"):
        assert (first.take / name).read_bytes() == (second.take / name).read_bytes(), name


def test_emcy_stops_every_axis_with_the_fault_in_plain_words(product_plan, sim_rig, tmp_path):
    result = sim_rig("drive:wrist_1@2.0=0x2310", transport="can").take(product_plan, tmp_path)
    assert result.state is RunState.FAULTED
    assert any("wrist_1" in f and "current" in f.lower() for f in result.summary["faults"]), result.summary["faults"]
    _stop_within_limits(product_plan, result)


def test_lost_drive_heartbeat_stops_everything(product_plan, sim_rig, tmp_path):
    result = sim_rig("heartbeat:elbow@2.0", transport="can").take(product_plan, tmp_path)
    assert result.state is RunState.FAULTED
    assert any("elbow" in f for f in result.summary["faults"]), result.summary["faults"]


def test_bus_off_stops_everything_in_plain_words(product_plan, sim_rig, tmp_path):
    result = sim_rig("busoff@2.0", transport="can").take(product_plan, tmp_path)
    assert result.state is RunState.FAULTED
    assert any("bus" in f.lower() for f in result.summary["faults"]), result.summary["faults"]


def test_following_error_trip_over_can_is_a_controlled_stop(product_plan, sim_rig, tmp_path):
    result = sim_rig("following:track@2.0", transport="can").take(product_plan, tmp_path)
    assert result.state is RunState.FAULTED
    assert any("track" in f for f in result.summary["faults"]), result.summary["faults"]
    _stop_within_limits(product_plan, result)


def test_the_bus_load_hw_info_prints_is_what_a_bus_monitor_counts(product_plan, sim_rig, tmp_path):
    """During a run a passive monitor on the bus counts exactly the frames ``motionctl hw info`` accounts
    for (RPDO1, TPDO1 and SYNC per cycle, TPDO2 every n-th, the heartbeats): no default PDO left on, no
    stray traffic.  Counted between two SYNCs 2 s of simulated time apart."""
    import re

    import can

    from motionctl.hal.canopen.config import bus_load_report
    rig = sim_rig(transport="can")
    monitor = can.Bus(interface="virtual", channel=rig.driver.channel)
    try:
        result = rig.take(product_plan, tmp_path)
        frames = []
        while (msg := monitor.recv(timeout=0)) is not None:
            frames.append(msg.arbitration_id)
    finally:
        monitor.shutdown()
    assert result.state is RunState.DONE, result.summary["faults"]
    rate = product_plan.rate_hz
    syncs = [i for i, cob in enumerate(frames) if cob == 0x080]
    first, last = syncs[100], syncs[100 + 2 * rate]             # 2 s of cycles, mid-take
    counted = (last - first) / 2.0
    line = bus_load_report(product_plan.rig, rate)[0]
    printed = float(re.search(r": ([\d ]+) frames/s", line).group(1).replace(" ", ""))
    assert abs(counted - printed) <= 0.01 * printed, (counted, line)
    # ... and nothing the report does not name: RPDO1, SYNC, TPDO1, TPDO2, heartbeats (and SDO/NMT at open).
    names = {0x080} | {base + n for base in (0x180, 0x200, 0x280, 0x700) for n in range(1, 128)}
    assert not {cob for cob in frames[first:last] if cob not in names}


def test_a_warning_mid_run_is_said_and_the_run_goes_on(product_plan, sim_rig, tmp_path):
    """CiA 402: a warning (EMCY 0x4210, statusword bit 7) does not stop the drive, so it does not stop the
    run either (the old master quick-stopped the drive on any EMCY and the run faulted)."""
    result = sim_rig("warning:wrist_1@1+0.5=0x4210", transport="can").take(product_plan, tmp_path)
    assert result.state is RunState.DONE, result.summary["faults"]
    assert not result.summary["faults"]


def test_a_drive_that_reboots_mid_run_stops_the_rig_and_a_reset_brings_it_back(product_plan, sim_rig, tmp_path):
    rig = sim_rig("reboot:elbow@4.0", transport="can")
    streamer = rig.started(product_plan, tmp_path)
    assert streamer.wait_for({RunState.FAULTED}, 30) is RunState.FAULTED
    assert "elbow (node 4) rebooted" in streamer.fault_message, streamer.fault_message
    streamer.reset()                      # reconfigures the rebooted drive, resets, enables
    assert streamer.wait_for({RunState.IDLE}, 5) is RunState.IDLE, streamer.events[-4:]
    assert streamer.run_until(lambda: streamer.last_state is not None and streamer.last_state.all_enabled, 5)
    assert rig.device.drive("elbow").local.sdo[0x6060].raw == 8


def test_drives_that_watch_sync_never_miss_one_and_fault_when_the_host_stalls(product_plan, sim_rig, tmp_path):
    """Every drive faults (EMCY 0x8700) in Operation enabled after 3 SYNC periods without a SYNC.  A whole
    take (enable, go to start, arm, run, end) never trips it: the stream never pauses.  A host stall of
    10 periods does."""
    from motionctl.runtime.states import StreamerOptions
    result = sim_rig("syncwatch=3", transport="can").take(product_plan, tmp_path / "a")
    assert result.state is RunState.DONE, result.summary["faults"]
    stalled = sim_rig("syncwatch=3", transport="can").take(
        product_plan, tmp_path / "b", options=StreamerOptions(host_stall=(1.0, 10 / product_plan.rate_hz),
                                                              stall_cycles=1000))
    assert stalled.state is RunState.FAULTED
    assert any("ync" in f for f in stalled.summary["faults"]), stalled.summary["faults"]
