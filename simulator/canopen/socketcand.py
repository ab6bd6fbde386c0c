"""A socketcand server in front of a simulated CAN bus: the simulated drives in a process of their own.

python-can's ``virtual`` bus reaches only the process it lives in, so a simulated CAN rig used to share
motionctl's process (and its interpreter lock): at 500 Hz the simulated drives and the host starved each
other, and a healthy drive read as silent.  socketcand is the daemon that puts a Linux CAN bus on TCP
(linux-can/socketcand, ``doc/protocol.md``), and python-can speaks its client side
(``interface="socketcand"``).  So the simulator serves the protocol on 127.0.0.1 in front of its own
in-process bus: motionctl opens ``can://socketcand/<bus>?host=127.0.0.1&port=<port>``, the same wire a
stage uses to reach a CAN bus on another machine.

Written from the protocol document, the subset a raw-mode client uses:

* on connect the server says ``< hi >``; ``< open <bus> >`` is answered ``< ok >`` (another bus name: an
  ``< error ... >`` and the connection ends);
* ``< rawmode >``: ``< ok >``; from then on every frame on the bus goes to the client as
  ``< frame <id> <seconds>.<useconds> <data bytes as one run of hex digits> >`` (RTR: ``< rtr <id>
  <time> <dlc> >``);
* ``< send <id> <dlc> <bytes>* >`` puts a frame on the bus (``< sendrtr <id> <dlc> >`` a remote frame);
  ``< echo >`` is answered ``< echo >``.  Identifiers are hex; more than three digits is an extended one.

One client at a time (a second waits until the first has gone), as one motionctl owns one rig's bus.  No
discovery beacon: it is a UDP broadcast, and this project sends nothing but to the address it is given.
"""

from __future__ import annotations

import socket
import threading
import time

import can

#: socketcand's bus names are at most 16 characters.
MAX_BUS_NAME = 16
#: Frames held for a client between ``< rawmode >`` and its first command after it (see ``_command``).
MAX_HELD = 4096


def frame_text(msg: can.Message, started: float) -> str:
    """One received frame in the server's words (time since the server started)."""
    stamp = max(0.0, (msg.timestamp or time.time()) - started)
    ident = f"{msg.arbitration_id:08X}" if msg.is_extended_id else f"{msg.arbitration_id:03X}"
    seconds, micros = int(stamp), int(round((stamp - int(stamp)) * 1e6)) % 1_000_000
    if msg.is_remote_frame:
        return f"< rtr {ident} {seconds}.{micros:06d} {msg.dlc} >"
    # Raw mode writes the bytes as one run of hex digits ("%02X" each, no spaces: the daemon's raw-mode
    # code; the document's example spaces them, as its BCM mode does), then " >": a frame without data
    # (a SYNC) has two spaces before the ">", and python-can's client reads it so.
    data = "".join(f"{b:02X}" for b in msg.data)
    return f"< frame {ident} {seconds}.{micros:06d} {data} >"


def parse_send(words: list[str]) -> can.Message:
    """``send <id> <dlc> <bytes>*`` or ``sendrtr <id> <dlc>`` (the words between the brackets)."""
    command, ident, dlc = words[0], words[1], int(words[2])
    if not 0 <= dlc <= 8:
        raise ValueError(f"data length {dlc} is not 0..8")
    if command == "sendrtr":
        return can.Message(arbitration_id=int(ident, 16), is_extended_id=len(ident) > 3, is_remote_frame=True,
                           dlc=dlc)
    data = bytes(int(b, 16) for b in words[3:])
    if len(data) != dlc:
        raise ValueError(f"{dlc} data bytes announced, {len(data)} given")
    return can.Message(arbitration_id=int(ident, 16), is_extended_id=len(ident) > 3, data=data)


