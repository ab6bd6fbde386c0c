"""``motionctl tui --stage FILE``: the operator station of a stage network, in the terminal (Textual).

One row per rig (state, move, verdict, timecode, owner, fault) and the rigs' events; the same keys as
the single-rig UI, acting on every rig of the stage as one group: g go to start, r run, s stop, x reset,
t start on the stage's timecode, space E-stop (a priority binding: every rig, at once).  The app never
waits on the network: :class:`~motionctl.stage.operator.StageOperator` does, on its own threads, and a
10 Hz timer draws what it holds.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, RichLog, Static

from motionctl.stage.operator import StageOperator
from motionctl.tui.keys import ESTOP, Key, bindings

REFRESH_S = 0.1
COLUMNS = ("rig", "state", "move", "verdict", "timecode", "owner", "fault")

STAGE: tuple[Key, ...] = (
    ESTOP,
    Key("g", "go", "go to start", "every rig to its start, as one group (their moves checked together)"),
    Key("r", "run", "run", "run every rig (on the stage's timecode: armed, this station the master)"),
    Key("s", "stop", "stop", "controlled stop of every rig"),
    Key("x", "reset", "reset", "reset every rig's latched fault or E-stop"),
    Key("t", "timecode", "timecode", "toggle the start: together at once / on the stage's timecode"),
    Key("q", "quit", "quit", "leave the stage (a rig this station moved stops in a controlled way)"),
)


class StageApp(App):
    TITLE = "motionctl stage"
    BINDINGS = bindings(STAGE, priority_estop=True)
    CSS = "#rigs { height: auto; max-height: 50%; } #mode { height: 1; }"

    def __init__(self, operator: StageOperator) -> None:
        super().__init__()
        self.operator = operator
        self.refreshes = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="mode")
        yield DataTable(id="rigs", cursor_type="row")
        yield RichLog(id="log", max_lines=2000, wrap=True, markup=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"stage {self.operator.net.stage} as {self.operator.station.name}"
        table = self.query_one("#rigs", DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        for rig in self.operator.rigs:
            table.add_row(rig, "?", "", "", "", "", "", key=rig)
        self.set_interval(REFRESH_S, self.refresh_rows)

    def refresh_rows(self) -> None:
        self.refreshes += 1
        table = self.query_one("#rigs", DataTable)
        for row in self.operator.rows():
            status = row.status
            if status is None:
                cells = (row.rig, "reachable" if row.reachable else "not on the network", "", "", "", "", "")
            else:
                verdict = "legal" if status.verdict == "legal" else status.verdict
                cells = (row.rig, status.state + (" (busy: " + status.busy + ")" if status.busy else ""),
                         status.move, verdict, status.timecode, status.owner, status.fault)
            for column, value in zip(COLUMNS, cells):
                table.update_cell(row.rig, column, value)
        log = self.query_one("#log", RichLog)
        while self.operator.log:
            level, text = self.operator.log.popleft()
            log.write({"error": "[b red]", "warn": "[yellow]"}.get(level, "") + text.replace("[", r"\[")
                      + ("[/]" if level in ("error", "warn") else ""))
        mode = "on the stage's timecode" if self.operator.timecode else "together at once"
        busy = f"  ({self.operator.busy})" if self.operator.busy else ""
        self.query_one("#mode", Static).update(f"start: {mode}{busy}")

    # -- keys -----------------------------------------------------------------------------------------
    def action_estop(self) -> None:
        self.operator.estop()

    def action_go(self) -> None:
        self.operator.go()

    def action_run(self) -> None:
        self.operator.run()

    def action_stop(self) -> None:
        self.operator.stop()

    def action_reset(self) -> None:
        self.operator.reset()

    def action_timecode(self) -> None:
        self.operator.toggle_timecode()

    async def action_quit(self) -> None:
        self.operator.close()
        self.exit()
