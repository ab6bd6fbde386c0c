"""Simulated lock-step time for dry runs and tests: the host and the simulated drives advance together.

A dry run in simulated time uses the same wire (a pseudo-terminal, a CAN bus) and the same code as a run
on hardware; only the clock differs (:class:`~motionctl.runtime.clock.SimClock`).  At the start of every
tick, once the servo loop has written its setpoints, the tick is finished on both ends of the wire:

1. the simulated device reads every unit the host wrote before the tick (bytes on serial, frames on
   CAN; the host says how many), latches the setpoint, follows it for one servo period and answers;
2. the driver reads every unit the device wrote (the device says how many).

So what the loop reads at tick k+1 is exactly the answer to its setpoint of tick k, however busy the
machine is; nothing is in flight while simulated time stands still (a command sent then, an ENABLE, meets
a settled wire), and two runs of a move write the same samples.  The counts are the only thing that crosses
besides the wire itself: no protocol logic is shared.
"""

from __future__ import annotations

from typing import Protocol

from motionctl.hal.driver import Driver
from motionctl.runtime.clock import SimClock


class LockStepDevice(Protocol):
    """The device side of a wire that can run in simulated time (the simulator's serial device and CAN rig)."""

    def lockstep_tick(self, tick: int, host_units: int) -> int:
        """Finish the device's ``tick`` once ``host_units`` have arrived; return the units it has sent."""
        ...


def lock_step(clock: SimClock, device: LockStepDevice, driver: Driver) -> None:
    """Tie ``device`` and the ``driver`` at the other end of its wire to ``clock``.  A rig on several
    controllers ties each group's device to its own driver (``parts`` of both, in the groups' order)."""
    parts = getattr(driver, "parts", None)
    if parts is not None:
        for group_device, group_driver in zip(device.parts, parts):
            lock_step(clock, group_device, group_driver)
        return

    def finish_tick(tick: int) -> None:
        # A controller with a cycle of its own longer than the tick (KUKA RSI's 4 ms, a UR CB3's 8 ms, in a
        # 500 Hz rig) runs one cycle every k-th tick (k known once the driver is open: a UR says its series).
        k = getattr(driver, "ticks_per_cycle", 1)
        if tick % k:
            return
        sent = device.lockstep_tick(tick // k, driver.wire_sent)
        # A device that does not answer in wall time (it crashed) leaves the driver without feedback: the
        # runtime's own watchdogs then see a silent drive, in simulated time.
        driver.wait_received(sent)

    clock.add_participant(finish_tick)
