"""The dry-run CAN wire (motionctl/virtual_can.py): python-can's virtual bus with a field-by-field copy of each frame.

It must deliver exactly what python-can's own VirtualBus delivers, to the same receivers, and talk to a
plain VirtualBus on the same channel both ways (the tests' independent drive and the socketcand bridge are
plain ones)."""

from __future__ import annotations

import itertools

import can
import pytest

from motionctl.virtual_can import VirtualBus, open_bus

_channels = itertools.count()

FRAMES = [
    can.Message(arbitration_id=0x80, is_extended_id=False, data=b""),                       # SYNC
    can.Message(arbitration_id=0x201, is_extended_id=False, data=bytes(range(6))),          # an RPDO
    can.Message(arbitration_id=0x1ABCDEF, is_extended_id=True, data=b"\xff" * 8),
    can.Message(arbitration_id=0x601, is_extended_id=False, is_remote_frame=True, dlc=8),
    can.Message(arbitration_id=0x20000080, is_extended_id=True, is_error_frame=True, data=bytes(8)),
    can.Message(arbitration_id=0x123, is_extended_id=False, is_fd=True, bitrate_switch=True,
                error_state_indicator=True, data=bytes(range(48))),
]


def _fields(msg: can.Message) -> tuple:
    return (msg.arbitration_id, msg.is_extended_id, msg.is_remote_frame, msg.is_error_frame, msg.dlc,
            bytes(msg.data), msg.is_fd, msg.bitrate_switch, msg.error_state_indicator, msg.channel, msg.is_rx)


def _pair(sender_kind: type, receiver_kind: type, **kwargs: object) -> tuple[can.BusABC, can.BusABC]:
    channel = f"test-virtual-bus-{next(_channels)}"
    return sender_kind(channel=channel, **kwargs), receiver_kind(channel=channel)


@pytest.mark.parametrize("receiver_kind", [VirtualBus, can.interfaces.virtual.VirtualBus])
def test_a_frame_arrives_as_python_cans_own_bus_delivers_it(receiver_kind: type) -> None:
    ours, theirs = _pair(VirtualBus, receiver_kind)
    reference_sender, reference_receiver = _pair(can.interfaces.virtual.VirtualBus, receiver_kind)
    try:
        for frame in FRAMES:
            ours.send(frame)
            reference_sender.send(frame)
            got, expected = theirs.recv(1.0), reference_receiver.recv(1.0)
            assert got is not None and expected is not None
            assert _fields(got)[:-2] == _fields(expected)[:-2]
            assert got.channel == ours.channel_id and got.is_rx
    finally:
        for bus in (ours, theirs, reference_sender, reference_receiver):
            bus.shutdown()


def test_a_plain_virtual_bus_reaches_ours() -> None:
    theirs, ours = _pair(can.interfaces.virtual.VirtualBus, VirtualBus)
    try:
        theirs.send(FRAMES[1])
        got = ours.recv(1.0)
        assert got is not None and bytes(got.data) == bytes(range(6))
    finally:
        ours.shutdown()
        theirs.shutdown()


def test_each_receiver_gets_its_own_copy() -> None:
    sender, first = _pair(VirtualBus, VirtualBus)
    second = VirtualBus(channel=sender.channel_id)
    try:
        frame = can.Message(arbitration_id=0x181, is_extended_id=False, data=bytearray(b"\x01\x02"))
        sender.send(frame)
        frame.data[0] = 0x7F                       # the sender reuses its buffer
        a, b = first.recv(1.0), second.recv(1.0)
        assert a is not None and b is not None and a is not b
        a.data[1] = 0x55
        assert bytes(b.data) == b"\x01\x02" and bytes(a.data) == b"\x01\x55"
    finally:
        for bus in (sender, first, second):
            bus.shutdown()


def test_own_frames_come_back_only_when_asked_and_timestamps_as_python_can_sets_them() -> None:
    quiet, listener = _pair(VirtualBus, VirtualBus)
    echo = VirtualBus(channel=quiet.channel_id, receive_own_messages=True, preserve_timestamps=True)
    try:
        quiet.send(FRAMES[0])
        assert quiet.recv(0.05) is None
        assert listener.recv(1.0) is not None and echo.recv(1.0) is not None
        stamped = can.Message(arbitration_id=0x80, is_extended_id=False, timestamp=12.5)
        echo.send(stamped)
        own, heard = echo.recv(1.0), listener.recv(1.0)
        assert own is not None and heard is not None
        assert own.timestamp == heard.timestamp == 12.5
        assert not own.is_rx and heard.is_rx
    finally:
        for bus in (quiet, listener, echo):
            bus.shutdown()


def test_a_closed_bus_refuses_to_send() -> None:
    bus = VirtualBus(channel=f"test-virtual-bus-{next(_channels)}")
    bus.shutdown()
    with pytest.raises(can.CanOperationError):
        bus.send(FRAMES[0])


def test_open_bus_picks_ours_only_for_the_virtual_interface() -> None:
    bus = open_bus("virtual", f"test-virtual-bus-{next(_channels)}", bitrate=500_000)
    try:
        assert isinstance(bus, VirtualBus)
    finally:
        bus.shutdown()
    with pytest.raises(Exception):               # python-can's own answer for an unknown interface
        open_bus("no-such-interface", "x")
