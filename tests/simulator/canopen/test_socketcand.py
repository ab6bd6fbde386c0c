"""The simulator's socketcand server: its exchange over TCP on 127.0.0.1, and motionctl's CAN driver over it.

The golden exchange is written from socketcand's doc/protocol.md (greeting, open, rawmode, send, echo)
and from what the daemon's raw mode writes for a received frame (the data bytes as one run of hex
digits); a plain socket plays the client, so nothing of python-can's client is assumed.  Then
motionctl's CanDriver (python-can's socketcand client, canopen) opens, enables, streams and closes a
simulated drive through it, as ``motionctl run --sim`` does for a CAN group of a rig on several
controllers (there the drives are in a process of their own).
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import replace
from pathlib import Path

import can
import pytest

from motionctl.hal.canopen.driver import CanDriver
from motionctl.hal.driver import DriveStatus
from motionctl.spec import load_rig
from simulator.canopen.device import SimulatedCanRig
from simulator.canopen.socketcand import SocketcandServer, frame_text
from tests.hal.canopen.test_driver import read_until

RIGS = Path(__file__).resolve().parents[3] / "rigs"


@pytest.fixture
def served():
    """A server in front of a virtual bus of its own, and a passive node on that bus."""
    channel = f"mc-{uuid.uuid4().hex[:12]}"
    bridge = can.Bus(interface="virtual", channel=channel)
    node = can.Bus(interface="virtual", channel=channel)
    server = SocketcandServer(bridge, "sim0").start()
    yield server, node
    server.stop()
    bridge.shutdown()
    node.shutdown()


class Client:
    """socketcand's client side by hand: one command out, what comes back as text."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5.0)
        self.buffer = ""

    def say(self, text: str) -> None:
        self.sock.sendall(text.encode("ascii"))

    def hear(self) -> str:
        """The next ``< ... >`` the server sent."""
        while ">" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed; heard so far: {self.buffer!r}")
            self.buffer += chunk.decode("ascii")
        end = self.buffer.index(">") + 1
        text, self.buffer = self.buffer[:end].strip(), self.buffer[end:]
        return text

    def close(self) -> None:
        self.sock.close()


def test_the_golden_exchange_of_a_raw_mode_client(served):
    server, node = served
    client = Client(server.address)
    try:
        assert client.hear() == "< hi >"
        client.say("< open sim0 >")
        assert client.hear() == "< ok >"
        client.say("< rawmode >")
        assert client.hear() == "< ok >"
        # A frame on the bus between the answer and the client's next command waits for that command
        # (python-can's client reads the answer by comparing one read with "< ok >").
        node.send(can.Message(arbitration_id=0x701, data=b"\x7f", is_extended_id=False))
        time.sleep(0.2)
        client.sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client.sock.recv(1)
        client.sock.settimeout(5.0)
        # The client's frames go onto the bus exactly: an SDO request, a SYNC (no data), an extended id.
        client.say("< send 601 8 40 00 10 00 00 00 00 00 >< send 80 0 >< send 1AAAAAAA 2 1 F1 >")
        held = client.hear()            # the frame held since rawmode comes first, in order
        assert held.startswith("< frame 701 ") and held.endswith(" 7F >")
        got = [node.recv(5.0) for _ in range(3)]
        assert [(m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in got] == [
            (0x601, False, bytes.fromhex("4000100000000000")), (0x080, False, b""),
            (0x1AAAAAAA, True, bytes([0x01, 0xF1]))]
        # The bus's frames come to the client: data as one run of hex digits; none for a SYNC.
        node.send(can.Message(arbitration_id=0x581, data=bytes.fromhex("4300100092010200"), is_extended_id=False))
        node.send(can.Message(arbitration_id=0x080, data=b"", is_extended_id=False))
        first, second = client.hear(), client.hear()
        assert first.startswith("< frame 581 ") and first.endswith(" 4300100092010200 >")
        assert second.startswith("< frame 080 ") and second.endswith("  >")
        stamp = first.split()[3]
        assert len(stamp.split(".")[1]) == 6        # seconds.useconds
        client.say("< echo >")
        assert client.hear() == "< echo >"
        client.say("< send 123 2 11 >")
        assert client.hear().startswith("< error 2 data bytes announced, 1 given")
        client.say("< jump >")
        assert client.hear() == "< error unknown command jump >"
    finally:
        client.close()


def test_a_frame_text_is_what_the_daemon_writes():
    msg = can.Message(arbitration_id=0x181, data=bytes([0x37, 0x06, 0x20, 0xA1, 0x07, 0x00]), is_extended_id=False,
                      timestamp=1012.25)
    assert frame_text(msg, 1000.0) == "< frame 181 12.250000 370620A10700 >"
    rtr = can.Message(arbitration_id=0x701, is_remote_frame=True, dlc=1, is_extended_id=False, timestamp=1000.5)
    assert frame_text(rtr, 1000.0) == "< rtr 701 0.500000 1 >"


def test_another_bus_name_is_refused_and_the_connection_ends(served):
    server, _ = served
    client = Client(server.address)
    try:
        assert client.hear() == "< hi >"
        client.say("< open can0 >")
        assert client.hear() == "< error no such bus can0 >"
        assert client.sock.recv(10) == b""
        # The next client is served.
        second = Client(server.address)
        assert second.hear() == "< hi >"
        second.close()
    finally:
        client.close()


def test_commands_before_open_are_refused(served):
    server, _ = served
    client = Client(server.address)
    try:
        assert client.hear() == "< hi >"
        client.say("< rawmode >")
        assert client.hear() == "< error open a bus first >"
    finally:
        client.close()


def test_motionctl_drives_a_simulated_drive_through_it():
    """The track group of the UR rig on three controllers: open (SDO configuration), enable, a ramp,
    quick stop, close; every frame through python-can's socketcand client and this server."""
    rig = load_rig(RIGS / "ur10e_rtde_track.toml")
    track = next(g for g in rig.hardware.groups if g.name == "track")
    view = replace(rig, hardware=track)
    channel = f"mc-{uuid.uuid4().hex[:12]}"
    with SimulatedCanRig(view, f"can://virtual/{channel}") as sim:
        bridge = can.Bus(interface="virtual", channel=channel)
        server = SocketcandServer(bridge, "sim0").start()
        try:
            robust = "heartbeat_timeout_ms=5000&drive_timeout_ms=10000&sdo_timeout_s=5"
            driver = CanDriver(view, f"{server.url}&{robust}")
            with driver:
                driver.enable()
                state = read_until(driver, lambda s: s.all_enabled)
                start = state.positions
                for k in range(1, 101):
                    driver.write_setpoints(start + 0.05 * k / driver.rate_hz)
                    driver.read_state(timeout_s=0.0)
                    time.sleep(1.0 / driver.rate_hz)
                end = start + 0.05 * 100 / driver.rate_hz
                moved = read_until(driver, lambda s: abs(s.positions[0] - end[0]) < 5e-4, hold=end)
                assert moved.all_enabled and not moved.faulted
                driver.quick_stop()
                read_until(driver, lambda s: s.axes[0].status is DriveStatus.QUICK_STOP, hold=end)
            assert sim.drives[0].syncs >= 100
            assert server.frames_in > 100 and server.frames_out > 100
        finally:
            server.stop()
            bridge.shutdown()

