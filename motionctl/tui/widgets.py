"""Widgets that draw a :class:`~motionctl.tui.telemetry.Telemetry` snapshot; none of them does I/O."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from motionctl.runtime.states import RunState
from motionctl.tui.telemetry import Telemetry

STATE_STYLE = {
    RunState.IDLE: "white", RunState.GOING_TO_START: "cyan", RunState.AT_START: "green",
    RunState.ARMED: "bold yellow", RunState.RUNNING: "bold green", RunState.STOPPING: "yellow",
    RunState.STOPPED: "white", RunState.DONE: "green", RunState.FAULTED: "bold red",
    RunState.ESTOPPED: "bold white on red", RunState.JOGGING: "cyan",
}

SAYS = {
    None: "no rig connected: press 2 for the library, pick a move, Enter to load it",
    RunState.IDLE: "at rest: g to go to the start",
    RunState.GOING_TO_START: "going to the start at reduced speed",
    RunState.AT_START: "at the start: a to arm",
    RunState.ARMED: "armed: r to run (or it starts on timecode)",
    RunState.RUNNING: "running: s to stop, space for E-stop",
    RunState.STOPPING: "stopping along the path",
    RunState.STOPPED: "stopped: g to go to the start again",
    RunState.DONE: "take done: g to go to the start again",
    RunState.FAULTED: "FAULT latched: x to reset, then g",
    RunState.ESTOPPED: "E-STOPPED: x to reset, then g",
    RunState.JOGGING: "jogging (moves only while the key is held)",
}


def limit_bar(fraction: float, width: int = 12) -> Text:
    """Where an axis sits in its range; the ends (last 5 %) turn red."""
    pos = min(width - 1, max(0, int(round(fraction * (width - 1)))))
    style = "red" if fraction < 0.05 or fraction > 0.95 else "green"
    return Text("[") + Text("─" * pos, "dim") + Text("●", style) + Text("─" * (width - 1 - pos), "dim") + Text("]")


class StatusLine(Static):
    """One line on every screen: state in plain words, move, frame and timecode, and how to E-stop."""

    def show(self, t: Telemetry, last_message: str = "") -> None:
        state = t.state
        line = Text()
        label = state.value.upper() if state is not None else "OFFLINE"
        line.append(f" {label} ", STATE_STYLE.get(state, "reverse"))
        line.append(f"  {SAYS[state]}")
        if t.move:
            line.append(f"   move: {t.move}", "bold")
        elif t.not_runnable:
            line.append(f"   NO MOVE LOADED: {t.not_runnable}", "bold yellow")
        if t.frame is not None:
            line.append(f"  frame {t.frame}/{t.frames - 1}")
        line.append(f"  {t.timecode}")
        if t.busy:
            line.append(f"   [{t.busy}…]", "yellow")
        line.append("   space = E-STOP  ? = keys", "bold red")
        if last_message:
            line.append(f"\n {last_message}", "dim")
        self.update(line)


class RigPanel(Static):
    """Every axis: position, velocity, following error, a limit bar, drive state; then the link health."""

    def show(self, t: Telemetry) -> None:
        if not t.connected:
            self.update(Text("No rig connected.\nPress 2 for the move library, highlight a move, Enter to load it: "
                             "that connects the rig (the simulator with --sim).", "dim"))
            return
        table = Table(expand=True, box=None, padding=(0, 1))
        for header, justify in (("axis", "left"), ("position", "right"), ("velocity", "right"),
                                ("follow err", "right"), ("range", "center"), ("drive", "left")):
            table.add_column(header, justify=justify)
        for row in t.axes:
            unit = {"m": "m", "deg": "°"}.get(row.unit, row.unit)
            ferr = f"{row.following:.3f} {'mm' if row.unit == 'm' else '°' if row.unit == 'deg' else ''}"
            drive = Text(row.status, "bold red" if row.status.startswith("FAULT") or row.status == "quick stop"
                         else "green" if row.status == "enabled" else "yellow")
            if row.fault:
                drive.append(f" {row.fault}", "red")
            table.add_row(row.name, f"{row.position:9.3f} {unit}", f"{row.velocity:8.3f}", ferr,
                          limit_bar(row.fraction), drive)
        health = Text(f"\n{t.transport}   loop jitter p99 {t.jitter_p99_us:.0f} µs, max {t.jitter_max_us:.0f} µs "
                      f"(last second)   missed deadlines {t.overruns}   frames sent {t.sent}, received {t.received}, "
                      f"dropped {t.dropped}", "dim")
        if t.fault:
            health.append(f"\nFAULT: {t.fault}", "bold red")
        if t.jog_blocked:
            health.append(f"\njog held back: {t.jog_blocked}", "yellow")
        self.update(_stack(table, health))


def _stack(*parts) -> Table:
    grid = Table.grid(expand=True)
    for part in parts:
        grid.add_row(part)
    return grid


class TransportPanel(Static):
    def show(self, t: Telemetry) -> None:
        text = Text()
        text.append("Transport  ", "bold")
        text.append(f"direction {'◀ backwards' if t.backwards else 'forwards ▶'}   speed {t.override_pct} %   "
                    f"loop {'on' if t.loop else 'off'}\n")
        filled = int(round(t.fraction * 40))
        text.append("[" + "█" * filled + "·" * (40 - filled) + "]", "green")
        if t.frame is not None:
            text.append(f"  frame {t.frame} of {t.frames - 1}")
        self.update(text)


class TimecodePanel(Static):
    def show(self, t: Telemetry) -> None:
        text = Text()
        text.append("Timecode  ", "bold")
        source = {"manual": "manual start (no timecode)", "internal": "internal generator"}.get(
            t.timecode_mode, t.timecode_mode.replace("ltc:", "LTC "))
        text.append(f"source {source}   ")
        if t.locked is None:
            text.append("lock: -", "dim")
        else:
            text.append("LOCKED" if t.locked else "not locked", "bold green" if t.locked else "yellow")
        text.append(f"\nnow {t.timecode}   armed start {t.armed_start or '-'}")
        self.update(text)
