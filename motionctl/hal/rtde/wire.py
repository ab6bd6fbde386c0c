"""Universal Robots RTDE (Real-Time Data Exchange), protocol version 2: packages and recipes.

Every package is ``u16 size`` (the whole package, these three bytes included), ``u8 type``, then the
payload, all big-endian.  A client asks for protocol version 2, sets up one recipe of outputs (variables the
controller sends at a frequency it is given) and one of inputs (registers the client writes), starts the
synchronisation, and from then on receives a data package per controller cycle and sends input data
packages whenever it likes.  Variable types come back in the setup replies; ``NOT_FOUND`` names a variable
the controller does not have, ``IN_USE`` an input another client already writes.

Written from UR's RTDE guide (docs/ur-rtde.md).  UR's rtde and SDU's ur-rtde client libraries are not used:
motionctl needs a lock-step (simulated time) mode that counts packages on the wire, the protocol is small,
and ur-rtde brings its own control script and threads that would stand between the servo loop and the wire.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from motionctl.errors import ProtocolError

REQUEST_PROTOCOL_VERSION = 86        # 'V'
GET_URCONTROL_VERSION = 118          # 'v'
TEXT_MESSAGE = 77                    # 'M'
DATA_PACKAGE = 85                    # 'U'
SETUP_OUTPUTS = 79                   # 'O'
SETUP_INPUTS = 73                    # 'I'
START = 83                           # 'S'
PAUSE = 80                           # 'P'
HEADER = struct.Struct(">HB")

#: Binary layout of each RTDE type (after the recipe id byte of a data package).
TYPES: dict[str, str] = {
    "BOOL": "?", "UINT8": "B", "UINT32": "I", "UINT64": "Q", "INT32": "i", "DOUBLE": "d",
    "VECTOR3D": "3d", "VECTOR6D": "6d", "VECTOR6INT32": "6i", "VECTOR6UINT32": "6I",
}

#: ``robot_mode``, ``safety_mode`` and ``runtime_state`` in words (UR's RTDE guide and script manual).
ROBOT_MODES = {-1: "without a controller", 0: "disconnected", 1: "waiting for its safety configuration to be "
               "confirmed", 2: "booting", 3: "powered off", 4: "powering on", 5: "idle with its brakes on",
               6: "in backdrive", 7: "running", 8: "updating its firmware"}
SAFETY_MODES = {1: "normal", 2: "reduced", 3: "protective stop", 4: "recovery", 5: "safeguard stop",
                6: "system emergency stop", 7: "robot emergency stop", 8: "safety violation", 9: "safety fault",
                10: "validating joint ids", 11: "an undefined safety mode", 12: "automatic mode safeguard stop",
                13: "three-position enabling stop"}
RUNTIME_STATES = {0: "stopping", 1: "stopped", 2: "playing", 3: "pausing", 4: "paused", 5: "resuming"}
ROBOT_RUNNING = 7
SAFETY_NORMAL = 1
SAFETY_REDUCED = 2
RUNTIME_PLAYING = 2


def package(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(HEADER.size + len(payload), kind) + payload


def split(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Whole packages at the front of ``buffer`` (removed from it), as (type, payload)."""
    out = []
    while len(buffer) >= HEADER.size:
        size, kind = HEADER.unpack_from(buffer)
        if size < HEADER.size:
            raise ProtocolError(f"an RTDE package claims {size} bytes, less than its header")
        if len(buffer) < size:
            break
        out.append((kind, bytes(buffer[HEADER.size:size])))
        del buffer[:size]
    return out


@dataclass(frozen=True)
class Recipe:
    """A set-up recipe: its id, variable names and types, and the struct that packs its data package."""

    recipe_id: int
    names: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def layout(self) -> struct.Struct:
        return struct.Struct(">B" + "".join(TYPES[t] for t in self.types))

    def pack(self, values: dict[str, object]) -> bytes:
        flat: list[object] = [self.recipe_id]
        for name, kind in zip(self.names, self.types):
            value = values[name]
            flat.extend(value if kind.startswith("VECTOR") else [value])   # type: ignore[arg-type]
        return package(DATA_PACKAGE, self.layout.pack(*flat))

    def unpack(self, payload: bytes) -> dict[str, object]:
        try:
            flat = self.layout.unpack(payload)
        except struct.error:
            raise ProtocolError(f"a data package of {len(payload)} bytes does not fit recipe {self.recipe_id} "
                                f"({self.layout.size} bytes)") from None
        if flat[0] != self.recipe_id:
            raise ProtocolError(f"a data package for recipe {flat[0]}, expected {self.recipe_id}")
        values: dict[str, object] = {}
        i = 1
        for name, kind in zip(self.names, self.types):
            code = TYPES[kind]
            width = int(code[0]) if code[0].isdigit() else 1
            values[name] = flat[i] if width == 1 else tuple(flat[i:i + width])
            i += width
        return values


def setup_outputs(frequency_hz: float, names: tuple[str, ...]) -> bytes:
    return package(SETUP_OUTPUTS, struct.pack(">d", frequency_hz) + ",".join(names).encode("ascii"))


def setup_inputs(names: tuple[str, ...]) -> bytes:
    return package(SETUP_INPUTS, ",".join(names).encode("ascii"))


def recipe_from_reply(payload: bytes, names: tuple[str, ...], what: str) -> Recipe:
    """The reply to a setup request: a recipe id, then the types, comma-separated, in the order asked."""
    if not payload:
        raise ProtocolError(f"an empty reply to the {what} setup")
    types = tuple(payload[1:].decode("ascii", "replace").split(","))
    refused = [f"{n} ({t.lower().replace('_', ' ')})" for n, t in zip(names, types) if t not in TYPES]
    if payload[0] == 0 or refused or len(types) != len(names):
        raise ProtocolError(f"the controller refused the {what}: " + (", ".join(refused) or
                                                                     payload[1:].decode("ascii", "replace")))
    return Recipe(payload[0], names, types)


def text_message(payload: bytes) -> str:
    """A protocol-2 text message: u8 length + message, u8 length + source, u8 warning level."""
    try:
        n = payload[0]
        message = payload[1:1 + n].decode("utf-8", "replace")
        m = payload[1 + n]
        source = payload[2 + n:2 + n + m].decode("utf-8", "replace")
    except IndexError:
        return payload.decode("utf-8", "replace")
    return f"{source}: {message}" if source else message
