"""``check``: the verdict on a move, as a :class:`CheckReport`."""

from __future__ import annotations

from motionctl.planner.keys import key_pose, solve_keys
from motionctl.planner.report import CheckReport
from motionctl.spec.move import Scene


def check_keys(scene: Scene) -> CheckReport:
    """Solve every key and report unreachable keys and joint/lens limits broken at keys."""
    move, rig = scene.move, scene.rig
    solved, violations = solve_keys(scene)
    return CheckReport(
        move=move.name, file=move.file, rig=rig.name, stage=scene.stage.name if scene.stage else None,
        fps=move.rate.label, start=move.start.label, frames=move.last_frame + 1, duration_s=move.duration_s,
        keys=[key_pose(scene, s) for s in solved], violations=violations, axes=rig.axis_table())
