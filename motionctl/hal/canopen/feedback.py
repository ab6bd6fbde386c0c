"""What the CiA 402 drives reported: the receive side of the CAN backend.

Why separate from :mod:`motionctl.hal.canopen.driver`: everything here runs in canopen's notifier thread
(one callback per received frame) and must stay short -- decode, store, notify -- while the driver's
caller thread sends cycles and waits.  One condition variable guards both sides' shared state (the
driver also keeps its latched controlwords under it).

Bookkeeping: each SYNC the host sends gets a number; a TPDO1 that arrives is taken to answer the newest
SYNC sent.  A drive that has not answered the previous SYNC when the next goes out is counted as
``missing`` in the link statistics, an answer that comes more than one servo period after its SYNC as
``late``; neither is acted on here.  A drive that misses :data:`MISSED_SYNCS_OFFLINE` SYNCs in a row, or
whose heartbeat stops for ``drive_timeout_ms``, reads as OFFLINE.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

import canopen

from motionctl.errors import InputError, ProtocolError
from motionctl.hal.canopen import cia301, cia402
from motionctl.hal.canopen.config import TPDO1, TPDO2, CanOptions, NodePlan, drive_status
from motionctl.hal.canopen.cia402 import DriveState
from motionctl.hal.driver import AxisState, DriveStatus, LinkStats, RigState
from motionctl.hal.canopen.emcy import Emcy, decode_emcy

MISSED_SYNCS_OFFLINE = 10
STOPPED_ON_ITS_OWN = (DriveState.QUICK_STOP_ACTIVE, DriveState.FAULT_REACTION_ACTIVE, DriveState.FAULT)


def _may_have_quick_stopped(emcy: Emcy) -> bool:
    """Whether an EMCY may mean the drive has quick-stopped on its own before its statusword can say so.

    Why not every EMCY: CiA 402 separates warnings (statusword bit 7; the drive stays in Operation enabled)
    from faults (bit 3; Fault reaction active, then Fault, where no cyclic controlword re-enables it), and
    the statusword in the next TPDO tells which.  Latching a quick stop on a warning stops a drive that
    was right to keep running.  The one case the statusword may come too late for is a communication
    error (0x81xx: heartbeat or life guard, CAN overrun, bus-off recovered): the drive may then take the
    abort connection option (0x6007) and enter Quick stop active, from which our cyclic "enable
    operation" (transition 16) would start it again before its next TPDO arrives.
    """
    return not emcy.is_reset and emcy.code & 0xFF00 == 0x8100


class Feedback:
    """The newest TPDOs, EMCYs and heartbeats of every drive, in the driver's axis order."""

    def __init__(self, plan: list[NodePlan], period_s: float, options: CanOptions, stats: LinkStats,
                 clock: Callable[[], float] | None = None) -> None:
        self.plan = plan
        #: The run's clock in seconds (simulated time in a lock-step dry run): heartbeat ages, stamps.
        self.clock: Callable[[], float] = clock or time.monotonic
        self.period_s = period_s
        self.options = options
        self.stats = stats
        self.cond = threading.Condition()
        self.events: collections.deque[str] = collections.deque(maxlen=200)
        #: Called (with ``cond`` held) when drive ``i`` reports a quick stop or fault it was not told to make.
        self.on_stopped: Callable[[int], None] = lambda i: None
        self._by_cob: dict[int, int] = {}
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new connection)."""
        n = len(self.plan)
        with self.cond:
            self.statusword: list[int | None] = [None] * n
            self.position = [0] * n
            self.velocity = [0.0] * n           # increments/s, from consecutive TPDO1
            self.following = [0] * n
            self.answered = [-1] * n            # the SYNC number each drive's newest TPDO1 answered
            self.missed = [0] * n
            self.fresh: set[int] = set()
            self.emcy: list[Emcy | None] = [None] * n
            self.heartbeat_at: list[float | None] = [None] * n
            self.booted: set[int] = set()
            #: Drives that sent a boot-up after they were configured: they rebooted (power, watchdog,
            #: another node's NMT reset) and run on their defaults, pre-operational, until reconfigured.
            self.rebooted: set[int] = set()
            self.configured = False
            self.sync_count = 0
            self.sync_sent = 0.0
            self.sync_sequence: dict[int, int] = {}
            self.opened_at = self.clock()

    def subscribe(self, network: canopen.Network, plan: NodePlan) -> None:
        for cob_id, callback in ((cia301.tpdo_cob_id(1, plan.node), self.on_tpdo1),
                                 (cia301.tpdo_cob_id(2, plan.node), self.on_tpdo2),
                                 (cia301.emcy_cob_id(plan.node), self.on_emcy),
                                 (cia301.heartbeat_cob_id(plan.node), self.on_heartbeat)):
            self._by_cob[cob_id] = plan.index
            network.subscribe(cob_id, callback)

    # -- notifier thread ----------------------------------------------------------------------------------
    def on_tpdo1(self, can_id: int, data: bytearray, timestamp: float) -> None:
        i = self._by_cob[can_id]
        if len(data) != TPDO1.size:
            self.stats.drop("feedback of the wrong length")
            return
        statusword, position = TPDO1.unpack(data)
        with self.cond:
            sync, before = self.sync_count, self.answered[i]
            if self.statusword[i] is not None and sync > before >= 0:
                self.velocity[i] = (position - self.position[i]) / ((sync - before) * self.period_s)
            if sync and self.clock() - self.sync_sent > self.period_s:
                self.stats.drop("late")
            self.statusword[i], self.position[i], self.answered[i] = statusword, position, sync
            self.missed[i] = 0
            self.fresh.add(i)
            self.stats.received += 1
            if self.state(i) in STOPPED_ON_ITS_OWN:
                self.on_stopped(i)
            self.cond.notify_all()

    def on_tpdo2(self, can_id: int, data: bytearray, timestamp: float) -> None:
        if len(data) != TPDO2.size:
            self.stats.drop("feedback of the wrong length")
            return
        with self.cond:
            self.following[self._by_cob[can_id]] = TPDO2.unpack(data)[0]
            self.stats.received += 1

    def on_emcy(self, can_id: int, data: bytearray, timestamp: float) -> None:
        i = self._by_cob[can_id]
        try:
            emcy = decode_emcy(bytes(data))
        except InputError:
            self.stats.drop("malformed EMCY")
            return
        plan = self.plan[i]
        self.events.append(f"{plan.name} (node {plan.node}): {emcy.describe()}")
        with self.cond:
            self.emcy[i] = None if emcy.is_reset else emcy
            if _may_have_quick_stopped(emcy):
                self.on_stopped(i)
            self.cond.notify_all()

    def on_heartbeat(self, can_id: int, data: bytearray, timestamp: float) -> None:
        i = self._by_cob[can_id]
        with self.cond:
            self.heartbeat_at[i] = self.clock()
            if data and data[0] == cia301.NmtState.BOOT_UP:
                self.booted.add(i)
                if self.configured and i not in self.rebooted:
                    # CiA 302 treats an unexpected boot-up as an error-control event.
                    self.rebooted.add(i)
                    self.statusword[i] = None       # what it said before its reboot no longer holds
                    plan = self.plan[i]
                    self.events.append(f"{plan.name} (node {plan.node}) rebooted (boot-up message): it lost "
                                       "its configuration")
            self.cond.notify_all()

    # -- caller thread (hold ``cond`` where noted) --------------------------------------------------------
    def state(self, i: int) -> DriveState | None:
        """Drive ``i``'s CiA 402 state from its newest statusword (None: none yet, or not a valid one)."""
        word = self.statusword[i]
        if word is None:
            return None
        try:
            return cia402.state_from_statusword(word)
        except ProtocolError:
            return None

    def sync_going_out(self, sequence: int) -> int:
        """Book a SYNC about to be sent (``cond`` held); returns its number."""
        for i in range(len(self.plan)):
            if 0 < self.sync_count and self.answered[i] < self.sync_count:
                self.missed[i] += 1
                self.stats.drop("missing")
        self.sync_count += 1
        self.sync_sent = self.clock()
        self.sync_sequence[self.sync_count] = sequence
        self.sync_sequence.pop(self.sync_count - 64, None)
        return self.sync_count

    def take(self, timeout_s: float, give_up: Callable[[], bool]) -> RigState | None:
        """The newest state if any drive reported since the last call; waits up to ``timeout_s`` for all."""
        n = len(self.plan)
        with self.cond:
            if timeout_s > 0 and len(self.fresh) < n:
                self.cond.wait_for(lambda: len(self.fresh) == n or give_up(), timeout_s)
            if not self.fresh:
                return None
            fresh, self.fresh = self.fresh, set()
            axes = tuple(self.axis_state(i) for i in range(n))
            answered = min(self.answered[i] for i in fresh)
            sequence = self.sync_sequence.get(answered, -1)
        return RigState(host_time_ns=int(self.clock() * 1e9), device_time_us=int(answered * self.period_s * 1e6),
                        axes=axes, sequence=sequence)

    def axis_state(self, i: int) -> AxisState:
        """One axis in SI units (``cond`` held)."""
        plan, scale = self.plan[i], self.plan[i].scale
        position = self.position[i]
        state = self.state(i)
        status = drive_status(state) if state is not None else DriveStatus.OFFLINE
        emcy = self.emcy[i]
        code, text = (emcy.code, emcy.text) if emcy is not None else (0, "")
        heard = self.heartbeat_at[i] if self.heartbeat_at[i] is not None else self.opened_at
        timeout = self.options.drive_timeout_ms / 1000.0
        if i in self.rebooted:
            status = DriveStatus.FAULT
            text = (f"{plan.name} (node {plan.node}) rebooted: it lost its configuration and its axis is "
                    "not driven; reset to configure it again")
        elif self.options.drive_heartbeat_ms and self.clock() - heard > timeout:
            status = DriveStatus.OFFLINE
            text = (f"no heartbeat from {plan.name} (node {plan.node}) for more than "
                    f"{timeout * 1000:.0f} ms: the drive, its power or its CAN cable is down")
        elif self.missed[i] >= MISSED_SYNCS_OFFLINE:
            status = DriveStatus.OFFLINE
            text = text or f"{plan.name} (node {plan.node}) answered none of the last {self.missed[i]} SYNCs"
        here = scale.from_counts(position)
        return AxisState(
            name=plan.name, position=here,
            velocity=(scale.from_counts(position + self.velocity[i] * self.period_s) - here) / self.period_s,
            following_error=scale.from_counts(position + self.following[i]) - here,
            status=status, fault_code=code, fault_text=text)
