"""The simulated controller as firmware would be tested: a scripted host writes exact bytes to the pty.

Byte-exact exchanges: HELLO -> HELLO_ACK, ENABLE -> COMMAND_ACK, SETPOINT -> FEEDBACK echoing the seq;
duplicated and reordered SETPOINTs are dropped and never move an axis; a corrupt frame is ignored.
"""

from __future__ import annotations

import os
import select
import time
import tty

import pytest

from motionctl.hal.serial import protocol as sp
from motionctl.hal.serial import stream as ss
from motionctl.hal.driver import axis_scales
from motionctl.spec import load_rig
from simulator.serial.device import SerialDevice
from tests.conftest import RIGS


class ScriptedHost:
    """Opens the device's pty and speaks raw frames."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.decoder = ss.FrameDecoder()
        self.pending: list = []

    def send(self, raw: bytes) -> None:
        os.write(self.fd, raw)

    def expect(self, kind: type, timeout: float = 2.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, message in enumerate(self.pending):
                if isinstance(message, kind):
                    return self.pending.pop(i)
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                self.pending += self.decoder.feed(os.read(self.fd, 4096))
        raise AssertionError(f"no {kind.__name__} within {timeout} s")

    def drain(self, seconds: float) -> list:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.02)
            if ready:
                self.pending += self.decoder.feed(os.read(self.fd, 4096))
        out, self.pending = self.pending, []
        return out

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def session():
    rig = load_rig(RIGS / "ur10e_track.toml")
    device = SerialDevice(rig).start()
    host = ScriptedHost(device.path)
    count = len(axis_scales(rig))
    yield device, host, count
    host.close()
    device.stop()


def test_hello_is_answered_byte_for_byte(session):
    device, host, count = session
    hello = sp.encode(sp.Hello(seq=1, servo_rate_hz=500, axis_count=count, watchdog_ms=200))
    # type 01, seq 0001, v1.1, 500 Hz (F4 01), 10 axes (0A), watchdog 200 ms (C8 00), all little-endian
    payload = bytes.fromhex("01 0100 01 01 F401 0A C800")
    assert hello[-1:] == b"\x00"
    assert sp.cobs_decode(hello[:-1]) == payload + sp.crc16(payload).to_bytes(2, "big")
    host.send(b"\x00" + hello)
    ack = host.expect(sp.HelloAck)
    assert ack.seq == 1 and ack.result is sp.Result.OK and ack.axis_count == count
    assert sp.encode(ack) == sp.encode(sp.HelloAck(seq=1, result=sp.Result.OK, version_major=1, version_minor=1,
                                                   axis_count=count, capabilities=ack.capabilities,
                                                   max_servo_rate_hz=1000, device_name="motionctl-sim"))


def _open(host, count):
    host.send(sp.encode(sp.Hello(seq=1, servo_rate_hz=500, axis_count=count, watchdog_ms=500)))
    host.expect(sp.HelloAck)
    host.send(sp.encode(sp.Command(seq=2, command=sp.CommandCode.ENABLE, axis_mask=(1 << count) - 1)))
    ack = host.expect(sp.CommandAck)
    assert ack.seq == 2 and ack.result is sp.Result.OK


def test_duplicated_and_reordered_setpoints_are_dropped_and_never_actuated(session):
    device, host, count = session
    _open(host, count)
    here = [a.position_counts for a in device.axes]
    host.send(sp.encode(sp.Setpoint(seq=10, host_tick=10, targets=tuple(here))))
    assert host.expect(sp.Feedback).seq == 10
    moved = list(here)
    moved[0] += 500_000                         # half a metre of track: must never be latched
    host.send(sp.encode(sp.Setpoint(seq=10, host_tick=10, targets=tuple(moved))))   # duplicate
    host.send(sp.encode(sp.Setpoint(seq=9, host_tick=9, targets=tuple(moved))))     # older: reordered
    host.send(sp.encode(sp.Setpoint(seq=11, host_tick=11, targets=tuple(here))))
    replies = [m for m in host.drain(0.3) if isinstance(m, sp.Feedback)]
    assert [m.seq for m in replies] == [11]
    assert device.dropped_setpoints == {"duplicate": 1, "out_of_order": 1}
    assert abs(device.axes[0].target * device.axes[0].counts_per_unit - here[0]) < 2


def test_a_corrupt_frame_is_ignored_and_the_next_one_is_served(session):
    device, host, count = session
    _open(host, count)
    here = tuple(a.position_counts for a in device.axes)
    frame = bytearray(sp.encode(sp.Setpoint(seq=20, host_tick=20, targets=here)))
    frame[5] ^= 0x10
    host.send(bytes(frame) + sp.encode(sp.Setpoint(seq=21, host_tick=21, targets=here)))
    replies = [m for m in host.drain(0.3) if isinstance(m, sp.Feedback)]
    assert [m.seq for m in replies] == [21]


def test_setpoint_watchdog_stops_the_axes_when_the_host_goes_quiet(session):
    device, host, count = session
    _open(host, count)
    here = tuple(a.position_counts for a in device.axes)
    host.send(sp.encode(sp.Setpoint(seq=30, host_tick=30, targets=here)))
    host.expect(sp.Feedback)
    events = [m for m in host.drain(0.8) if isinstance(m, sp.Event)]
    assert events and all(e.fault == sp.FaultCode.WATCHDOG for e in events)
    assert not any(device.enabled)
