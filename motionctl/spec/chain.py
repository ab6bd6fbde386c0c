"""Kinematic chains from local files: an ETS string per link in the rig TOML, or a local URDF.

Both compile to the same model, a serial list of :class:`LinkSpec`, each ``pre @ J(q) @ post`` where
``J`` is one elementary joint motion (a rotation or translation along the link's x, y or z) and
``pre``/``post`` are constant transforms.  Nothing is fetched from the internet: roboticstoolbox's
bundled URDF models download their meshes at run time and are never used.

The URDF reader is a small expat walk instead of roboticstoolbox's loader because error messages must
name the line of the bad element, and because only the serial chain from the root to the camera link
matters here (meshes, inertias and side branches are ignored).
"""

from __future__ import annotations

import math
import re
import xml.parsers.expat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import SpecError
from motionctl.rotations import frozen, homogeneous, rot_x, rot_y, rot_z, rpy_to_matrix
from motionctl.spec.shapes import Capsule
from motionctl.spec.source import one_line, suggest

AXIS_LETTERS = "xyz"


@dataclass(frozen=True)
class JointRef:
    """The one joint motion inside a link: which axis variable drives it and how."""

    variable: str          # joint name in the ETS string or the URDF; bound to a rig axis by name
    prismatic: bool        # translation (m) rather than rotation (rad)
    direction: int         # 0, 1, 2 for the link's x, y, z
    sign: float = 1.0      # -1 where the motion runs along the negative axis


@dataclass(frozen=True, eq=False)
class LinkSpec:
    """One link of a serial chain: its frame is ``parent @ pre @ J(q) @ post``."""

    name: str
    pre: NDArray[np.float64]
    joint: JointRef | None
    post: NDArray[np.float64]
    capsules: tuple[Capsule, ...] = field(default=())


def elementary(kind: str, amount: float) -> NDArray[np.float64]:
    """4x4 transform of one elementary motion (``tx``..``tz`` in m, ``rx``..``rz`` in rad)."""
    axis = AXIS_LETTERS.index(kind[1])
    if kind[0] == "t":
        offset = np.zeros(3)
        offset[axis] = amount
        return homogeneous(np.eye(3), offset)
    return homogeneous((rot_x, rot_y, rot_z)[axis](amount), np.zeros(3))


