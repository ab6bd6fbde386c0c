"""`?`: every key, screen by screen, from the same table the bindings are built from."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from motionctl.tui.keys import ESTOP, SCREENS, display
from motionctl.tui.widgets import StatusLine


def key_table() -> Table:
    table = Table(box=None, padding=(0, 2), expand=True)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("does")
    for scope, keys in SCREENS.items():
        table.add_row(Text(scope.upper(), "bold underline"), "")
        for key in keys:
            style = "bold red" if key is ESTOP else ""
            table.add_row(Text(display(key.key), style or "bold cyan"), Text(key.help, style))
        table.add_row("", "")
    table.add_row(Text("hold", "bold"), "jog keys move the rig only while held (auto-repeat); release = jerk-limited stop")
    return table


class HelpScreen(ModalScreen):
    """Every key.  Esc, q or ? closes it; E-stop still works here (it is a priority binding of the app)."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 96; height: 85%; border: thick $accent; background: $surface; padding: 0 1; }
    HelpScreen > StatusLine { height: 2; dock: bottom; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("motionctl keys   (Esc closes)\n", "bold"))
            yield Static(key_table(), id="keys")
        # The rig's state, move, timecode and faults stay live while the keys are read (E-stop works here).
        yield StatusLine(id="status")

    def action_dismiss(self) -> None:
        self.dismiss()
