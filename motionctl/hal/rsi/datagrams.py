"""The text of KUKA RSI's Ethernet datagrams, as motionctl requires them (docs/kuka-rsi.md).

The robot controller sends one ``<Rob>`` datagram per interpolation cycle; motionctl answers each with one
``<Sen>`` datagram that echoes its ``IPOC``.  Only what the Ethernet configuration shipped in
``docs/kuka-rsi.md`` asks the controller to send is read (axis positions, where RSI started, the late-answer
count and the time stamp); anything else in a datagram (a Cartesian ``RIst`` that another configuration adds)
is ignored, so a controller configured with more still works.

Parsed with the standard library's ElementTree.  A datagram that declares a DTD or entities (``<!``) is
refused before parsing: the robot never sends one, and entity expansion is how an XML datagram from a
stage network could make the parser allocate without bound.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from motionctl.errors import ProtocolError

ROBOT_AXES = ("A1", "A2", "A3", "A4", "A5", "A6")
EXTERNAL_AXES = ("E1", "E2", "E3", "E4", "E5", "E6")
#: A datagram longer than this is not from a robot controller (a full one is about 600 bytes).
MAX_DATAGRAM = 8192


@dataclass(frozen=True)
class RobotDatagram:
    """One ``<Rob>`` datagram: positions in the controller's units (degrees; mm for linear externals)."""

    ipoc: int
    actual: dict[str, float]        # AIPos A1..A6 and EIPos E1..E6 where sent
    start: dict[str, float]         # ASPos / ESPos: where RSI started (the reference of absolute corrections)
    delay: int                      # late answers the controller has counted


def _axes(element: ET.Element | None, names: tuple[str, ...], into: dict[str, float], tag: str) -> None:
    if element is None:
        return
    for name in names:
        text = element.get(name)
        if text is None:
            continue
        try:
            into[name] = float(text)
        except ValueError:
            raise ProtocolError(f'<{tag} {name}="{text}"> is not a number') from None


def parse_robot(data: bytes) -> RobotDatagram:
    """A ``<Rob>`` datagram, or :class:`ProtocolError` saying what is wrong with it."""
    if len(data) > MAX_DATAGRAM:
        raise ProtocolError(f"a datagram of {len(data)} bytes is too long for RSI")
    if b"<!" in data:
        raise ProtocolError("a datagram with a DTD or entity declaration (refused)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ProtocolError(f"not XML ({exc})") from None
    if root.tag != "Rob":
        raise ProtocolError(f"<{root.tag}> is not a robot datagram (<Rob>)")
    ipoc_text = root.findtext("IPOC")
    if ipoc_text is None or not ipoc_text.strip().isdigit():
        raise ProtocolError("no <IPOC> time stamp")
    actual: dict[str, float] = {}
    start: dict[str, float] = {}
    _axes(root.find("AIPos"), ROBOT_AXES, actual, "AIPos")
    _axes(root.find("EIPos"), EXTERNAL_AXES, actual, "EIPos")
    _axes(root.find("ASPos"), ROBOT_AXES, start, "ASPos")
    _axes(root.find("ESPos"), EXTERNAL_AXES, start, "ESPos")
    if not actual:
        raise ProtocolError("no <AIPos> axis positions")
    delay_element = root.find("Delay")
    delay_text = delay_element.get("D", "0") if delay_element is not None else "0"
    try:
        delay = int(float(delay_text))
    except ValueError:
        raise ProtocolError(f'<Delay D="{delay_text}"> is not a number') from None
    return RobotDatagram(int(ipoc_text.strip()), actual, start, delay)


def _number(value: float) -> str:
    text = f"{value:.4f}"
    return "0.0000" if text == "-0.0000" else text      # no negative zero on the wire


def _element(tag: str, names: tuple[str, ...], values: dict[str, float]) -> str:
    return f"<{tag} " + " ".join(f'{n}="{_number(values.get(n, 0.0))}"' for n in names) + "/>"


def format_answer(ipoc: int, correction: dict[str, float], *, externals: bool, stop: bool) -> bytes:
    """The ``<Sen>`` answer to the datagram stamped ``ipoc``: total corrections (``RSI_ON(#ABSOLUTE)``),
    four decimals (0.0001 degree or mm), every robot axis, the external axes when the rig has any."""
    parts = ['<Sen Type="ImFree">', _element("AK", ROBOT_AXES, correction)]
    if externals:
        parts.append(_element("EK", EXTERNAL_AXES, correction))
    parts.append(f"<Stop>{1 if stop else 0}</Stop><IPOC>{ipoc}</IPOC></Sen>")
    return "".join(parts).encode("ascii")
