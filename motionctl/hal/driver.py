"""The driver contract every transport implements (serial, CAN, ...), as an ABC with template methods.

Like python-can's ``BusABC``: the public methods (``open``, ``enable``, ``write_setpoints``, ...) are
written once here and do the bookkeeping every backend needs (idempotence, state checks, unit
conversion from SI to encoder counts, statistics); a backend implements only the ``_underscored``
hooks that talk to its wire.  Drivers know nothing of planning: they take one vector of setpoints per
cycle and report what the drives measured.
"""

from __future__ import annotations

import bisect
import functools

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import HardwareError
from motionctl.spec.rig import Rig


class DriveStatus(Enum):
    """What an operator needs to know about one drive, whatever the transport calls it."""

    DISABLED = "disabled"
    READY = "ready"
    ENABLED = "enabled"
    QUICK_STOP = "quick stop"
    FAULT = "fault"
    OFFLINE = "offline"


@dataclass(frozen=True)
class AxisState:
    """One axis as measured by its drive, in SI units (m or rad; lens axes in their own units)."""

    name: str
    position: float
    velocity: float
    following_error: float
    status: DriveStatus
    fault_code: int = 0
    fault_text: str = ""


@dataclass(frozen=True)
class RigState:
    """Every axis at one instant.  ``host_time_ns`` is the host's monotonic clock when it was read."""

    host_time_ns: int
    device_time_us: int
    axes: tuple[AxisState, ...]
    sequence: int = -1                  # setpoint sequence this feedback answers, where the wire has one

    @property
    def positions(self) -> NDArray[np.float64]:
        return np.array([a.position for a in self.axes])

    @property
    def faulted(self) -> list[AxisState]:
        return [a for a in self.axes if a.status is DriveStatus.FAULT]

    @property
    def all_enabled(self) -> bool:
        return all(a.status is DriveStatus.ENABLED for a in self.axes)


