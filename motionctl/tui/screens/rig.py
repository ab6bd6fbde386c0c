"""The home screen: every axis, transport, timecode, the takes and the log (faults explained)."""

from __future__ import annotations

from textwrap import shorten

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, RichLog

from motionctl.runtime.takes import take_headers
from motionctl.tui.screens.base import OperatorScreen
from motionctl.tui.telemetry import Telemetry
from motionctl.tui.widgets import RigPanel, TimecodePanel, TransportPanel

LEVEL_STYLE = {"error": "bold red", "warn": "yellow", "info": ""}


class RigScreen(OperatorScreen):
    DEFAULT_CSS = """
    RigScreen #rig { height: auto; min-height: 8; border: round $primary; padding: 0 1; }
    RigScreen #middle { height: 5; }
    RigScreen #transport, RigScreen #timecode { width: 1fr; border: round $secondary; padding: 0 1; }
    RigScreen #bottom { height: 1fr; }
    RigScreen #takes { width: 2fr; border: round $secondary; }
    RigScreen #log { width: 3fr; border: round $secondary; }
    RigScreen #status { height: 2; dock: bottom; }
    """

    def compose_body(self) -> ComposeResult:
        with Vertical():
            yield RigPanel(id="rig")
            with Horizontal(id="middle"):
                yield TransportPanel(id="transport")
                yield TimecodePanel(id="timecode")
            with Horizontal(id="bottom"):
                yield DataTable(id="takes", cursor_type="row", zebra_stripes=True)
                yield RichLog(id="log", wrap=True, markup=False, max_lines=1000)

    def on_mount(self) -> None:
        self.query_one("#rig").border_title = "rig"
        self.query_one("#takes").border_title = "takes"
        self.query_one("#log").border_title = "log"
        table = self.query_one("#takes", DataTable)
        table.add_columns("take", "move", "ended", "s", "faults")
        self.reload_takes()

    def show(self, telemetry: Telemetry) -> None:
        self.query_one(RigPanel).show(telemetry)
        self.query_one(TransportPanel).show(telemetry)
        self.query_one(TimecodePanel).show(telemetry)

    def add_log(self, level: str, text: str) -> None:
        self.query_one("#log", RichLog).write(Text(text, LEVEL_STYLE.get(level, "")))

    @work(thread=True, exclusive=True, group="takes")
    def reload_takes(self) -> None:
        """Read the takes' headers off the UI thread, then fill the table."""
        headers = take_headers(self.controller.settings.takes_dir)
        self.app.call_from_thread(self._fill_takes, headers)

    def _fill_takes(self, headers) -> None:
        table = self.query_one("#takes", DataTable)
        table.clear()
        for path, meta in reversed(headers):
            summary = meta.get("summary") or {}
            complete = "finished" in meta
            ended = summary.get("state", "?") if complete else "cut short"
            faults = "; ".join(summary.get("faults", [])) if complete else ""
            run_s = summary.get("ticks", 0) / max(meta.get("rate_hz", 1), 1)
            table.add_row(path.name, str(meta.get("move", "?")), Text(ended, "green" if ended == "done" else "red"),
                          f"{run_s:.1f}", shorten(faults, 40, placeholder=" …") if faults else "")
