"""Rig files (``rigs/*.toml``) -> a validated, immutable :class:`Rig` in SI units.

A rig is a serial kinematic chain (ETS strings in the file, or a local URDF), the axes that move it with
their position/velocity/acceleration/jerk limits, the camera mounted on one link, the lens axes, collision
capsules per link, a park pose, the IK settings that keep the arm in one configuration, and the hardware
binding.  Angles are degrees in the file and radians here.  See ``docs/formats.md``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
from numpy.typing import NDArray

from motionctl.rotations import frozen, homogeneous
from motionctl.spec.chain import LinkSpec, UrdfJointLimits, load_urdf, parse_ets
from motionctl.spec.shapes import read_capsule, read_rotation
from motionctl.spec.source import Source, Table, check_number, read_toml, suggest

LENS_UNITS = {"focus": "m", "iris": "f-stop", "zoom": "mm"}
SIGNS = {"positive": 1.0, "negative": -1.0}


@dataclass(frozen=True)
class Axis:
    """One motor axis of the arm.  Limits are SI: m, m/s, ... or rad, rad/s, rad/s^2, rad/s^3."""

    name: str
    linear: bool
    min: float
    max: float
    vmax: float
    amax: float
    jmax: float
    soft_margin: float

    @property
    def unit(self) -> str:
        return "m" if self.linear else "rad"

    @property
    def file_unit(self) -> str:
        return "m" if self.linear else "deg"

    def to_file(self, value: float) -> float:
        """SI value -> the unit written in files and shown to operators (m or degrees)."""
        return value if self.linear else math.degrees(value)


@dataclass(frozen=True, eq=False)
class LensAxis:
    """A lens motor (focus, iris or zoom) in its physical unit, with its encoder calibration.

    ``encoder`` maps the physical value to the normalised encoder position 0..1 (piecewise linear
    through the calibration points), which is what OpenTrackIO and the drives use.
    """

    name: str
    unit: str
    min: float
    max: float
    vmax: float
    amax: float
    jmax: float
    default: float
    calibration: NDArray[np.float64]   # shape (n, 2): physical value, normalised 0..1

    def encoder(self, value: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
        return np.interp(value, self.calibration[:, 0], self.calibration[:, 1])


@dataclass(frozen=True)
class HardwareBinding:
    """How the rig is wired: a transport URL and each axis' drive address and encoder resolution."""

    transport: str
    servo_rate_hz: int
    address: Mapping[str, int]
    counts: Mapping[str, float]         # counts per metre (linear) / per revolution (rotary) / full range (lens)
    eds: str | None = None
    #: A rig whose axes span several controllers: one binding per ``[[hardware.group]]`` (each with its own
    #: transport, addresses, counts and EDS, at the rig's servo rate).  The rig's own binding then has the
    #: transport ``group://`` and the union of the groups' addresses and counts.
    groups: tuple[HardwareBinding, ...] = ()
    name: str = ""


@dataclass(frozen=True, eq=False)
class Rig:
    """A validated rig.  ``links`` is the serial chain root first; ``axes`` are in chain order."""

    name: str
    title: str
    file: str
    base: NDArray[np.float64]                 # 4x4: rig root frame in the stage frame
    links: tuple[LinkSpec, ...]
    axes: tuple[Axis, ...]
    lens: tuple[LensAxis, ...]
    camera_link: int                          # index into links
    camera_mount: NDArray[np.float64]         # 4x4: camera frame in the camera link's frame
    park: NDArray[np.float64]                 # joint vector, SI
    #: axis -> required sign of sin(q) (rotary) or q (linear): elbow up/down, wrist flip.  Changing sign
    #: means passing through a singularity, which the IK tracker refuses to do silently.
    configuration: Mapping[str, float] = field(default_factory=dict)
    follow: tuple[str, ...] = ()              # axes interpolated between keys, not solved along the path
    self_margin_m: float = 0.01
    ignore_pairs: frozenset[frozenset[str]] = frozenset()
    hardware: HardwareBinding | None = None

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    def axis_index(self, name: str) -> int:
        return self.axis_names.index(name)

    @property
    def lower(self) -> NDArray[np.float64]:
        return np.array([a.min for a in self.axes])

    @property
    def upper(self) -> NDArray[np.float64]:
        return np.array([a.max for a in self.axes])

    def axis_table(self) -> list[dict[str, object]]:
        """Every axis and lens axis with its limits in SI units (for reports and pipelines)."""
        rows: list[dict[str, object]] = [
            {"name": a.name, "kind": "linear" if a.linear else "rotary", "unit": a.unit, "min": a.min,
             "max": a.max, "vmax": a.vmax, "amax": a.amax, "jmax": a.jmax, "soft_margin": a.soft_margin}
            for a in self.axes]
        rows += [{"name": f"lens.{l.name}", "kind": "lens", "unit": l.unit, "min": l.min, "max": l.max,
                  "vmax": l.vmax, "amax": l.amax, "jmax": l.jmax, "soft_margin": 0.0} for l in self.lens]
        return rows


