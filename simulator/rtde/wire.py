"""The RTDE wire as the robot sees it: package framing, types, the variables the fake controller knows.

Written from UR's RTDE guide and the public clients that implement it (``docs/ur-rtde-facts.md`` §1-§4);
it shares nothing with motionctl's host driver.  Every package is ``u16 size`` (header included), ``u8
type``, payload, big-endian.  Protocol version 2 only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

HEADER = struct.Struct(">HB")
HEADER_SIZE = HEADER.size
PROTOCOL_VERSION = 2
MAX_FREQUENCY_HZ = 500.0          # e-Series control loop
CB3_FREQUENCY_HZ = 125.0          # CB3 (software 3.x) control loop
CONTROLLER_VERSION = (5, 15, 0, 0)

REQUEST_PROTOCOL_VERSION = ord("V")    # 86
GET_URCONTROL_VERSION = ord("v")       # 118
TEXT_MESSAGE = ord("M")                # 77
DATA_PACKAGE = ord("U")                # 85
SETUP_OUTPUTS = ord("O")               # 79
SETUP_INPUTS = ord("I")                # 73
START = ord("S")                       # 83
PAUSE = ord("P")                       # 80
KNOWN_TYPES = {REQUEST_PROTOCOL_VERSION, GET_URCONTROL_VERSION, TEXT_MESSAGE, DATA_PACKAGE, SETUP_OUTPUTS,
               SETUP_INPUTS, START, PAUSE}

#: Text message levels (protocol 2).
EXCEPTION, ERROR, WARNING, INFO = 0, 1, 2, 3

#: RTDE type name -> struct format of its value(s).
FORMATS = {
    "BOOL": "?", "UINT8": "B", "UINT32": "I", "UINT64": "Q", "INT32": "i", "DOUBLE": "d",
    "VECTOR3D": "3d", "VECTOR6D": "6d", "VECTOR6INT32": "6i", "VECTOR6UINT32": "6I",
}
VECTOR_SIZES = {"VECTOR3D": 3, "VECTOR6D": 6, "VECTOR6INT32": 6, "VECTOR6UINT32": 6}
NOT_FOUND = "NOT_FOUND"
IN_USE = "IN_USE"
REGISTERS = 48                     # input/output int and double registers 0..47 on e-Series

# Mode values (robot_mode, safety_mode, runtime_state).
ROBOT_MODES = {-1: "NO_CONTROLLER", 0: "DISCONNECTED", 1: "CONFIRM_SAFETY", 2: "BOOTING", 3: "POWER_OFF",
               4: "POWER_ON", 5: "IDLE", 6: "BACKDRIVE", 7: "RUNNING", 8: "UPDATING_FIRMWARE"}
POWER_OFF, IDLE, RUNNING = 3, 5, 7
SAFETY_MODES = {1: "NORMAL", 2: "REDUCED", 3: "PROTECTIVE_STOP", 4: "RECOVERY", 5: "SAFEGUARD_STOP",
                6: "SYSTEM_EMERGENCY_STOP", 7: "ROBOT_EMERGENCY_STOP", 8: "VIOLATION", 9: "FAULT"}
NORMAL, PROTECTIVE_STOP, ROBOT_EMERGENCY_STOP = 1, 3, 7
RUNTIME_STATES = {0: "STOPPING", 1: "STOPPED", 2: "PLAYING", 3: "PAUSING", 4: "PAUSED", 5: "RESUMING"}
STOPPED, PLAYING, PAUSED = 1, 2, 4

#: The output variables the fake serves, with their RTDE types.  Real names it does not model (tool, TCP,
#: I/O, currents ...) are answered NOT_FOUND: see the facts file.
OUTPUTS: dict[str, str] = {
    "timestamp": "DOUBLE", "target_q": "VECTOR6D", "target_qd": "VECTOR6D", "target_qdd": "VECTOR6D",
    "actual_q": "VECTOR6D", "actual_qd": "VECTOR6D", "robot_mode": "INT32", "safety_mode": "INT32",
    "safety_status": "INT32", "safety_status_bits": "UINT32", "robot_status_bits": "UINT32",
    "runtime_state": "UINT32", "speed_scaling": "DOUBLE", "target_speed_fraction": "DOUBLE",
}
OUTPUTS.update({f"output_int_register_{n}": "INT32" for n in range(REGISTERS)})
OUTPUTS.update({f"output_double_register_{n}": "DOUBLE" for n in range(REGISTERS)})
INPUTS: dict[str, str] = {f"input_int_register_{n}": "INT32" for n in range(REGISTERS)}
INPUTS.update({f"input_double_register_{n}": "DOUBLE" for n in range(REGISTERS)})


class WireError(Exception):
    """A package the controller cannot accept: it answers with an error text message and hangs up."""


@dataclass(frozen=True)
class Package:
    kind: int
    payload: bytes


def pack(kind: int, payload: bytes = b"") -> bytes:
    size = HEADER_SIZE + len(payload)
    if size > 0xFFFF:
        raise ValueError(f"package of {size} bytes does not fit the u16 size field")
    return HEADER.pack(size, kind) + payload


class Splitter:
    """Cuts a TCP byte stream into packages; raises :class:`WireError` on a size field below 3."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Package]:
        self._buffer += data
        while len(self._buffer) >= HEADER_SIZE:
            size, kind = HEADER.unpack_from(self._buffer)
            if size < HEADER_SIZE:
                raise WireError(f"package size {size} is smaller than its 3-byte header")
            if len(self._buffer) < size:
                return
            payload = bytes(self._buffer[HEADER_SIZE:size])
            del self._buffer[:size]
            yield Package(kind, payload)


