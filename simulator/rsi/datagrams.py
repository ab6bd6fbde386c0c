"""The text of KUKA RSI "Ethernet" datagrams, as the simulated robot controller writes and reads it.

Written from KUKA's published RSI configuration (the ROS-Industrial and KUKA ``ros_rsi_ethernet.xml`` /
``.rsix`` files) and ``docs/kuka-rsi-facts.md``, never from motionctl's host driver.  Two directions:

Robot -> external system, once per IPO cycle (:func:`format_rob`)::

    <Rob Type="KUKA"><RIst X=.. Y=.. Z=.. A=.. B=.. C=../><AIPos A1=..A6=../><ASPos A1=..A6=../>
    <EIPos E1=..E6=../><ESPos E1=..E6=../><Delay D="n"/><IPOC>ms</IPOC></Rob>

on one line, no XML declaration, every number with four decimals (the Ethernet object's ``Precision``).
RIst (the Cartesian actual pose) is written all zeros: the fake has no Cartesian model.

External system -> robot, the answer (:func:`parse_answer`)::

    <Sen Type="ImFree"><AK A1=..A6=../>[<EK E1=..E6=../>][<Stop>0|1</Stop>]<IPOC>ms</IPOC></Sen>

read by tag and attribute name (any order, any whitespace); ``EK`` and ``Stop`` may be absent.  Anything
else (not XML, another root, a missing or non-finite AK value, no IPOC) raises :class:`AnswerError`,
which the controller counts as a missing answer.

Axes on the wire (:func:`bind_slots`): ``[hardware] address`` 1-6 puts a rig axis on A1-A6 (the arm's
rotary axes, degrees), 7-12 on E1-E6 (external axes: degrees if rotary, millimetres if linear).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Sequence

from motionctl.errors import HardwareError
from motionctl.spec.rig import Rig

ROBOT_AXES = ("A1", "A2", "A3", "A4", "A5", "A6")
EXTERNAL_AXES = ("E1", "E2", "E3", "E4", "E5", "E6")
#: The twelve wire slots in order: the arm's axes A1-A6 (degrees), then the external axes E1-E6
#: (degrees if rotary, millimetres if linear).
SLOTS = ROBOT_AXES + EXTERNAL_AXES

MAX_ANSWER_BYTES = 8192
DEG_PER_RAD = 180.0 / math.pi
MM_PER_M = 1000.0


class AnswerError(ValueError):
    """An answer that is not a usable RSI answer; the message says why in plain words."""


@dataclass(frozen=True)
class Answer:
    """One parsed answer: total corrections (RSI_ON(#ABSOLUTE)) in wire units, the echoed IPOC, Stop."""

    ipoc: int
    ak: tuple[float, ...]                 # A1..A6, degrees
    ek: tuple[float, ...] | None          # E1..E6, degrees or millimetres; None: no EK element
    stop: bool


@dataclass(frozen=True)
class SlotBinding:
    """Which rig axis drives each of the 12 wire slots, and its scale and limits in wire units."""

    axis_of: list[int | None]          # rig axis index per slot, None: not wired
    scale: list[float]                 # wire units per SI unit: degrees per radian, millimetres per metre
    vmax: list[float]                  # wire units per second
    amax: list[float]                  # wire units per second squared


def bind_slots(rig: Rig) -> SlotBinding:
    """Rig axes -> wire slots from ``[hardware] address``: 1-6 are A1-A6 (rotary only), 7-12 are E1-E6."""
    if rig.hardware is None:
        raise HardwareError(f'rig "{rig.name}" has no [hardware] section: no axis addresses for RSI')
    n = len(SLOTS)
    binding = SlotBinding([None] * n, [1.0] * n, [math.inf] * n, [math.inf] * n)
    for index, axis in enumerate(rig.axes):
        address = rig.hardware.address.get(axis.name)
        if address is None or not 1 <= address <= n:
            raise HardwareError(f'axis "{axis.name}": RSI needs an address 1-6 (A1-A6) or 7-12 (E1-E6), '
                                f"got {address}")
        slot = address - 1
        if axis.linear and slot < 6:
            raise HardwareError(f'axis "{axis.name}" is linear: A1-A6 are the arm\'s rotary axes; give it an '
                                "external axis address 7-12 (E1-E6)")
        scale = MM_PER_M if axis.linear else DEG_PER_RAD
        binding.axis_of[slot], binding.scale[slot] = index, scale
        binding.vmax[slot], binding.amax[slot] = axis.vmax * scale, axis.amax * scale
    return binding


def number(value: float) -> str:
    """A value as the controller prints it: four decimals, never "-0.0000"."""
    text = f"{value:.4f}"
    return "0.0000" if text == "-0.0000" else text


def _element(tag: str, names: Sequence[str], values: Sequence[float]) -> str:
    attributes = " ".join(f'{n}="{number(v)}"' for n, v in zip(names, values))
    return f"<{tag} {attributes}/>"


def format_rob(actual: Sequence[float], start: Sequence[float], delay: int, ipoc: int,
               rob_type: str = "KUKA") -> bytes:
    """The robot's datagram.  ``actual`` and ``start`` hold the 12 slots A1..A6, E1..E6 in wire units."""
    if len(actual) != len(SLOTS) or len(start) != len(SLOTS):
        raise ValueError("actual and start need 12 values: A1..A6, E1..E6")
    text = (f'<Rob Type="{rob_type}">'
            + _element("RIst", ("X", "Y", "Z", "A", "B", "C"), (0.0,) * 6)
            + _element("AIPos", ROBOT_AXES, actual[:6])
            + _element("ASPos", ROBOT_AXES, start[:6])
            + _element("EIPos", EXTERNAL_AXES, actual[6:])
            + _element("ESPos", EXTERNAL_AXES, start[6:])
            + f'<Delay D="{int(delay)}"/><IPOC>{int(ipoc)}</IPOC></Rob>')
    return text.encode("ascii")


def _finite(element: ET.Element, name: str) -> float:
    raw = element.get(name)
    if raw is None:
        raise AnswerError(f"<{element.tag}> has no {name} value")
    try:
        value = float(raw)
    except ValueError:
        raise AnswerError(f'<{element.tag}> {name}="{raw}" is not a number') from None
    if not math.isfinite(value):
        raise AnswerError(f'<{element.tag}> {name}="{raw}" is not a finite number')
    return value


def _only(root: ET.Element, tag: str) -> ET.Element | None:
    found = root.findall(tag)
    if len(found) > 1:
        raise AnswerError(f"the answer holds {len(found)} <{tag}> elements")
    return found[0] if found else None


def parse_answer(data: bytes, sen_type: str | None = "ImFree") -> Answer:
    """Read one answer datagram; :class:`AnswerError` if it cannot be used.

    ``sen_type``: the ``Type`` the controller's Ethernet configuration expects in ``<Sen Type="">``
    (its ``SENTYPE``); None accepts any.
    """
    if len(data) > MAX_ANSWER_BYTES:
        raise AnswerError(f"the answer is {len(data)} bytes long (at most {MAX_ANSWER_BYTES})")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise AnswerError("the answer is not ASCII text") from None
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise AnswerError("the answer carries a document type declaration")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise AnswerError(f"the answer is not well-formed XML ({error})") from None
    if root.tag != "Sen":
        raise AnswerError(f"the answer's root element is <{root.tag}>, not <Sen>")
    if sen_type is not None and root.get("Type") != sen_type:
        raise AnswerError(f'the answer says <Sen Type="{root.get("Type")}">, the controller expects '
                          f'Type="{sen_type}"')
    ak = _only(root, "AK")
    if ak is None:
        raise AnswerError("the answer has no <AK> element")
    corrections = tuple(_finite(ak, name) for name in ROBOT_AXES)
    ek = _only(root, "EK")
    external = None if ek is None else tuple(_finite(ek, name) for name in EXTERNAL_AXES)
    stop = False
    stop_element = _only(root, "Stop")
    if stop_element is not None:
        flag = (stop_element.text or "").strip().lower()
        if flag not in ("0", "1", "true", "false"):
            raise AnswerError(f'<Stop>{stop_element.text}</Stop> is neither 0 nor 1')
        stop = flag in ("1", "true")
    ipoc_element = _only(root, "IPOC")
    if ipoc_element is None:
        raise AnswerError("the answer has no <IPOC> element")
    raw = (ipoc_element.text or "").strip()
    if not raw.isdigit():
        raise AnswerError(f"<IPOC>{ipoc_element.text}</IPOC> is not a whole number")
    return Answer(int(raw), corrections, external, stop)