def load_rig(path: Path | str) -> Rig:
    """Read and validate a rig file; raises :class:`~motionctl.errors.SpecError` naming file, key, line."""
    doc, source = read_toml(path)
    return rig_from_toml(doc, source, Path(path))


def _read_limits(table: Table, linear: bool) -> tuple[float, ...]:
    scale = 1.0 if linear else math.pi / 180.0
    lo = table.number("min", required=True)
    hi = table.number("max", required=True)
    if hi <= lo:
        raise table.error("max", f"max ({hi:g}) must be greater than min ({lo:g})")
    v = table.number("vmax", required=True, positive=True)
    a = table.number("amax", required=True, positive=True)
    j = table.number("jmax", required=True, positive=True)
    margin = table.number("soft_margin", 0.005 if linear else 0.5, minimum=0.0)
    if 2 * margin >= hi - lo:
        raise table.error("soft_margin", "soft margin leaves no range between min and max")
    return tuple(x * scale for x in (lo, hi, v, a, j, margin))


def _check_unit(table: Table, linear: bool, axis: str) -> None:
    expected = "m" if linear else "deg"
    unit = table.string("unit", expected)
    if unit != expected:
        kind = "prismatic (linear)" if linear else "revolute (rotary)"
        raise table.error("unit", f'axis "{axis}" is {kind}: its unit is "{expected}", not "{unit}"')


