"""What every operator screen has: the status line (state, move, timecode, how to E-stop) and a footer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer

from motionctl.tui.telemetry import Telemetry
from motionctl.tui.widgets import StatusLine

if TYPE_CHECKING:
    from motionctl.tui.app import MotionctlApp
    from motionctl.tui.controller import RigController


class OperatorScreen(Screen):
    """A screen that shows telemetry.  Subclasses compose their body and override :meth:`show`."""

    app: MotionctlApp

    @property
    def controller(self) -> RigController:
        return self.app.controller

    def compose_body(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        yield from self.compose_body()
        yield StatusLine(id="status")
        yield Footer()

    def refresh_telemetry(self, telemetry: Telemetry, last_message: str) -> None:
        try:
            status = self.query_one(StatusLine)
        except NoMatches:           # not composed yet (or being torn down): nothing to draw on
            return
        status.show(telemetry, last_message)
        self.show(telemetry)

    def show(self, telemetry: Telemetry) -> None:
        return None
