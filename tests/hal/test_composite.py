"""The composite driver inside (a unit: its groups here are recording drivers, no wire): every axis of
every group plays tick t at the same time, whatever each group's lookahead; one E-stop reaches every group
even when one of them fails; the rig's link statistics are the groups', named after them.  The composite
over real wires and simulated controllers: tests/cli/test_run_groups.py."""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType

import numpy as np
import pytest

from motionctl.errors import HardwareError
from motionctl.hal import registry
from motionctl.hal.driver import Driver
from motionctl.spec import load_rig
from motionctl.spec.rig import HardwareBinding
from tests.conftest import RIGS

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")


class Recorder(Driver):
    """A group that records what it is given (``?lookahead=N`` in its URL; ``?fail=1``: quick stop fails)."""

    def __init__(self, rig, url, **options):
        super().__init__(rig, url, **options)
        query = registry.TransportUrl.parse(url).options
        self.wanted = int(query.get("lookahead", 0))
        self.fail = query.get("fail") == "1"
        self.written: list[tuple[int, list[int]]] = []
        self.stopped = False

    def _do_open(self):
        self.lookahead_ticks = self.wanted          # as a serial 1.1 link learns it in its handshake

    def _do_close(self):
        pass

    def _do_enable(self, timeout_s):
        pass

    def _do_disable(self):
        pass

    def _do_quick_stop(self):
        self.stopped = True
        if self.fail:
            raise HardwareError("this group's link is dead")

    def _do_fault_reset(self):
        pass

    def _do_write(self, sequence, counts, tick):
        self.written.append((tick, counts))
        self.stats.drop("late", 1)

    def _do_read(self, timeout_s):
        return None


@pytest.fixture
def composite(monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "rec", f"{__name__}:Recorder")

    def make(fail: bool = False):
        rig = load_rig(RIGS / "ur10e_track.toml")
        track = HardwareBinding("rec://bus/track?lookahead=0", 250, MappingProxyType({"track": 1}),
                                MappingProxyType({"track": 1000.0}), name="track")
        arm = HardwareBinding("rec://bus/arm?lookahead=3" + ("&fail=1" if fail else ""), 250,
                              MappingProxyType({n: i + 1 for i, n in enumerate(JOINTS)}),
                              MappingProxyType({n: 2000 * math.pi for n in JOINTS}), name="arm")   # 1000/rad
        address = {**track.address, **arm.address}
        counts = {**track.counts, **arm.counts}
        binding = HardwareBinding("group://track,arm", 250, MappingProxyType(address), MappingProxyType(counts),
                                  None, (track, arm))
        return registry.open_driver(replace(rig, hardware=binding)).open()
    return make


def test_every_group_plays_tick_t_together_whatever_its_lookahead(composite):
    rig = composite()
    track, arm = rig.parts
    assert rig.lookahead_ticks == 3
    for tick in range(4, 12):                       # the servo loop: tick t's setpoints, 3 ticks ahead
        rig.write_setpoints(np.full(7, tick / 1000.0), tick=tick)
    # The queued group gets each tick 3 ahead; the latching group gets the same tick 3 later (when it is
    # due), the first three times with the first setpoint streamed (what it holds before streaming began).
    assert [(t, c[0]) for t, c in arm.written] == [(t, t) for t in range(4, 12)]
    assert [(t, c[0]) for t, c in track.written] == [(1, 4), (2, 4), (3, 4)] + [(t, t) for t in range(4, 9)]


def test_an_estop_reaches_every_group_even_when_one_fails(composite):
    rig = composite(fail=True)
    track, arm = rig.parts
    rig.quick_stop()                                # never raises: E-stop always works
    assert track.stopped and arm.stopped
    assert rig.events == ["arm: quick stop failed: this group's link is dead"]


def test_the_rigs_link_statistics_are_its_groups_named(composite):
    rig = composite()
    for tick in range(4, 8):
        rig.write_setpoints(np.zeros(7), tick=tick)
    stats = rig.stats
    assert stats.sent == 8 and stats.dropped == {"track: late": 4, "arm: late": 4}