def rig_from_toml(doc: dict, source: Source, path: Path) -> Rig:
    top = Table(doc, source)
    name = top.string("name", required=True)
    title = top.string("title", name)
    top.string("description", "")
    base_table = top.table("base", required=False)
    base = np.eye(4)
    if base_table is not None:
        base = homogeneous(read_rotation(base_table), base_table.vector("position", 3, (0.0, 0.0, 0.0)))
        base_table.finish()

    kin = top.table("kinematics", required=False)
    link_tables = top.tables("link")
    urdf_limits: dict[str, UrdfJointLimits] = {}
    if kin is not None and kin.has("urdf"):
        urdf = kin.string("urdf", required=True)
        tip = kin.string("tip", required=True)
        urdf_path = path.parent / urdf
        if not os.path.exists(urdf_path):
            raise kin.error("urdf", f'URDF file "{urdf_path}" not found')
        links, urdf_limits, _ = load_urdf(urdf_path, str(urdf_path), tip,
                                          tip_error=lambda message: kin.error("tip", message))
        by_name = {l.name: i for i, l in enumerate(links)}
        for lt in link_tables:
            lname = lt.string("name", required=True)
            if lname not in by_name:
                raise lt.error("name", f'URDF chain has no link "{lname}"{suggest(lname, by_name)}')
            if lt.has("ets"):
                raise lt.error("ets", "links come from the URDF; only capsules may be added here")
            caps = tuple(read_capsule(c) for c in lt.tables("capsules"))
            lt.finish()
            old = links[by_name[lname]]
            links[by_name[lname]] = LinkSpec(old.name, old.pre, old.joint, old.post, old.capsules + caps)
        kin.finish()
    else:
        if kin is not None:
            kin.finish(allowed=("urdf", "tip"))     # a misspelt "urdf" gets its suggestion
            if kin.keys():
                raise kin.error(None, 'missing required key "urdf"')
        if not link_tables:
            raise top.error(None, 'no kinematics: give [kinematics] urdf = "..." and tip, or [[link]] tables '
                            "with ets strings")
        links = []
        for lt in link_tables:
            lname = lt.string("name", required=True)
            ets = lt.string("ets", required=True)
            pre, joint, post = parse_ets(ets, lname, lambda m, lt=lt: lt.error("ets", m))
            caps = tuple(read_capsule(c) for c in lt.tables("capsules"))
            lt.finish()
            if any(l.name == lname for l in links):
                raise lt.error("name", f'duplicate link name "{lname}"')
            if joint is not None:
                driven = next((l.name for l in links if l.joint and l.joint.variable == joint.variable), None)
                if driven is not None:
                    raise lt.error("ets", f'joint "{joint.variable}" already drives link "{driven}": '
                                   "each joint moves one link")
            links.append(LinkSpec(lname, pre, joint, post, caps))
    variables = {l.joint.variable: l.joint for l in links if l.joint is not None}

    axes: list[Axis] = []
    axis_tables: dict[str, Table] = {}
    for at in top.tables("axis", required=True):
        aname = at.string("name", required=True)
        if aname not in variables:
            raise at.error("name", f'the kinematic chain has no joint "{aname}"{suggest(aname, variables)}')
        if any(a.name == aname for a in axes):
            raise at.error("name", f'axis "{aname}" is defined twice')
        linear = variables[aname].prismatic
        _check_unit(at, linear, aname)
        lo, hi, v, a, j, margin = _read_limits(at, linear)
        at.finish()
        axes.append(Axis(aname, linear, lo, hi, v, a, j, margin))
        axis_tables[aname] = at
    missing = [v for v in variables if v not in {a.name for a in axes}]
    if missing:
        raise top.error("axis", f'joint "{missing[0]}" has no [[axis]] with its limits')
    order = [l.joint.variable for l in links if l.joint is not None]
    axes.sort(key=lambda a: order.index(a.name))
    for a in axes:
        urdf = urdf_limits.get(a.name)
        if urdf and urdf.lower is not None and urdf.upper is not None and (
                a.min < urdf.lower - 1e-9 or a.max > urdf.upper + 1e-9):
            bound = "min" if a.min < urdf.lower - 1e-9 else "max"
            raise axis_tables[a.name].error(bound, f'axis "{a.name}" range exceeds the URDF joint limits '
                                            f"[{a.to_file(urdf.lower):g}, {a.to_file(urdf.upper):g}] "
                                            f"{a.file_unit}")

    lens: list[LensAxis] = []
    for lt in top.tables("lens"):
        lname = lt.string("name", required=True, choices=tuple(LENS_UNITS))
        if any(l.name == lname for l in lens):
            raise lt.error("name", f'lens axis "{lname}" is defined twice')
        unit = lt.string("unit", LENS_UNITS[lname])
        if unit != LENS_UNITS[lname]:
            raise lt.error("unit", f'{lname} is measured in "{LENS_UNITS[lname]}", not "{unit}"')
        lo = lt.number("min", required=True, positive=True)
        hi = lt.number("max", required=True, positive=True)
        if hi <= lo:
            raise lt.error("max", f"max ({hi:g}) must be greater than min ({lo:g})")
        v = lt.number("vmax", required=True, positive=True)
        a = lt.number("amax", required=True, positive=True)
        j = lt.number("jmax", required=True, positive=True)
        default = lt.number("default", required=True, minimum=lo, maximum=hi)
        cal = lt.raw("encoder", [[lo, 0.0], [hi, 1.0]])
        if (not isinstance(cal, list) or len(cal) < 2
                or not all(isinstance(p, list) and len(p) == 2 for p in cal)):
            raise lt.error("encoder", "expected an array of [value, encoder 0..1] pairs, at least two")
        points = np.array([[_finite(lt, "encoder", x) for x in p] for p in cal])
        if np.any(np.diff(points[:, 0]) <= 0) or np.any(np.diff(points[:, 1]) <= 0):
            raise lt.error("encoder", "calibration values and encoder positions must both increase")
        if points[0, 0] > lo or points[-1, 0] < hi or points[0, 1] < 0 or points[-1, 1] > 1:
            raise lt.error("encoder", "calibration must cover min..max and stay within encoder 0..1")
        lt.finish()
        lens.append(LensAxis(lname, unit, lo, hi, v, a, j, default, frozen(points)))

    cam = top.table("camera", required=True)
    link_names = [l.name for l in links]
    cam_link = cam.string("link", link_names[-1])
    if cam_link not in link_names:
        raise cam.error("link", f'no link "{cam_link}"{suggest(cam_link, link_names)}')
    mount = homogeneous(read_rotation(cam), cam.vector("position", 3, (0.0, 0.0, 0.0)))
    cam.finish()
    cam_index = link_names.index(cam_link)
    moving = [l.joint.variable for l in links[: cam_index + 1] if l.joint is not None]
    if moving != [a.name for a in axes]:
        raise cam.error("link", f'every axis must move the camera; "{cam_link}" is not after all of them')

    park_table = top.table("park", required=True)
    park = _read_joint_values(park_table, axes, require_all=True)

    ik = top.table("ik", required=False)
    configuration: dict[str, float] = {}
    follow: tuple[str, ...] = ()
    if ik is not None:
        conf = ik.table("configuration", required=False)
        if conf is not None:
            for key, value in conf.items():
                if key not in {a.name for a in axes}:
                    raise conf.error(key, f'unknown axis "{key}"{suggest(key, [a.name for a in axes])}')
                if not isinstance(value, str) or value not in SIGNS:
                    raise conf.error(key, 'expected "positive" or "negative"')
                configuration[key] = SIGNS[value]
        follow = ik.strings("follow")
        for f in follow:
            if f not in {a.name for a in axes}:
                raise ik.error("follow", f'unknown axis "{f}"{suggest(f, [a.name for a in axes])}')
        ik.finish()
    for key, sign in configuration.items():
        axis = axes[[a.name for a in axes].index(key)]
        value = park[[a.name for a in axes].index(key)]
        if (value if axis.linear else math.sin(value)) * sign <= 0:
            raise park_table.error(key, f'park pose puts "{key}" outside its pinned configuration')

    col = top.table("collision", required=False)
    self_margin = 0.01
    ignore: set[frozenset[str]] = set()
    if col is not None:
        self_margin = col.number("self_margin", 0.01, minimum=0.0)
        pairs = col.raw("ignore", [])
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(n, str) for n in p) for p in pairs):
            raise col.error("ignore", 'expected an array of link-name pairs, e.g. [["base", "shoulder"]]')
        for p in pairs:
            for n in p:
                if n not in link_names:
                    raise col.error("ignore", f'no link "{n}"{suggest(n, link_names)}')
            ignore.add(frozenset(p))
        col.finish()

    hardware = _read_hardware(top.table("hardware", required=False), axes, lens, path)
    top.finish()
    return Rig(name=name, title=title, file=source.file, base=frozen(base), links=tuple(links),
               axes=tuple(axes), lens=tuple(lens), camera_link=cam_index, camera_mount=frozen(mount),
               park=frozen(park), configuration=MappingProxyType(configuration), follow=follow,
               self_margin_m=self_margin, ignore_pairs=frozenset(ignore), hardware=hardware)


