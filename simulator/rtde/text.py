"""The fake UR controller's text interfaces: programs on the secondary interface, the dashboard server.

Secondary (30002): URScript text.  The controller does not interpret URScript; :class:`ScriptAssembler`
only cuts the stream into whole programs (a ``def name():`` ... ``end`` block ended by a newline, with any
comment lines before it; a lone statement line is a program of its own) and hands each to the controller.

Dashboard (29999): one command a line, one reply a line, the replies of ``docs/ur-rtde-facts.md`` §7.
:func:`dashboard_reply` acts on the controller (under its lock) and returns the reply.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from simulator.rtde import wire as w

if TYPE_CHECKING:
    from simulator.rtde.controller import UrController

GREETING = "Connected: Universal Robots Dashboard Server"
POLYSCOPE = "URSoftware 5.15.0.0 (simulated)"
UNLOCK_WAIT_S = 5.0
UNLOCK_TOO_EARLY = ("Cannot unlock protective stop until 5s after occurrence. Always inspect cause of "
                    "protective stop before unlocking")
_DEF = re.compile(r"^(?:def|sec)\s+([A-Za-z_]\w*)\s*\(")


def program_name(text: str) -> str:
    for line in text.splitlines():
        match = _DEF.match(line)
        if match:
            return match.group(1)
    return "<unnamed>"


class ScriptAssembler:
    """Whole programs out of the text a secondary-interface client writes."""

    def __init__(self) -> None:
        self._partial = ""
        self._lines: list[str] = []
        self._in_def = False

    def feed(self, data: bytes) -> list[str]:
        self._partial += data.decode("utf-8", "replace")
        programs = []
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            line = line.rstrip("\r")
            self._lines.append(line)
            stripped = line.strip()
            if self._in_def:
                if line.rstrip() == "end":          # the block's own end, at column 0
                    programs.append(self._take())
            elif _DEF.match(line):
                self._in_def = True
            elif stripped and not stripped.startswith("#"):
                programs.append(self._take())       # one statement, run as a program of its own
        return programs

    def _take(self) -> str:
        text = "\n".join(self._lines) + "\n"
        self._lines, self._in_def = [], False
        return text


def dashboard_reply(ctl: "UrController", line: str) -> tuple[str, bool]:
    """The reply to one dashboard command, and whether the server then closes the connection."""
    command = line.strip()
    if command == "quit":
        return "Disconnected", True
    if command == "robotmode":
        return f"Robotmode: {w.ROBOT_MODES[ctl.robot_mode]}", False
    if command == "safetymode":
        return f"Safetymode: {w.SAFETY_MODES[ctl.safety_mode]}", False
    if command == "safetystatus":
        return f"Safetystatus: {w.SAFETY_MODES[ctl.safety_mode]}", False
    if command == "programState":
        state = {w.PLAYING: "PLAYING", w.PAUSED: "PAUSED"}.get(ctl.runtime_state, "STOPPED")
        return f"{state} {ctl.program_name}", False
    if command == "running":
        return f"Program running: {'true' if ctl.runtime_state == w.PLAYING else 'false'}", False
    if command == "PolyscopeVersion":
        return POLYSCOPE, False
    if command == "is in remote control":
        return "true", False
    if command == "get robot model":
        return "UR10", False
    if command == "close popup":
        return "closing popup", False
    if command == "close safety popup":
        return "closing safety popup", False
    if command == "power on":
        ctl.power_on()
        return "Powering on", False
    if command == "power off":
        ctl.power_off()
        return "Powering off", False
    if command == "brake release":
        ctl.brake_release()
        return "Brake releasing", False
    if command == "unlock protective stop":
        return ("Protective stop releasing" if ctl.unlock_protective_stop(UNLOCK_WAIT_S)
                else UNLOCK_TOO_EARLY), False
    if command == "play":
        return ("Starting program" if ctl.play() else "Failed to execute: play"), False
    if command == "pause":
        return ("Pausing program" if ctl.pause() else "Failed to execute: pause"), False
    if command == "stop":
        ctl.stop_program("stopped from the dashboard")
        return "Stopped", False
    return f"could not understand: '{command}'", False
