"""Convex solid shapes of the set and of the rig's links, as immutable models in SI units.

Every shape is convex so that the clearance between a link capsule and a shape is the minimum of a
convex function along the capsule's segment (see ``motionctl/collision.py``).  Concave set pieces are
built from several shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from motionctl.rotations import frozen, ptr_to_matrix
from motionctl.spec.source import Table

SHAPE_KINDS = ("box", "cylinder", "sphere", "capsule", "plane")


@dataclass(frozen=True, eq=False)
class Box:
    """Oriented box: centre, rotation (columns are the box axes in the parent frame), half sizes."""

    center: NDArray[np.float64]
    rotation: NDArray[np.float64]
    half: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Cylinder:
    """Finite solid cylinder around the rotation's third column (vertical unless rotated)."""

    center: NDArray[np.float64]
    rotation: NDArray[np.float64]
    radius: float
    half_height: float


@dataclass(frozen=True, eq=False)
class Sphere:
    center: NDArray[np.float64]
    radius: float


@dataclass(frozen=True, eq=False)
class Capsule:
    """All points within ``radius`` of the segment ``a``-``b``: the collision model of rig links."""

    a: NDArray[np.float64]
    b: NDArray[np.float64]
    radius: float


@dataclass(frozen=True, eq=False)
class Plane:
    """Half-space: the solid side is where ``(x - point) . normal < 0`` (a floor has normal +Z)."""

    point: NDArray[np.float64]
    normal: NDArray[np.float64]


Shape = Box | Cylinder | Sphere | Capsule | Plane


def read_rotation(table: Table, name: str = "rotation") -> NDArray[np.float64]:
    """``rotation = { pan = deg, tilt = deg, roll = deg }`` (each optional) -> 3x3 matrix."""
    sub = table.table(name, required=False)
    if sub is None:
        return np.eye(3)
    pan = sub.number("pan", 0.0)
    tilt = sub.number("tilt", 0.0)
    roll = sub.number("roll", 0.0)
    sub.finish()
    return ptr_to_matrix(math.radians(pan), math.radians(tilt), math.radians(roll))


def read_capsule(table: Table) -> Capsule:
    a = np.array(table.vector("a", 3, required=True))
    b = np.array(table.vector("b", 3, required=True))
    radius = table.number("radius", required=True, positive=True)
    table.finish()
    return Capsule(frozen(a), frozen(b), float(radius))


def read_shape(table: Table, extra: tuple[str, ...] = ()) -> Shape:
    """Read one shape; ``extra`` names keys of the surrounding table the caller reads itself."""
    kind = table.string("shape", required=True, choices=SHAPE_KINDS)
    shape: Shape
    if kind == "box":
        size = np.array(table.vector("size", 3, required=True))
        if np.any(size <= 0):
            raise table.error("size", "every size must be greater than 0")
        center = np.array(table.vector("position", 3, required=True))
        shape = Box(frozen(center), frozen(read_rotation(table)), frozen(size / 2.0))
    elif kind == "cylinder":
        center = np.array(table.vector("position", 3, required=True))
        radius = table.number("radius", required=True, positive=True)
        height = table.number("height", required=True, positive=True)
        shape = Cylinder(frozen(center), frozen(read_rotation(table)), float(radius), float(height) / 2.0)
    elif kind == "sphere":
        center = np.array(table.vector("position", 3, required=True))
        shape = Sphere(frozen(center), float(table.number("radius", required=True, positive=True)))
    elif kind == "capsule":
        a = np.array(table.vector("a", 3, required=True))
        b = np.array(table.vector("b", 3, required=True))
        shape = Capsule(frozen(a), frozen(b), float(table.number("radius", required=True, positive=True)))
    else:
        point = np.array(table.vector("point", 3, (0.0, 0.0, 0.0)))
        normal = np.array(table.vector("normal", 3, (0.0, 0.0, 1.0)))
        scale = float(np.max(np.abs(normal)))          # divide first: |[0, 0, 1e200]| overflows to inf
        direction = normal / scale if scale > 0 else normal
        length = scale * float(np.linalg.norm(direction))
        if length < 1e-9:
            raise table.error("normal", "must not be the zero vector")
        shape = Plane(frozen(point), frozen(direction / np.linalg.norm(direction)))
    for name in extra:
        table.raw(name)
    table.finish()
    return shape
