"""Jog and teach: per-axis or camera-space jogs while a key is held, then store the pose as a key."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from motionctl.errors import MotionctlError
from motionctl.runtime.jog import JOG_SPEED_FRACTION, CameraJog, JogRequest
from motionctl.tui.keys import JOG, bindings
from motionctl.tui.library import shown
from motionctl.tui.screens.base import OperatorScreen
from motionctl.tui.telemetry import Telemetry
from motionctl.tui.widgets import limit_bar


class JogScreen(OperatorScreen):
    BINDINGS = bindings(JOG)
    DEFAULT_CSS = """
    JogScreen #jog { height: 1fr; border: round $primary; padding: 0 1; }
    JogScreen #teach { height: auto; border: round $secondary; padding: 0 1; }
    JogScreen #status { height: 2; dock: bottom; }
    """

    camera_mode = False
    selected = 0

    def compose_body(self) -> ComposeResult:
        with Vertical():
            yield Static(id="jog")
            yield Static(id="teach")

    def on_mount(self) -> None:
        self.query_one("#jog").border_title = "jog"
        self.query_one("#teach").border_title = "teach"

    def show(self, t: Telemetry) -> None:
        mode = "CAMERA space" if self.camera_mode else "per AXIS"
        head = Text(f"mode {mode} (m switches)   speed {JOG_SPEED_FRACTION:.0%} of each axis's limit, "
                    "jerk-limited; the rig moves only while a key is held\n", "bold")
        if self.camera_mode:
            head.append("↑/↓ dolly in/out   ←/→ truck   PgUp/PgDn or u/n pedestal   h/l pan   i/j tilt\n")
        else:
            head.append("↑/↓ pick an axis   ←/→ jog it down/up\n")
        table = Table(box=None, expand=True, padding=(0, 1))
        for column in ("", "axis", "position", "range", "drive"):
            table.add_column(column)
        for i, row in enumerate(t.axes):
            mark = "▶" if (i == self.selected and not self.camera_mode) else " "
            table.add_row(mark, Text(row.name, "bold" if mark == "▶" else ""), f"{row.position:9.3f} {row.unit}",
                          limit_bar(row.fraction, 20), row.status)
        body = Table.grid(expand=True)
        body.add_row(head)
        body.add_row(table if t.connected else Text("No rig connected: load a move first (2, Enter).", "dim"))
        if t.jog_blocked:
            body.add_row(Text(f"held back: {t.jog_blocked}", "bold yellow"))
        self.query_one("#jog", Static).update(body)
        plan = self.controller.plan
        cursor = self.controller.frame_cursor
        teach = Text("k stores the measured pose as a key ", "bold")
        if plan is not None:
            teach.append(f"at frame {cursor} ({plan.move.timecode_at(min(cursor, 10 ** 9))}) of {plan.move.name} "
                         f"and saves {shown(plan.move.file)}; ,/. move the frame cursor by one, </> by 24")
        else:
            teach.append("(load a move first)")
        self.query_one("#teach", Static).update(teach)

    # -- actions --------------------------------------------------------------------------------------
    def _jog(self, request: JogRequest) -> None:
        try:
            self.controller.jog(request)
        except MotionctlError as exc:
            self.controller.say(str(exc), "warn")

    def _axis_count(self) -> int:
        plan = self.controller.plan
        return len(plan.rig.axes) + len(plan.rig.lens) if plan is not None else 0

    def action_mode(self) -> None:
        self.camera_mode = not self.camera_mode

    def action_up(self) -> None:
        if self.camera_mode:
            self._jog(JogRequest(+1, camera=CameraJog.DOLLY))
        elif self._axis_count():
            self.selected = (self.selected - 1) % self._axis_count()

    def action_down(self) -> None:
        if self.camera_mode:
            self._jog(JogRequest(-1, camera=CameraJog.DOLLY))
        elif self._axis_count():
            self.selected = (self.selected + 1) % self._axis_count()

    def action_left(self) -> None:
        if self.camera_mode:
            self._jog(JogRequest(-1, camera=CameraJog.TRUCK))
        elif self._axis_count():
            self._jog(JogRequest(-1, axis=self.selected))

    def action_right(self) -> None:
        if self.camera_mode:
            self._jog(JogRequest(+1, camera=CameraJog.TRUCK))
        elif self._axis_count():
            self._jog(JogRequest(+1, axis=self.selected))

    def _camera(self, kind: CameraJog, direction: int) -> None:
        if not self.camera_mode:
            self.controller.say("that key jogs in camera mode: press m first", "warn")
            return
        self._jog(JogRequest(direction, camera=kind))

    def action_pedestal(self, direction: int) -> None:
        self._camera(CameraJog.PEDESTAL, direction)

    def action_pan(self, direction: int) -> None:
        self._camera(CameraJog.PAN, direction)

    def action_tilt(self, direction: int) -> None:
        self._camera(CameraJog.TILT, direction)

    def action_cursor(self, step: int) -> None:
        plan = self.controller.plan
        if plan is not None:
            self.controller.frame_cursor = max(0, min(plan.report.frames - 1, self.controller.frame_cursor + step))

    def action_teach(self) -> None:
        self.controller.teach()