def text_message(message: str, source: str = "RTDE", level: int = ERROR) -> bytes:
    """An RTDE_TEXT_MESSAGE package, protocol-2 layout (u8 length, message, u8 length, source, u8 level)."""
    text = message.encode("utf-8")[:255]
    src = source.encode("utf-8")[:255]
    return pack(TEXT_MESSAGE, bytes([len(text)]) + text + bytes([len(src)]) + src + bytes([level]))


def parse_text_message(payload: bytes) -> tuple[str, str, int]:
    """(message, source, level) of a protocol-2 text message; :class:`WireError` if it does not add up."""
    try:
        n = payload[0]
        message = payload[1:1 + n]
        m = payload[1 + n]
        source = payload[2 + n:2 + n + m]
        level = payload[2 + n + m]
    except IndexError:
        raise WireError("text message shorter than its length fields say") from None
    if len(payload) != 3 + n + m or len(message) != n or len(source) != m:
        raise WireError("text message longer than its length fields say")
    return message.decode("utf-8", "replace"), source.decode("utf-8", "replace"), level


def parse_names(payload: bytes) -> list[str]:
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError:
        raise WireError("variable names are not ASCII text") from None
    if not text:
        raise WireError("empty variable list")
    return [name.strip() for name in text.split(",")]


@dataclass(frozen=True)
class Recipe:
    """A configured recipe: its id, names and types, and the struct that packs a data package's fields."""

    recipe_id: int
    names: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def layout(self) -> struct.Struct:
        return struct.Struct(">B" + "".join(FORMATS[t] for t in self.types))

    def pack(self, values: dict[str, object]) -> bytes:
        flat: list[object] = [self.recipe_id]
        for name, kind in zip(self.names, self.types):
            value = values[name]
            if kind in VECTOR_SIZES:
                flat.extend(value)          # type: ignore[arg-type]
            else:
                flat.append(value)
        return pack(DATA_PACKAGE, self.layout.pack(*flat))

    def unpack(self, payload: bytes) -> dict[str, object]:
        layout = self.layout
        if len(payload) != layout.size:
            raise WireError(f"data package for recipe {self.recipe_id} has {len(payload)} bytes, "
                            f"its recipe needs {layout.size}")
        flat = layout.unpack(payload)[1:]
        out: dict[str, object] = {}
        i = 0
        for name, kind in zip(self.names, self.types):
            count = VECTOR_SIZES.get(kind, 1)
            out[name] = list(flat[i:i + count]) if kind in VECTOR_SIZES else flat[i]
            i += count
        return out


def version_reply(accepted: bool) -> bytes:
    return pack(REQUEST_PROTOCOL_VERSION, bytes([1 if accepted else 0]))


def controller_version_reply(version: tuple[int, int, int, int] = CONTROLLER_VERSION) -> bytes:
    return pack(GET_URCONTROL_VERSION, struct.pack(">IIII", *version))


def setup_reply(kind: int, recipe_id: int, types: list[str] | tuple[str, ...]) -> bytes:
    return pack(kind, bytes([recipe_id]) + ",".join(types).encode("ascii"))


def accepted_reply(kind: int, accepted: bool) -> bytes:
    return pack(kind, bytes([1 if accepted else 0]))
