"""The move library: every move file with its check verdict (checked in the background), Enter loads."""

from __future__ import annotations

from textwrap import shorten

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from motionctl.tui.keys import LIBRARY, bindings
from motionctl.tui.library import Entry, Verdict, shown
from motionctl.tui.screens.base import OperatorScreen

VERDICT_STYLE = {Verdict.LEGAL: "bold green", Verdict.ILLEGAL: "bold red", Verdict.BAD_FILE: "bold magenta",
                 Verdict.UNCHECKED: "dim"}


class LibraryScreen(OperatorScreen):
    BINDINGS = bindings(LIBRARY)
    DEFAULT_CSS = """
    LibraryScreen #moves { height: 1fr; border: round $primary; }
    LibraryScreen #detail { height: 4; border: round $secondary; padding: 0 1; }
    LibraryScreen #status { height: 2; dock: bottom; }
    """

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="moves", cursor_type="row", zebra_stripes=True)
        yield Static(id="detail")

    def on_mount(self) -> None:
        self.query_one("#moves").border_title = "moves"
        table = self.query_one("#moves", DataTable)
        table.add_column("move", key="move")
        table.add_column("folder", key="folder")
        table.add_column("verdict", key="verdict")
        table.add_column("summary", key="summary")
        self.fill()
        self.check_all()

    def fill(self) -> None:
        table = self.query_one("#moves", DataTable)
        table.clear()
        for entry in self.controller.library.entries():
            table.add_row(entry.path.name, entry.path.parent.name, *self._verdict_cells(entry), key=str(entry.path))

    @staticmethod
    def _verdict_cells(entry: Entry) -> tuple[Text, str]:
        summary = shorten(entry.summary, 90, placeholder=" …") if entry.summary else ""    # at a word
        return Text(entry.verdict.value, VERDICT_STYLE[entry.verdict]), summary

    @work(thread=True, exclusive=True, group="library-checks")
    def check_all(self) -> None:
        """Plan and check every move off the UI thread; each verdict appears as it is known."""
        for entry in self.controller.library.entries():
            checked = self.controller.library.check(entry.path)
            self.app.call_from_thread(self._update_row, checked)

    def _update_row(self, entry: Entry) -> None:
        table = self.query_one("#moves", DataTable)
        verdict, summary = self._verdict_cells(entry)
        try:
            table.update_cell(str(entry.path), "verdict", verdict, update_width=True)
            table.update_cell(str(entry.path), "summary", summary, update_width=True)
        except (CellDoesNotExist, RowDoesNotExist):   # the row went away (a rescan): nothing to update
            return
        self._show_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _selected(self) -> Entry | None:
        table = self.query_one("#moves", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((e for e in self.controller.library.entries() if str(e.path) == key), None)

    def _show_detail(self) -> None:
        entry = self._selected()
        if entry is None:
            return
        text = Text(f"{shown(entry.path)}\n", "bold")
        text.append(entry.verdict.value, VERDICT_STYLE[entry.verdict])
        text.append(f": {entry.summary}" if entry.summary else "")
        self.query_one("#detail", Static).update(text)

    def action_load(self) -> None:
        entry = self._selected()
        if entry is not None:
            self.app.load_move(entry.path)

    def action_recheck(self) -> None:
        self.controller.library.rescan()
        self.controller.library.invalidate()
        self.fill()
        self.check_all()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_load()
