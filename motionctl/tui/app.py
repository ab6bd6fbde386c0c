"""``motionctl tui``: the operator's terminal UI (Textual).

The app holds a :class:`~motionctl.tui.rig_process.RigProcess` (the rig in its own process; tests of
offline screens may hand it a :class:`~motionctl.tui.controller.RigController` directly) and never
blocks on it: every action returns at once, and a 10 Hz timer pulls one coalesced telemetry snapshot
and the new log lines.  E-stop is a priority binding handled right here, sent to the rig at once.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.css.query import NoMatches

from motionctl.tui.controller import RigController
from motionctl.tui.rig_process import RigProcess
from motionctl.tui.keys import GLOBAL, bindings
from motionctl.tui.screens import HelpScreen, JogScreen, LibraryScreen, MoveScreen, OperatorScreen, RigScreen
from motionctl.tui.widgets import StatusLine

REFRESH_S = 0.1


class MotionctlApp(App):
    TITLE = "motionctl"
    BINDINGS = bindings(GLOBAL, priority_estop=True)

    def __init__(self, controller: RigController | RigProcess, initial_move: Path | None = None) -> None:
        super().__init__()
        self.controller = controller
        self.initial_move = initial_move
        self.last_message = ""
        self._takes_seen = 0
        self.refreshes = 0

    def on_mount(self) -> None:
        self.rig_screen = RigScreen()
        for name, screen in (("rig", self.rig_screen), ("library", LibraryScreen()), ("move", MoveScreen()),
                             ("jog", JogScreen())):
            self.install_screen(screen, name)
        self.push_screen("rig")
        if self.initial_move is not None:
            self.controller.library.add(self.initial_move)
            self.load_move(self.initial_move)
        else:
            self.push_screen("library")
        self.set_interval(REFRESH_S, self.refresh_telemetry)

    # -- the refresh --------------------------------------------------------------------------------
    def refresh_telemetry(self) -> None:
        rig = self.rig_screen
        if not rig.is_mounted:          # starting up or shutting down
            return
        self.refreshes += 1
        controller = self.controller
        controller.poll()
        while controller.log:
            level, text = controller.log.popleft()
            self.last_message = text
            try:
                rig.add_log(level, text)
            except NoMatches:           # the rig screen is not composed yet: keep the line for later
                controller.log.appendleft((level, text))
                break
        if controller.takes_closed != self._takes_seen:
            self._takes_seen = controller.takes_closed
            self.set_timer(0.5, rig.reload_takes)      # the take's files close on a helper thread
        telemetry = controller.telemetry()
        stack = self.screen_stack
        if not stack:                   # shutting down: the stack empties before the installed screens go
            return
        # Every screen in the stack: an overlay (help) leaves the one under it visible, and a status frozen
        # there would show a stale state the moment the overlay closes.
        for screen in stack:
            if isinstance(screen, OperatorScreen):
                screen.refresh_telemetry(telemetry, self.last_message)
            elif isinstance(screen, HelpScreen):
                try:
                    screen.query_one(StatusLine).show(telemetry, self.last_message)
                except NoMatches:       # not composed yet
                    pass

    # -- global actions ------------------------------------------------------------------------------
    def action_estop(self) -> None:
        self.controller.estop()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_screen(self, name: str) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        self.switch_screen(name)

    def load_move(self, path: Path) -> None:
        future = self.controller.select_move(Path(path))

        def loaded(_future) -> None:
            if self.is_running:
                self.call_from_thread(self._after_load)
        future.add_done_callback(loaded)

    def _after_load(self) -> None:
        try:
            move = self.get_screen("move")
        except KeyError:                # shutting down
            return
        if move.is_mounted:
            move.reload()
        stack = self.screen_stack
        if self.controller.shown_plan is not None and stack and isinstance(stack[-1], LibraryScreen):
            self.switch_screen("move")

    def action_go_to_start(self) -> None:
        self.controller.go_to_start()

    def action_arm(self) -> None:
        self._guard(self.controller.arm)

    def action_run(self) -> None:
        self._guard(self.controller.run)

    def action_stop(self) -> None:
        self.controller.stop()

    def action_direction(self) -> None:
        self.controller.toggle_direction()

    def action_loop(self) -> None:
        self.controller.toggle_loop()

    def action_timecode(self) -> None:
        self.controller.cycle_timecode()

    def action_override(self, step: int) -> None:
        self.controller.set_override(self.controller.override_pct + step)
        self.controller.say(f"speed override {self.controller.override_pct} %")

    def action_reset(self) -> None:
        self.controller.reset()

    def action_quit(self) -> None:
        if not self.controller.at_rest:
            self.controller.say("the rig is moving: stop it (s) before quitting", "warn")
            return
        self.exit()

    def _guard(self, action) -> None:
        from motionctl.errors import MotionctlError
        try:
            action()
        except MotionctlError as exc:
            self.controller.say(str(exc), "warn")

    def on_unmount(self) -> None:
        self.controller.close()