_ETS_TERM = re.compile(r"^\s*([tTrR][xyzXYZ])\s*\(\s*([^()]*?)\s*\)\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_NAME = re.compile(r"^([+-]?)([A-Za-z_][A-Za-z0-9_]*)$")


def parse_ets(text: str, link: str, error) -> tuple[NDArray[np.float64], JointRef | None, NDArray[np.float64]]:
    """Parse ``"tz(0.18) Rz(shoulder_pan) Rx(90)"``: constants in m and degrees, at most one joint.

    ``error(message)`` builds the SpecError for the surrounding key.
    """
    terms = [t for t in re.split(r"[\s*]+(?![^(]*\))", text.strip()) if t]
    if not terms:
        raise error("empty ETS: expected terms such as tz(0.18) Rz(joint_name)")
    pre, post = np.eye(4), np.eye(4)
    joint: JointRef | None = None
    for term in terms:
        match = _ETS_TERM.match(term)
        if not match:
            raise error(f'bad ETS term "{term}": expected tx(m), ty, tz, Rx(deg), Ry, Rz '
                        "with a number or a joint name")
        kind = match.group(1).lower()
        argument = match.group(2)
        if _NUMBER.match(argument):
            value = float(argument)
            if not math.isfinite(value):
                raise error(f'ETS term "{term}" is not finite')
            amount = value if kind[0] == "t" else math.radians(value)
            step = elementary(kind, amount)
            if joint is None:
                pre = pre @ step
            else:
                post = post @ step
            continue
        named = _NAME.match(argument)
        if not named:
            raise error(f'bad ETS argument "{argument}" in "{term}": a number or a joint name')
        if joint is not None:
            raise error(f'link "{link}" has two joints ({joint.variable}, {named.group(2)}): '
                        "split it into two links")
        joint = JointRef(named.group(2), kind[0] == "t", AXIS_LETTERS.index(kind[1]),
                         -1.0 if named.group(1) == "-" else 1.0)
    return frozen(pre), joint, frozen(post)


# -- URDF -----------------------------------------------------------------------------------------


@dataclass
class _Element:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list[_Element] = field(default_factory=list)

    def child(self, tag: str) -> _Element | None:
        return next((c for c in self.children if c.tag == tag), None)


def _error(message: str, file: str, line: int | None = None) -> SpecError:
    """A URDF error; names and attribute values quoted from the file cannot break the one line."""
    return SpecError(one_line(message), file=file, line=line)


def _parse_xml(text: bytes, file: str) -> _Element:
    parser = xml.parsers.expat.ParserCreate()
    stack: list[_Element] = []
    root: list[_Element] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = _Element(tag, attrs, parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)

    def end(tag: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as exc:
        raise SpecError(f"XML error: {xml.parsers.expat.ErrorString(exc.code)}", file=file,
                        line=exc.lineno) from None
    except (LookupError, ValueError) as exc:  # e.g. an encoding="..." that Python does not know
        raise _error(f"XML error: {exc}", file, parser.CurrentLineNumber) from None
    if not root:
        raise SpecError("empty XML document", file=file)
    return root[0]


def _floats(element: _Element, attr: str, default: str, file: str) -> NDArray[np.float64]:
    raw = element.attrs.get(attr, default)
    try:
        values = [float(v) for v in raw.split()]
    except ValueError:
        values = []
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise _error(f'<{element.tag} {attr}="{raw}">: expected three finite numbers', file, element.line)
    return np.array(values)


@dataclass(frozen=True)
class UrdfJointLimits:
    lower: float | None
    upper: float | None
    velocity: float | None


def load_urdf(path: Path, shown: str, tip: str,
              tip_error: Callable[[str], SpecError] | None = None,
              ) -> tuple[list[LinkSpec], dict[str, UrdfJointLimits], str]:
    """Read the serial chain from the URDF's root link to ``tip``.

    Returns the links in order (root first, the root link itself carrying no joint), the URDF limits of
    each movable joint (so the rig file can be checked against them) and the root link's name.
    ``tip_error(message)`` builds the error for a ``tip`` the URDF does not have (so it can point at the
    rig file's ``tip`` key); by default it names the URDF.
    """
    shown = one_line(shown)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("URDF file not found", file=shown) from None
    except OSError as exc:
        raise SpecError(f"cannot read URDF: {exc.strerror or exc}", file=shown) from None
    except ValueError as exc:  # e.g. a NUL character in the path
        raise SpecError(f"not a valid URDF file name ({exc})", file=shown) from None
    robot = _parse_xml(data, shown)
    if robot.tag != "robot":
        raise _error(f"expected a <robot> root element, found <{robot.tag}>", shown, robot.line)
    links = {c.attrs.get("name"): c for c in robot.children if c.tag == "link"}
    by_child: dict[str, _Element] = {}
    for joint in (c for c in robot.children if c.tag == "joint"):
        child = joint.child("child")
        parent = joint.child("parent")
        if child is None or parent is None or "link" not in child.attrs or "link" not in parent.attrs:
            raise _error(f'joint "{joint.attrs.get("name")}" needs <parent link=...> and <child link=...>',
                         shown, joint.line)
        by_child[child.attrs["link"]] = joint
    if tip not in links:
        message = f'URDF has no link "{tip}"{suggest(tip, [n for n in links if n])}'
        raise tip_error(message) if tip_error is not None else _error(message, shown)
    chain: list[_Element] = []
    name = tip
    seen = {tip}
    while name in by_child:
        joint = by_child[name]
        chain.append(joint)
        name = joint.child("parent").attrs["link"]  # type: ignore[union-attr]
        if name in seen:
            raise _error(f'URDF joints form a loop through link "{name}"', shown, joint.line)
        seen.add(name)
    root_name = name
    chain.reverse()
    specs = [LinkSpec(root_name, frozen(np.eye(4)), None, frozen(np.eye(4)))]
    limits: dict[str, UrdfJointLimits] = {}
    for joint in chain:
        jname = joint.attrs.get("name", "")
        jtype = joint.attrs.get("type", "")
        origin = joint.child("origin")
        xyz = _floats(origin, "xyz", "0 0 0", shown) if origin is not None else np.zeros(3)
        rpy = _floats(origin, "rpy", "0 0 0", shown) if origin is not None else np.zeros(3)
        pre = homogeneous(rpy_to_matrix(*rpy), xyz)
        ref: JointRef | None = None
        if jtype in ("revolute", "continuous", "prismatic"):
            axis_el = joint.child("axis")
            axis = _floats(axis_el, "xyz", "1 0 0", shown) if axis_el is not None else np.array([1.0, 0, 0])
            nonzero = np.flatnonzero(np.abs(axis) > 1e-12)
            if len(nonzero) != 1 or not math.isclose(abs(axis[nonzero[0]]), 1.0, abs_tol=1e-9):
                raise _error(f'joint "{jname}": axis must be along x, y or z (got {axis.tolist()})',
                             shown, (axis_el or joint).line)
            direction = int(nonzero[0])
            ref = JointRef(jname, jtype == "prismatic", direction, float(np.sign(axis[direction])))
            limit = joint.child("limit")
            if limit is not None:
                def number(attr: str) -> float | None:
                    raw = limit.attrs.get(attr)
                    try:
                        value = float(raw) if raw is not None else None
                    except ValueError:
                        raise _error(f'<limit {attr}="{raw}"> is not a number', shown, limit.line) from None
                    if value is not None and not math.isfinite(value):
                        raise _error(f'<limit {attr}="{raw}"> is not a finite number', shown, limit.line)
                    return value
                limits[jname] = UrdfJointLimits(number("lower"), number("upper"), number("velocity"))
        elif jtype not in ("fixed",):
            raise _error(f'joint "{jname}": type "{jtype}" is not supported (revolute, continuous, '
                         "prismatic or fixed)", shown, joint.line)
        child_name = joint.child("child").attrs["link"]  # type: ignore[union-attr]
        specs.append(LinkSpec(child_name, frozen(pre), ref, frozen(np.eye(4))))
    return specs, limits, root_name
