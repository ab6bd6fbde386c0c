"""The in-process CAN wire for dry runs: python-can's virtual bus, with a cheaper copy of each frame.

python-can's :class:`~can.interfaces.virtual.VirtualBus` hands every receiver its own copy of each frame,
made with :func:`copy.deepcopy`.  A :class:`can.Message` is immutable fields plus one ``bytearray``, and
``deepcopy`` of a ``bytearray`` goes through ``__reduce_ex__``: on a simulated-time dry run (31 frames per
servo tick for ten drives) that copy alone was about a fifth of the CPU, and the run missed issue 13's
"three times real time" by that much (measured in docs/benchmarks.md).  :class:`VirtualBus` below copies a
frame field by field instead, which is the same copy.  Everything else (channels, queues, delivery,
timestamps, ``receive_own_messages``) is python-can's own, so a plain ``can.Bus(interface="virtual")`` on
the same channel (a test's independent drive, the socketcand bridge) exchanges frames with it as before.

Both ends of a dry run open their bus through :func:`open_bus` (the host's CANopen driver and the
simulated drives): a wire, like the pseudo-terminal of serial dry runs, with no protocol in it, which is why
it sits outside ``motionctl.hal`` (the simulator never imports that).  python-can's other interfaces are
untouched.  It reads VirtualBus's ``channel``/``queue`` attributes, which is why python-can is pinned.
"""

from __future__ import annotations

import time
from typing import Any

import can
from can.interfaces import virtual


class VirtualBus(virtual.VirtualBus):
    """python-can's virtual bus; :meth:`send` copies a frame without ``deepcopy`` (see the module)."""

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        self._check_if_open()
        timestamp = msg.timestamp if self.preserve_timestamps else time.time()
        all_sent = True
        for bus_queue in self.channel:
            if bus_queue is self.queue and not self.receive_own_messages:
                continue
            copy = can.Message(timestamp=timestamp, arbitration_id=msg.arbitration_id,
                               is_extended_id=msg.is_extended_id, is_remote_frame=msg.is_remote_frame,
                               is_error_frame=msg.is_error_frame, channel=self.channel_id, dlc=msg.dlc,
                               data=bytearray(msg.data), is_fd=msg.is_fd, is_rx=bus_queue is not self.queue,
                               bitrate_switch=msg.bitrate_switch,
                               error_state_indicator=msg.error_state_indicator)
            try:
                bus_queue.put(copy, block=True, timeout=timeout)
            except virtual.queue.Full:
                all_sent = False
        if not all_sent:
            raise can.CanOperationError("Could not send message to one or more recipients")


def open_bus(interface: str, channel: str, **kwargs: Any) -> can.BusABC:
    """``can.Bus(interface=..., channel=..., **kwargs)``, with :class:`VirtualBus` for ``virtual``."""
    if interface == "virtual":
        return VirtualBus(channel=channel, **kwargs)
    return can.Bus(interface=interface, channel=channel, **kwargs)