def _finite(table: Table, name: str, value: object) -> float:
    return check_number(value, table.error, name)


def _read_joint_values(table: Table, axes: list[Axis] | tuple[Axis, ...], *,
                       require_all: bool) -> NDArray[np.float64]:
    names = [a.name for a in axes]
    values = np.full(len(axes), np.nan)
    for key, value in table.items():
        if key not in names:
            raise table.error(key, f'unknown axis "{key}"{suggest(key, names)}')
        axis = axes[names.index(key)]
        number = _finite(table, key, value)
        values[names.index(key)] = number if axis.linear else math.radians(number)
    if require_all and np.isnan(values).any():
        raise table.error(None, f'missing axis "{names[int(np.flatnonzero(np.isnan(values))[0])]}"')
    return values


def _read_hardware(hw: Table | None, axes, lens, path: Path) -> HardwareBinding | None:
    if hw is None:
        return None
    if hw.has("group"):
        return _read_groups(hw, axes, lens, path)
    return _read_binding(hw, axes, lens, path, _servo_rate(hw))


def _servo_rate(hw: Table) -> int:
    rate = hw.integer("servo_rate_hz", 500, minimum=1)
    if rate not in (250, 500, 1000):
        raise hw.error("servo_rate_hz", f"servo rate must be 250, 500 or 1000 Hz, got {rate}")
    return rate