class SocketcandServer:
    """Serves the bus ``bus`` (a python-can bus in this process) as ``name`` on ``host:port``."""

    def __init__(self, bus: can.BusABC, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        if not 0 < len(name) <= MAX_BUS_NAME:
            raise ValueError(f'a socketcand bus name is 1-{MAX_BUS_NAME} characters, not "{name}"')
        self.bus, self.name = bus, name
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.1)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._quit = threading.Event()
        self._client: socket.socket | None = None
        self._raw = threading.Event()
        self._send_lock = threading.RLock()    # held frames go out before any newer one
        self._held: list[str] | None = None       # frames waiting for the client to finish its handshake
        self._started = time.time()
        self.frames_in = self.frames_out = 0
        self._threads = [threading.Thread(target=self._accept_loop, name="socketcand-accept", daemon=True),
                         threading.Thread(target=self._bus_loop, name="socketcand-bus", daemon=True)]

    @property
    def url(self) -> str:
        """What motionctl opens to reach this bus."""
        return f"can://socketcand/{self.name}?host={self.address[0]}&port={self.address[1]}"

    def start(self) -> SocketcandServer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._quit.set()
        self._drop_client()
        self._listener.close()
        for thread in self._threads:
            thread.join(1.0)

    # -- to the client ------------------------------------------------------------------------------------
    def _say(self, text: str) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            with self._send_lock:
                client.sendall(text.encode("ascii"))
            return True
        except OSError:
            self._drop_client()
            return False

    def _release_held(self) -> None:
        with self._send_lock:
            held, self._held = self._held, None
            for text in held or ():
                if self._say(text):
                    self.frames_out += 1

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        self._raw.clear()
        self._held = None
        if client is not None:
            try:
                client.close()
            except OSError:
                pass

    def _bus_loop(self) -> None:
        """Every frame on the bus, to a client in raw mode (the others' frames only: the bus does not
        give this endpoint back what it sent itself)."""
        while not self._quit.is_set():
            try:
                msg = self.bus.recv(0.05)
            except can.CanError:
                continue
            if msg is None or msg.is_error_frame or not self._raw.is_set():
                continue
            text = frame_text(msg, self._started)
            with self._send_lock:
                if self._held is not None:
                    if len(self._held) < MAX_HELD:
                        self._held.append(text)
                    continue
            if self._say(text):
                self.frames_out += 1

    # -- from the client ----------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._quit.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._client = client
            self._serve(client)

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(0.1)
        if not self._say("< hi >"):
            return
        opened = False
        buffer = ""
        while not self._quit.is_set() and self._client is client:
            try:
                chunk = client.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            buffer += chunk.decode("ascii", errors="replace")
            while True:
                start, end = buffer.find("<"), buffer.find(">")
                if start < 0 or end < 0:
                    if start < 0:
                        buffer = ""
                    break
                if end < start:
                    buffer = buffer[start:]
                    continue
                words, buffer = buffer[start + 1:end].split(), buffer[end + 1:]
                if not self._command(words, opened):
                    self._drop_client()
                    return
                opened = opened or (bool(words) and words[0] == "open")
        self._drop_client()

    def _command(self, words: list[str], opened: bool) -> bool:
        """One command; False ends the connection."""
        if not words:
            return self._say("< error empty command >")
        verb = words[0]
        if verb == "open":
            if len(words) != 2 or words[1] != self.name:
                self._say(f"< error no such bus {' '.join(words[1:])} >")
                return False
            return self._say("< ok >")
        if not opened:
            self._say("< error open a bus first >")
            return False
        if verb == "rawmode":
            # python-can's client compares one read with "< ok >" exactly: a frame sent right behind the
            # answer could arrive in the same read.  So the bus's frames are held until the client's next
            # command (it sends nothing before it has read the answer), then sent in order before it acts.
            with self._send_lock:
                self._held = []
            self._raw.set()
            return self._say("< ok >")
        self._release_held()
        if verb == "bcmmode":
            self._raw.clear()
            return self._say("< ok >")
        if verb == "echo":
            return self._say("< echo >")
        if verb in ("send", "sendrtr"):
            try:
                msg = parse_send(words)
            except (IndexError, ValueError) as exc:
                return self._say(f"< error {exc} >")
            try:
                self.bus.send(msg)
                self.frames_in += 1
            except can.CanError as exc:
                return self._say(f"< error {exc} >")
            return True
        return self._say(f"< error unknown command {verb} >")
