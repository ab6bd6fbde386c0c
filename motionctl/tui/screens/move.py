"""The loaded move: its keys, per-axis position and velocity against frames with the limits and the
violations marked, the frame cursor, and the minimum clearance and where."""

from __future__ import annotations

import math
from textwrap import shorten

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from motionctl.planner import Plan
from motionctl.tui.keys import MOVE, bindings
from motionctl.tui.plot import chart_for
from motionctl.tui.screens.base import OperatorScreen
from motionctl.tui.telemetry import Telemetry


def per_frame(plan: Plan, column: int) -> tuple[np.ndarray, np.ndarray, float, float, float, str]:
    """Position and velocity of one column at each frame, its range and velocity limit, display unit."""
    traj, rig = plan.trajectory, plan.rig
    fps = float(plan.move.rate.fps)
    ticks = np.minimum((np.arange(plan.report.frames) / fps * plan.rate_hz).round().astype(int), len(traj) - 1)
    n = len(rig.axes)
    if column < n:
        axis = rig.axes[column]
        scale = 1.0 if axis.linear else 180.0 / math.pi
        return (traj.q[ticks, column] * scale, traj.qd[ticks, column] * scale, axis.min * scale, axis.max * scale,
                axis.vmax * scale, "m" if axis.linear else "deg")
    lens = rig.lens[column - n]
    values = traj.lens[:, column - n]
    velocity = np.gradient(values, 1.0 / plan.rate_hz)
    return values[ticks], velocity[ticks], lens.min, lens.max, lens.vmax, lens.unit


class MoveScreen(OperatorScreen):
    BINDINGS = bindings(MOVE)
    DEFAULT_CSS = """
    MoveScreen #summary { height: auto; border: round $primary; padding: 0 1; }
    MoveScreen #keys { width: 2fr; border: round $secondary; }
    MoveScreen #curves { width: 3fr; border: round $secondary; padding: 0 1; }
    MoveScreen #status { height: 2; dock: bottom; }
    """

    axis = 0

    def compose_body(self) -> ComposeResult:
        with Vertical():
            yield Static(id="summary")
            with Horizontal():
                yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)
                yield Static(id="curves")

    def on_mount(self) -> None:
        self.query_one("#summary").border_title = "check"
        self.query_one("#keys").border_title = "keys"
        self.query_one("#curves").border_title = "curves"
        self.query_one("#keys", DataTable).add_columns("#", "frame", "timecode", "kind", "pose", "hold", "label")
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    @property
    def plan(self) -> Plan | None:
        """The last move selected in the library (an illegal one too: to see where it fails)."""
        return self.controller.shown_plan or self.controller.plan

    def reload(self) -> None:
        plan = self.plan
        summary = self.query_one("#summary", Static)
        table = self.query_one("#keys", DataTable)
        table.clear()
        if plan is None:
            summary.update(Text("No move loaded: press 2, highlight a move, Enter.", "dim"))
            self.query_one("#curves", Static).update("")
            return
        report = plan.report
        text = Text(f"{plan.move.name}  ", "bold")
        text.append("LEGAL" if report.ok else "ILLEGAL", "bold green" if report.ok else "bold red")
        text.append(f"   {report.duration_s:.2f} s, {report.frames} frames at {report.fps} from {report.start}, "
                    f"servo {plan.rate_hz} Hz\n")
        where = report.extra.get("min_clearance_at")
        if where:
            text.append(f"min clearance {1000 * report.extra['min_clearance_m']:.0f} mm: {where['link']} to "
                        f"{where['other']} at frame {where['frame']} ({where['timecode']}), needs "
                        f"{1000 * where['required_m']:.0f} mm\n")
        for violation in report.violations[:4]:
            text.append(f"✗ {violation.message}\n", "red")
        summary.update(text)
        for key in report.keys:
            pose = (", ".join(f"{k} {v:.3g}" for k, v in key.camera.items()) if key.kind == "camera"
                    else ", ".join(f"{k} {v:.3g}" for k, v in key.joints.items()))
            hold = next((k.hold for k in plan.move.keys if k.index == key.index), 0)
            pose = shorten(pose, 60, placeholder=" …") if pose else ""                       # at a word
            table.add_row(str(key.index), str(key.frame), key.timecode, key.kind, pose, str(hold), key.label)
        self.draw()

    def draw(self) -> None:
        plan = self.plan
        if plan is None or plan.trajectory is None:
            return
        names = [a.name for a in plan.rig.axes] + [f"lens {l.name}" for l in plan.rig.lens]
        self.axis %= len(names)
        position, velocity, lo, hi, vmax, unit = per_frame(plan, self.axis)
        subjects = [a.name for a in plan.rig.axes] + [f"lens.{l.name}" for l in plan.rig.lens]
        spans = [(v.first_frame, v.last_frame) for v in plan.report.violations if v.subject == subjects[self.axis]]
        spans += [(v.first_frame, v.last_frame) for v in plan.report.violations if " vs " in v.subject]
        curves = self.query_one("#curves", Static)
        width = max(20, (curves.size.width or 70) - 12)
        cursor = self.controller.frame_cursor
        top = chart_for([position], ["cyan"], width, 6, limits=[lo, hi], spans=spans, cursor=cursor,
                        frames=plan.report.frames)
        bottom = chart_for([velocity], ["magenta"], width, 5, limits=[-vmax, vmax], spans=spans, cursor=cursor,
                           frames=plan.report.frames)
        text = Text(f"{names[self.axis]}  (↑/↓ other axes)   cursor frame {cursor} "
                    f"{plan.move.timecode_at(min(cursor, plan.report.frames - 1))}\n", "bold")
        text += top.render("position", unit) + Text("\n")
        text += bottom.render("velocity", f"{unit}/s")
        text.append("\nred lines: limits; red background: frames with a violation", "dim")
        curves.update(text)

    def show(self, telemetry: Telemetry) -> None:
        return None

    def action_axis(self, step: int) -> None:
        self.axis += step
        self.draw()

    def action_cursor(self, step: int) -> None:
        plan = self.plan
        if plan is None:
            return
        self.controller.frame_cursor = int(np.clip(self.controller.frame_cursor + step, 0, plan.report.frames - 1))
        self.draw()

    def action_cursor_key(self, step: int) -> None:
        plan = self.plan
        if plan is None:
            return
        frames = sorted({k.frame for k in plan.move.keys} | {k.frame + k.hold for k in plan.move.keys})
        now = self.controller.frame_cursor
        after = [f for f in frames if (f > now if step > 0 else f < now)]
        if after:
            self.controller.frame_cursor = after[0] if step > 0 else after[-1]
            self.draw()