def _read_groups(hw: Table, axes, lens, path: Path) -> HardwareBinding:
    """``[[hardware.group]]``: each group of axes on its own controller; every arm axis in exactly one."""
    rate = _servo_rate(hw)
    groups: list[HardwareBinding] = []
    owner: dict[str, str] = {}
    for table in hw.tables("group", required=True):
        name = table.string("name", required=True)
        if name in {g.name for g in groups} or not name.isidentifier():
            raise table.error("name", f'"{name}" must be a unique name of letters, digits and _')
        group = _read_binding(table, axes, lens, path, rate, every_axis=False, allowed={"name"})
        for axis in group.address:
            if axis in owner:
                raise table.error("address", f'axis "{axis}" is already in group "{owner[axis]}"')
            owner[axis] = name
        groups.append(replace(group, name=name))
    absent = [a.name for a in axes if a.name not in owner]
    if absent:
        raise hw.error("group", f'axis "{absent[0]}" is in no [[hardware.group]]')
    hw.finish()
    address = {k: v for g in groups for k, v in g.address.items()}
    counts = {k: v for g in groups for k, v in g.counts.items()}
    return HardwareBinding("group://" + ",".join(g.name for g in groups), rate, MappingProxyType(address),
                           MappingProxyType(counts), None, tuple(groups))


def _read_binding(hw: Table, axes, lens, path: Path, rate: int, *, every_axis: bool = True,
                  allowed: set[str] | None = None) -> HardwareBinding:
    transport = hw.string("transport", required=True)
    if "://" not in transport:
        raise hw.error("transport", f'"{transport}" is not a transport URL such as "serial:///dev/ttyUSB0" '
                       'or "can://virtual/moco"')
    names = [a.name for a in axes] + [l.name for l in lens]
    address: dict[str, int] = {}
    table = hw.table("address", required=True)
    for key, value in table.items():
        if key not in names:
            raise table.error(key, f'unknown axis "{key}"{suggest(key, names)}')
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 127:
            raise table.error(key, "expected a drive address 1..127")
        if value in address.values():
            raise table.error(key, f"address {value} is used twice")
        address[key] = value
    absent = [n for n in (a.name for a in axes) if n not in address]
    if absent and every_axis:
        raise table.error(None, f'axis "{absent[0]}" has no drive address')
    counts: dict[str, float] = {}
    ct = hw.table("counts", required=False)
    if ct is not None:
        for key, value in ct.items():
            if key not in names:
                raise ct.error(key, f'unknown axis "{key}"{suggest(key, names)}')
            counts[key] = _finite(ct, key, value)
            if counts[key] <= 0:
                raise ct.error(key, "must be greater than 0")
    eds = hw.string("eds")
    if eds is not None and not (path.parent / eds).is_file():
        raise hw.error("eds", f'EDS file "{path.parent / eds}" not found')
    if every_axis:
        hw.finish()
    else:
        hw.finish(allowed={"transport", "address", "counts", "eds"} | (allowed or set()))
    return HardwareBinding(transport, rate, MappingProxyType(address), MappingProxyType(counts),
                           str(path.parent / eds) if eds else None)
