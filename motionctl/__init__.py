"""motionctl: an open robotic motion-control rig sequencer for film and virtual production.

Layers (imports point down only): cli/tui/preview -> runtime -> planner/vcam -> kinematics, collision,
timecode -> spec -> errors.  See ``docs/architecture.md``.

The Python API for pipelines::

    import motionctl
    result = motionctl.plan("moves/push_in.toml", rate_hz=1000)
    print(result.ok, result.report.to_dict()["min_clearance_m"])

Heavy modules are imported on first use, so ``import motionctl`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from motionctl.planner.plan import Plan
    from motionctl.spec.move import Move, Scene
    from motionctl.spec.rig import Rig
    from motionctl.spec.stage import Stage


def load_scene(path: str | Path) -> Scene:
    """Load a move file with the rig and stage it names (see ``docs/formats.md``)."""
    from motionctl.spec import load_scene as _load

    return _load(path)


def plan(move: Move | str | Path, rig: Rig | None = None, stage: Stage | None = None,
         rate_hz: int | None = None, *, retime: str = "none", progress=None) -> Plan:
    """Plan and check a move: ``plan(move, rig, stage, rate_hz)`` or ``plan("moves/x.toml")``.

    Returns a :class:`motionctl.planner.Plan` with ``.ok``, ``.report`` (a CheckReport; ``to_dict()`` is
    the JSON of ``motionctl check --json``) and ``.trajectory`` (servo-rate arrays).  Pure: no files are
    written, nothing global changes, the same inputs give identical results.
    """
    from motionctl.planner.plan import plan as _plan

    if isinstance(move, (str, Path)):
        scene = load_scene(move)
        move, rig, stage = scene.move, rig or scene.rig, stage if stage is not None else scene.stage
    if rig is None:
        raise TypeError("plan(move, rig, ...) needs the rig when given a Move object")
    return _plan(move, rig, stage, rate_hz, retime=retime, progress=progress)


__all__ = ["__version__", "load_scene", "plan"]
