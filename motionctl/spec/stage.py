"""Stage files (``rigs/stages/*.toml``) -> a validated, immutable :class:`Stage`.

A stage is the set around the rig: obstacles (floor, LED wall facets, truss, set pieces) that no link may
come closer to than the stage margin, keep-out zones for people that carry their own, larger clearance,
and the rigid transform from the stage frame to the game engine's world.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from motionctl.rotations import frozen, homogeneous
from motionctl.spec.shapes import Shape, read_rotation, read_shape
from motionctl.spec.source import Source, Table, read_toml


class ZoneKind(Enum):
    OBSTACLE = "obstacle"
    KEEPOUT = "keepout"


@dataclass(frozen=True, eq=False)
class Zone:
    """A solid of the set or a keep-out zone, with the clearance every rig link must keep from it."""

    name: str
    kind: ZoneKind
    shape: Shape
    clearance_m: float
    ignore_links: tuple[str, ...] = ()   # links allowed to touch it (e.g. the track carriage on the floor)
    note: str = ""


@dataclass(frozen=True, eq=False)
class Stage:
    name: str
    title: str
    file: str
    zones: tuple[Zone, ...]
    engine_from_stage: NDArray[np.float64]   # 4x4: stage point -> game-engine world point (metres)
    engine_units_per_metre: float

    @property
    def obstacles(self) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.kind is ZoneKind.OBSTACLE)

    @property
    def keepouts(self) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.kind is ZoneKind.KEEPOUT)


def load_stage(path: Path | str) -> Stage:
    doc, source = read_toml(path)
    return stage_from_toml(doc, source)


def stage_from_toml(doc: dict, source: Source) -> Stage:
    top = Table(doc, source)
    name = top.string("name", required=True)
    title = top.string("title", name)
    top.string("description", "")
    margin = top.number("margin", 0.05, minimum=0.0)
    zones: list[Zone] = []
    for kind, key in ((ZoneKind.OBSTACLE, "obstacle"), (ZoneKind.KEEPOUT, "keepout")):
        for table in top.tables(key):
            zname = table.string("name", required=True)
            if any(z.name == zname for z in zones):
                raise table.error("name", f'"{zname}" is used twice; zone names must be unique')
            if kind is ZoneKind.KEEPOUT:
                clearance = table.number("clearance", required=True, minimum=0.0)
            else:
                clearance = table.number("clearance", margin, minimum=0.0)
            ignore = table.strings("ignore_links")
            note = table.string("note", "")
            shape = read_shape(table, extra=("name", "clearance", "ignore_links", "note"))
            zones.append(Zone(zname, kind, shape, float(clearance), ignore, note or ""))
    if not any(z.kind is ZoneKind.OBSTACLE for z in zones):
        raise top.error("obstacle", "a stage needs at least one [[obstacle]] (the floor, at least)")
    engine = top.table("engine", required=False)
    transform = np.eye(4)
    units = 1.0
    if engine is not None:
        transform = homogeneous(read_rotation(engine), engine.vector("origin", 3, (0.0, 0.0, 0.0)))
        units = engine.number("units_per_metre", 1.0, positive=True)
        engine.string("name", "")
        engine.finish()
    top.finish()
    return Stage(name, title, source.file, tuple(zones), frozen(transform), float(units))