@dataclass
class LinkStats:
    """Counters of what went over the wire (frames dropped are counted, never acted on)."""

    sent: int = 0
    received: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    #: The longest time between two consecutive cycles (setpoints; SYNCs on CAN) while drives were enabled,
    #: on the run's clock, and when it ended.  A drive that monitors its setpoints or SYNC faults on a gap.
    longest_gap_ns: int = 0
    longest_gap_at_ns: int = 0
    last_cycle_ns: int = 0
    #: A rig on several controllers: each group's own counters (the live ones), by group name.
    groups: dict[str, LinkStats] = field(default_factory=dict)

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count

    def cycle(self, now_ns: int, enabled: bool) -> None:
        """A cycle went out at ``now_ns``; gaps count only while drives are (being) enabled."""
        if enabled and self.last_cycle_ns:
            gap = now_ns - self.last_cycle_ns
            if gap > self.longest_gap_ns:
                self.longest_gap_ns, self.longest_gap_at_ns = gap, now_ns
        self.last_cycle_ns = now_ns if enabled else 0


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    """``np.interp`` for one value (held at the ends), without its per-call cost: lens axes convert every
    setpoint and every feedback this way, every tick (numpy's took a tenth of a simulated-time run)."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x) - 1
    return ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i])


@dataclass(frozen=True)
class AxisScale:
    """SI <-> encoder counts for one axis."""

    name: str
    counts_per_unit: float          # counts per metre, per radian, or per normalised lens unit
    lens_calibration: NDArray[np.float64] | None = None

    def to_counts(self, value: float) -> int:
        if self.lens_calibration is not None:
            value = _interp(value, *self._table)
        return int(round(value * self.counts_per_unit))

    def from_counts(self, counts: float) -> float:
        value = counts / self.counts_per_unit
        if self.lens_calibration is not None:
            value = _interp(value, *self._table[::-1])
        return value

    @functools.cached_property
    def _table(self) -> tuple[list[float], list[float]]:
        """The calibration as two plain lists (values, counts), for :func:`_interp`."""
        table = np.asarray(self.lens_calibration, dtype=float)
        return table[:, 0].tolist(), table[:, 1].tolist()


def axis_scales(rig: Rig) -> tuple[AxisScale, ...]:
    """Scales of every axis this binding drives: arm axes in chain order, then lens axes, each where it has
    an address (a rig's own binding addresses every arm axis; one group of a rig that spans several
    controllers addresses its own)."""
    hw = rig.hardware
    if hw is None:
        raise HardwareError(f'rig "{rig.name}" has no [hardware] section: no transport to drive')
    scales = []
    for axis in rig.axes:
        if axis.name not in hw.address:
            continue
        counts = hw.counts.get(axis.name, 1_000_000 if axis.linear else 2 ** 20)
        scales.append(AxisScale(axis.name, counts if axis.linear else counts / (2 * math.pi)))
    for lens in rig.lens:
        if lens.name in hw.address:
            scales.append(AxisScale(lens.name, hw.counts.get(lens.name, 65536), lens.calibration))
    return tuple(scales)


class Driver(ABC):
    """One connection to the drives of one rig.  Use as a context manager; ``open``/``close`` are idempotent.

    Axis order is the rig's axis order followed by the lens axes that have a drive address.
    """

    #: URL scheme(s) this backend answers, for the registry.
    schemes: tuple[str, ...] = ()

    def __init__(self, rig: Rig, url: str, **options: object) -> None:
        self.rig = rig
        self.url = url
        now_ns = options.pop("now_ns", None)
        self.options = options
        self.scales = axis_scales(rig)
        self.axis_names = tuple(s.name for s in self.scales)
        self.stats = LinkStats()
        self._lock = threading.RLock()
        self._open = False
        self._sequence = 0
        self.enabled = False
        #: The run's clock (monotonic ns): stamps what the drives report.  The runtime sets it (simulated
        #: time in a lock-step dry run); link timeouts stay on the wall clock.
        self.now_ns: Callable[[], int] = now_ns or time.monotonic_ns     # type: ignore[assignment]
        #: What crossed the wire, in the wire's own units (bytes on serial, frames on CAN): a lock-step
        #: simulation reads up to exactly what the other end wrote before the tick ends.
        self.wire_sent = 0
        self.wire_received = 0
        self._powering = False
        #: On a link that queues setpoints on the device (serial 1.1): how many servo ticks ahead of the one
        #: being played the host streams.  0: every setpoint applies at the device's next tick.
        self.lookahead_ticks = 0
        self._wire = threading.Condition()

    # -- lifecycle --------------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> Driver:
        with self._lock:
            if not self._open:
                self._do_open()
                self._open = True
        return self

    def close(self) -> None:
        with self._lock:
            if self._open:
                try:
                    self._do_close()
                finally:
                    self._open = False

    def __enter__(self) -> Driver:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def sequence(self) -> int:
        """Sequence number of the last cycle written (16 bits, wrapping)."""
        return self._sequence

    def _require_open(self) -> None:
        if not self._open:
            raise HardwareError(f"the link {self.url} is not open")

    # -- commands ---------------------------------------------------------------------------------------
    def enable(self, timeout_s: float = 2.0) -> None:
        """Power the drives and make them follow setpoints (they hold their current position)."""
        self._require_open()
        self._powering = True              # from here on the drives may be enabled: cycles must not pause
        try:
            self._do_enable(timeout_s)
        except BaseException:
            self._powering = False
            raise
        self.enabled = True

    def disable(self) -> None:
        self._require_open()
        self._do_disable()
        self.enabled = self._powering = False

    def probe(self, timeout_s: float = 1.0) -> RigState:
        """Where the drives are, before streaming starts.  Only while disabled: never commands motion.

        Some wires answer only to a cycle (serial FEEDBACK answers a SETPOINT, CANopen TPDOs answer a
        SYNC), so this sends cycles whose targets disabled drives ignore, until a state comes back.
        """
        self._require_open()
        if self.enabled:
            raise HardwareError("probe() is only for disabled drives; read_state() while streaming")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._do_probe()
            state = self._do_read(0.05)
            if state is not None:
                return state
        raise HardwareError(f"no answer from the drives on {self.url} within {timeout_s:.1f} s")

    def probe_cycle(self) -> None:
        """One cycle that disabled drives answer without moving (its answer comes with ``read_state``)."""
        self._require_open()
        if self.enabled:
            raise HardwareError("probe_cycle() is only for disabled drives")
        self._do_probe()

    def quick_stop(self) -> None:
        """E-stop: every drive brakes on its own quick-stop ramp, now.  Never raises for a dead link."""
        if not self._open:
            return
        self._do_quick_stop()

    def fault_reset(self) -> None:
        self._require_open()
        self._do_fault_reset()

    # -- cyclic ---------------------------------------------------------------------------------------------
    def write_setpoints(self, values: NDArray[np.float64], tick: int | None = None) -> int:
        """Send one cycle of setpoints (SI units, driver axis order) for servo cycle ``tick`` (the cycle it is
        to be played at: ``lookahead_ticks`` ahead of now on a queued link); returns its sequence number."""
        self._require_open()
        if len(values) != len(self.scales):
            raise HardwareError(f"expected {len(self.scales)} setpoints, got {len(values)}")
        counts = [s.to_counts(float(v)) for s, v in zip(self.scales, values)]
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._do_write(self._sequence, counts, self._sequence if tick is None else tick)
        self.stats.sent += 1
        return self._sequence

    def read_state(self, timeout_s: float = 0.05) -> RigState | None:
        """The newest complete state the drives reported (None if nothing new arrived in ``timeout_s``)."""
        self._require_open()
        return self._do_read(timeout_s)

    def wait_received(self, count: int, timeout_s: float = 10.0) -> bool:
        """Block until the receiving side has taken in ``count`` wire units (lock-step simulation)."""
        deadline = time.monotonic() + timeout_s
        with self._wire:
            while self.wire_received < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._open or self.link_broken:
                    return False
                self._wire.wait(remaining)
        return True

    def _cycle_out(self) -> None:
        """Backends call this for every cycle they put on the wire (a SETPOINT; a SYNC on CAN)."""
        self.stats.cycle(self.now_ns(), self._powering or self.enabled)

    @property
    def link_broken(self) -> bool:
        """The wire has failed (backends say when): nothing more will arrive."""
        return False

    def _took_in(self, units: int) -> None:
        """Backends call this after acting on ``units`` received (so lock-step waits see their effect)."""
        with self._wire:
            self.wire_received += units
            self._wire.notify_all()

    def to_si(self, index: int, counts: float) -> float:
        return self.scales[index].from_counts(counts)

    # -- backend hooks ----------------------------------------------------------------------------------
    def _do_probe(self) -> None:
        """One cycle that disabled drives answer without moving (default: a setpoint they ignore)."""
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._do_write(self._sequence, [0] * len(self.scales), self._sequence)

    @abstractmethod
    def _do_open(self) -> None: ...

    @abstractmethod
    def _do_close(self) -> None: ...

    @abstractmethod
    def _do_enable(self, timeout_s: float) -> None: ...

    @abstractmethod
    def _do_disable(self) -> None: ...

    @abstractmethod
    def _do_quick_stop(self) -> None: ...

    @abstractmethod
    def _do_fault_reset(self) -> None: ...

    @abstractmethod
    def _do_write(self, sequence: int, counts: list[int], tick: int) -> None: ...

    @abstractmethod
    def _do_read(self, timeout_s: float) -> RigState | None: ...
