"""A rig whose axes span several controllers (``group://``): one driver per ``[[hardware.group]]``.

A UR arm over RTDE, its track on a CANopen drive and the lens motors on a serial controller are one rig to
the runtime: one servo tick writes every axis, one state reads them all, and a fault on any controller is a
fault of the rig, so the runtime stops all of them together (an E-stop goes to every controller, each
guarded so that one dead link cannot keep the others from stopping).

Each group runs at the rig's servo rate.  Groups that queue setpoints on the device (serial 1.1, KUKA RSI)
are streamed ahead; groups that latch each setpoint as it comes (CANopen, UR) are not.  So that every axis
plays tick ``t`` at the same time, the rig streams as far ahead as its longest group, and each group is
handed tick ``t``'s setpoint exactly its own lookahead before ``t``: a group with less lookahead gets it
from a short delay line here.

Each group keeps its own link statistics; the rig's are their sum, with every dropped-frame reason named
after its group, and the longest gap between cycles of any group.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import HardwareError
from motionctl.hal.driver import Driver, LinkStats, RigState


def group_urls(url: str) -> dict[str, str]:
    """``group://a,b?a=URL`` -> {"a": URL}: the transports a launcher gave groups instead of the rig's own."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


class CompositeDriver(Driver):
    schemes = ("group",)

    def __init__(self, rig, url: str, **options: object) -> None:
        super().__init__(rig, url, **options)
        if not rig.hardware.groups:
            raise HardwareError(f'rig "{rig.name}" has no [[hardware.group]]: group:// needs them')
        given = group_urls(url)
        self.group_names = tuple(g.name for g in rig.hardware.groups)
        self.parts: tuple[Driver, ...] = ()
        from motionctl.hal.registry import open_driver
        parts = []
        for group in rig.hardware.groups:
            view = replace(rig, hardware=group)
            parts.append(open_driver(view, given.get(group.name, group.transport), **options))
        self.parts = tuple(parts)
        #: For each group, where its axes sit in the rig's axis order.
        self._index = [np.array([self.axis_names.index(n) for n in p.axis_names], dtype=int) for p in self.parts]
        self._history: dict[int, NDArray[np.float64]] = {}
        #: (the rig's sequence, each group's sequence) of recent writes: a merged state answers a write
        #: when every group's state answers that group's part of it.
        self._written: deque[tuple[int, tuple[int, ...]]] = deque(maxlen=256)
        self.events: list[str] = []
        self._states: list[RigState | None] = [None] * len(self.parts)

    # -- the run's clock, shared with every group --------------------------------------------------------
    @property
    def now_ns(self):
        return self._now_ns

    @now_ns.setter
    def now_ns(self, clock) -> None:
        self._now_ns = clock
        for part in getattr(self, "parts", ()):
            part.now_ns = clock

    # -- statistics: the groups' ------------------------------------------------------------------------
    @property
    def stats(self) -> LinkStats:
        merged = LinkStats()
        for name, part in zip(getattr(self, "group_names", ()), getattr(self, "parts", ())):
            s = part.stats
            merged.sent += s.sent
            merged.received += s.received
            for reason, count in s.dropped.items():
                merged.drop(f"{name}: {reason}", count)
            if s.longest_gap_ns > merged.longest_gap_ns:
                merged.longest_gap_ns, merged.longest_gap_at_ns = s.longest_gap_ns, s.longest_gap_at_ns
            merged.groups[name] = s
        return merged

    @stats.setter
    def stats(self, value: LinkStats) -> None:
        """The base class sets its own; the rig's are always the groups' (above)."""

    @property
    def link_broken(self) -> bool:
        return any(p.link_broken for p in self.parts)

    # -- every group ------------------------------------------------------------------------------------
    def _each(self, action, what: str, *, all_of_them: bool = False) -> None:
        """``action(part)`` for every group; with ``all_of_them`` the others still get it when one fails."""
        failures = []
        for name, part in zip(self.group_names, self.parts):
            try:
                action(part)
            except HardwareError as exc:
                if not all_of_them:
                    raise HardwareError(f"{name}: {exc}") from None
                failures.append(f"{name}: {exc}")
        if failures:
            raise HardwareError(f"{what} failed on " + "; ".join(failures))

    def _do_open(self) -> None:
        opened = []
        try:
            for name, part in zip(self.group_names, self.parts):
                try:
                    part.open()
                except HardwareError as exc:
                    raise HardwareError(f"{name}: {exc}") from None
                opened.append(part)
            # Known once open: a serial device tells in its handshake whether it queues setpoints.
            self.lookahead_ticks = max(p.lookahead_ticks for p in self.parts)
        except BaseException:
            for part in opened:
                part.close()
            raise

    def _do_close(self) -> None:
        failures = []
        for name, part in zip(self.group_names, self.parts):
            try:
                part.close()                # every group is closed, even after one fails to
            except Exception as exc:        # noqa: BLE001
                failures.append(f"{name}: {exc}")
        if failures:
            raise HardwareError("closing failed on " + "; ".join(failures))

    def _do_enable(self, timeout_s: float) -> None:
        try:
            self._each(lambda p: p.enable(timeout_s), "enable")
        except HardwareError:
            self._do_quick_stop()           # none of them may be left moving on its own
            raise

    def _do_disable(self) -> None:
        self._each(lambda p: p.disable() if p.enabled else None, "disable", all_of_them=True)

    def _do_quick_stop(self) -> None:
        # Every group, whatever one of them does: a backend that breaks the contract (quick_stop never
        # raises) must not keep the next controller from stopping its axes.
        for name, part in zip(self.group_names, self.parts):
            try:
                part.quick_stop()
            except Exception as exc:            # noqa: BLE001 - an E-stop must reach every group
                self.events.append(f"{name}: quick stop failed: {exc}")

    def _do_fault_reset(self) -> None:
        self._each(lambda p: p.fault_reset(), "fault reset", all_of_them=True)

    def probe_cycle(self) -> None:
        self._require_open()
        for part in self.parts:
            if not part.enabled:
                part.probe_cycle()

    def _do_probe(self) -> None:
        for part in self.parts:
            part._do_probe()

    # -- cyclic ---------------------------------------------------------------------------------------------
    def write_setpoints(self, values: NDArray[np.float64], tick: int | None = None) -> int:
        """Tick ``tick``'s setpoints to every group, each its own lookahead ahead of the tick it plays."""
        self._require_open()
        if len(values) != len(self.scales):
            raise HardwareError(f"expected {len(self.scales)} setpoints, got {len(values)}")
        self._sequence = (self._sequence + 1) & 0xFFFF
        tick = self._sequence if tick is None else tick
        self._history[tick] = np.asarray(values, dtype=float).copy()
        for old in [t for t in self._history if t <= tick - self.lookahead_ticks - 2]:
            del self._history[old]
        for name, part, index in zip(self.group_names, self.parts, self._index):
            own = tick - (self.lookahead_ticks - part.lookahead_ticks)
            # Streaming has just begun: the first ticks a short-lookahead group plays were never streamed.
            known = own if own in self._history else min(self._history)
            try:
                part.write_setpoints(self._history[known][index], tick=own)
            except HardwareError as exc:
                raise HardwareError(f"{name}: {exc}") from None
        self._written.append((self._sequence, tuple(p.sequence for p in self.parts)))
        return self._sequence

    def _answered(self) -> int:
        """The rig's sequence of the newest write that every group's latest state answers (a group that
        cannot tell, -1, answers all); before that, one before the oldest write still remembered."""
        def at_or_after(seen: int, sent: int) -> bool:
            return seen < 0 or ((seen - sent) & 0xFFFF) < 0x8000
        for sequence, sent in reversed(self._written):
            if all(at_or_after(s.sequence, q) for s, q in zip(self._states, sent)):
                return sequence
        return (self._written[0][0] - 1) & 0xFFFF if self._written else -1

    def _do_write(self, sequence: int, counts: list[int], tick: int) -> None:
        raise AssertionError("write_setpoints() is the composite's own")

    def _do_read(self, timeout_s: float) -> RigState | None:
        fresh = False
        for k, (name, part) in enumerate(zip(self.group_names, self.parts)):
            try:
                state = part.read_state(timeout_s if self._states[k] is None else 0.0)
            except HardwareError as exc:
                raise HardwareError(f"{name}: {exc}") from None
            if state is not None:
                self._states[k] = state
                fresh = True
        if not fresh or any(s is None for s in self._states):
            return None
        axes = [None] * len(self.axis_names)
        for state, index in zip(self._states, self._index):
            for axis, i in zip(state.axes, index):
                axes[i] = axis
        oldest = min(s.host_time_ns for s in self._states)    # staleness is judged on the oldest group
        return RigState(oldest, self._states[0].device_time_us, tuple(axes), self._answered())
