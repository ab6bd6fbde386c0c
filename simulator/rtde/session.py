"""One RTDE connection on the fake UR controller: the handshake, recipes, start/pause and input packages.

The protocol is ``docs/ur-rtde-facts.md`` §1-§3 (protocol version 2 only); where UR documents nothing the
session follows the choices of §8: a malformed package gets an error text message and the connection is
closed.  The session owns its socket's byte buffers; the controller (:mod:`simulator.rtde.controller`) owns
the registers and the state it reads and writes, and calls it under its lock.
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Callable

from simulator.rtde import wire as w

if TYPE_CHECKING:
    from simulator.rtde.controller import UrController

MAX_PENDING_BYTES = 4 << 20       # a client that stops reading: the controller drops packages past this


class RtdeSession:
    def __init__(self, sock: socket.socket, owner: "UrController", log: Callable[[str], None]) -> None:
        self.sock = sock
        self.sock.setblocking(False)
        self.owner = owner
        self.log = log
        self.splitter = w.Splitter()
        self.negotiated = False
        self.output: w.Recipe | None = None
        self.inputs: dict[int, w.Recipe] = {}
        self.next_id = 1
        self.frequency = owner.frequency_hz
        self.divisor = 1
        self.started = False
        self.cycles_since_start = 0
        self.pending = bytearray()
        self.closed = False
        self._closing = False
        self.dropped = 0

    # -- bytes in and out ---------------------------------------------------------------------------------
    def receive(self) -> None:
        """Read what the socket holds and act on every whole package (the caller holds the lock)."""
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.close("client disconnected")
                return
            try:
                for package in self.splitter.feed(data):
                    self._handle(package)
                    if self.closed:
                        return
            except w.WireError as error:
                self.refuse(str(error))
                return

    def send(self, data: bytes) -> bool:
        """Queue ``data`` and write what the socket takes now; False if dropped (client not reading)."""
        if self.closed:
            return False
        if len(self.pending) > MAX_PENDING_BYTES:
            self.dropped += 1
            return False
        self.pending += data
        self.flush()
        return True

    def flush(self) -> None:
        while self.pending and not self.closed:
            try:
                sent = self.sock.send(self.pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close("client disconnected")
                return
            del self.pending[:sent]

    def refuse(self, reason: str) -> None:
        """A malformed package: an error text message, then the controller hangs up."""
        self.log(f"rtde: malformed package ({reason}): closing the connection")
        self.send(w.text_message(reason, "RTDE", w.ERROR))
        self.close(f"malformed package: {reason}")

    def close(self, reason: str) -> None:
        if self.closed or self._closing:
            return
        self._closing = True        # flush() below may find the socket dead and ask to close again
        self.flush()
        self.closed = True
        self.started = False
        try:
            # shutdown first: close() alone sends the FIN only once no other thread is inside a call on the
            # socket (this session's reader may be), and the client must see the connection end now.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.owner.session_closed(self, reason)

    # -- packages -----------------------------------------------------------------------------------------
    def _handle(self, package: w.Package) -> None:
        kind, payload = package.kind, package.payload
        if kind not in w.KNOWN_TYPES:
            raise w.WireError(f"unknown package type {kind}")
        if kind == w.REQUEST_PROTOCOL_VERSION:
            if len(payload) != 2:
                raise w.WireError("protocol version request needs a u16 payload")
            (version,) = struct.unpack(">H", payload)
            self.negotiated = version == w.PROTOCOL_VERSION
            self.log(f"rtde: protocol version {version} {'accepted' if self.negotiated else 'refused'}")
            self.send(w.version_reply(self.negotiated))
        elif kind == w.GET_URCONTROL_VERSION:
            if payload:
                raise w.WireError("controller version request has no payload")
            self.send(w.controller_version_reply(self.owner.version))
        elif kind == w.TEXT_MESSAGE:
            message, source, level = w.parse_text_message(payload)
            self.log(f"rtde: message from {source} (level {level}): {message}")
        elif not self.negotiated:
            raise w.WireError("protocol version 2 has not been negotiated")
        elif kind == w.SETUP_OUTPUTS:
            self._setup_outputs(payload)
        elif kind == w.SETUP_INPUTS:
            self._setup_inputs(payload)
        elif kind == w.START:
            self._start_pause(payload, True)
        elif kind == w.PAUSE:
            self._start_pause(payload, False)
        else:
            self._data(payload)

    def _new_id(self) -> int:
        recipe_id = self.next_id
        self.next_id = self.next_id % 255 + 1
        return recipe_id

    def _setup_outputs(self, payload: bytes) -> None:
        if len(payload) < 9:
            raise w.WireError("output setup needs an f64 frequency and variable names")
        (frequency,) = struct.unpack_from(">d", payload)
        names = w.parse_names(payload[8:])
        types = [w.OUTPUTS.get(name, w.NOT_FOUND) for name in names]
        if self.started:
            self.send(w.text_message("cannot set up outputs while started: pause first", "RTDE", w.WARNING))
            self.send(w.setup_reply(w.SETUP_OUTPUTS, 0, []))
            return
        top = self.owner.frequency_hz
        if not 1.0 <= frequency <= top:
            self.log(f"rtde: output frequency {frequency:g} Hz refused")
            message = f"output frequency {frequency:g} Hz is outside 1..{top:g} Hz"
            self.send(w.text_message(message, "RTDE", w.ERROR))
            self.send(w.setup_reply(w.SETUP_OUTPUTS, 0, types))
            return
        if w.NOT_FOUND in types:
            unknown = [n for n, t in zip(names, types) if t == w.NOT_FOUND]
            self.log(f"rtde: output setup refused, not found: {', '.join(unknown)}")
            self.send(w.setup_reply(w.SETUP_OUTPUTS, 0, types))
            return
        self.output = w.Recipe(self._new_id(), tuple(names), tuple(types))
        self.frequency = frequency
        self.divisor = max(1, round(top / frequency))
        self.log(f"rtde: output recipe {self.output.recipe_id} at {frequency:g} Hz: {', '.join(names)}")
        self.send(w.setup_reply(w.SETUP_OUTPUTS, self.output.recipe_id, types))

    def _setup_inputs(self, payload: bytes) -> None:
        names = w.parse_names(payload)
        taken = {name for recipe in self.inputs.values() for name in recipe.names}
        types = []
        for name in names:
            kind = w.INPUTS.get(name, w.NOT_FOUND)
            types.append(w.IN_USE if kind != w.NOT_FOUND and name in taken else kind)
            taken.add(name)
        if self.started:
            self.send(w.text_message("cannot set up inputs while started: pause first", "RTDE", w.WARNING))
            self.send(w.setup_reply(w.SETUP_INPUTS, 0, []))
            return
        if w.NOT_FOUND in types or w.IN_USE in types:
            refused = [f"{n} ({t})" for n, t in zip(names, types) if t in (w.NOT_FOUND, w.IN_USE)]
            self.log(f"rtde: input setup refused: {', '.join(refused)}")
            self.send(w.setup_reply(w.SETUP_INPUTS, 0, types))
            return
        recipe = w.Recipe(self._new_id(), tuple(names), tuple(types))
        self.inputs[recipe.recipe_id] = recipe
        self.log(f"rtde: input recipe {recipe.recipe_id}: {', '.join(names)}")
        self.send(w.setup_reply(w.SETUP_INPUTS, recipe.recipe_id, types))

    def _start_pause(self, payload: bytes, start: bool) -> None:
        if payload:
            raise w.WireError(f"{'start' if start else 'pause'} request has no payload")
        kind = w.START if start else w.PAUSE
        if start and self.output is None:
            self.log("rtde: start refused: no output recipe")
            self.send(w.accepted_reply(kind, False))
            return
        if start and not self.started:
            self.cycles_since_start = 0
        self.started = start
        self.log(f"rtde: {'started' if start else 'paused'}")
        self.send(w.accepted_reply(kind, True))

    def _data(self, payload: bytes) -> None:
        if not payload:
            raise w.WireError("data package without a recipe id")
        recipe = self.inputs.get(payload[0])
        if recipe is None:
            raise w.WireError(f"data package for recipe {payload[0]}, which is not an input recipe")
        self.owner.apply_inputs(recipe.unpack(payload))

    # -- outputs --------------------------------------------------------------------------------------------
    def output_due(self) -> bool:
        """Whether this control cycle sends an output package (call once per cycle while started)."""
        due = self.started and self.output is not None and self.cycles_since_start % self.divisor == 0
        if self.started:
            self.cycles_since_start += 1
        return due
