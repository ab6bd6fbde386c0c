"""Every key of the terminal UI in one table: the bindings are built from it and `?` shows it.

Global keys work on every screen; E-stop is a *priority* binding, so no focused widget can swallow it.
Screen keys only work where they are listed.  Letters used globally are never reused by a screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    key: str              # Textual key name(s), comma-separated
    action: str
    label: str            # short, for the footer
    help: str             # one line, for the help screen
    show: bool = True


ESTOP = Key("space", "estop", "E-STOP", "E-stop: quick stop on every axis, now, from any screen", True)

GLOBAL: tuple[Key, ...] = (
    ESTOP,
    Key("question_mark,f1", "help", "help", "this list of keys"),
    Key("1", "screen('rig')", "rig", "rig screen: axes, transport, timecode, takes, log"),
    Key("2", "screen('library')", "library", "move library with each move's check verdict"),
    Key("3", "screen('move')", "move", "the loaded move: keys, curves, clearance"),
    Key("4", "screen('jog')", "jog", "jog and teach"),
    Key("g", "go_to_start", "go to start", "go to the start of the move (reduced speed, collision-checked)"),
    Key("a", "arm", "arm", "arm at the start (on timecode: the move then starts itself on its start frame)"),
    Key("r", "run", "run", "run the armed move"),
    Key("s", "stop", "stop", "controlled stop along the path, within every limit"),
    Key("b", "direction", "fwd/back", "toggle running the move forwards / backwards (at rest)"),
    Key("o", "loop", "loop", "toggle loop: run again from the start after each take"),
    Key("t", "timecode", "timecode", "cycle the start: manual / internal timecode / LTC file"),
    Key("minus", "override(-10)", "-10%", "rehearsal speed override down 10 % (the path stays the same)"),
    Key("plus,equals_sign", "override(10)", "+10%", "rehearsal speed override up 10 %"),
    Key("x", "reset", "reset", "reset a latched fault or E-stop (then go to start again)"),
    Key("q", "quit", "quit", "quit (refused while the rig moves)"),
)

LIBRARY: tuple[Key, ...] = (
    Key("enter", "load", "load", "load the highlighted move (connects to the rig if needed)"),
    Key("c", "recheck", "re-check", "check every move again (after editing files)"),
)

MOVE: tuple[Key, ...] = (
    Key("left", "cursor(-1)", "frame -1", "frame cursor back one frame"),
    Key("right", "cursor(1)", "frame +1", "frame cursor on one frame"),
    Key("comma", "cursor_key(-1)", "prev key", "frame cursor to the previous key"),
    Key("full_stop", "cursor_key(1)", "next key", "frame cursor to the next key"),
    Key("up", "axis(-1)", "axis", "curves of the previous axis"),
    Key("down", "axis(1)", "axis", "curves of the next axis"),
)

JOG: tuple[Key, ...] = (
    Key("m", "mode", "axis/camera", "jog mode: per axis, or camera space (dolly, truck, pedestal, pan, tilt)"),
    Key("up", "up", "up", "axis mode: select the previous axis; camera mode: dolly in (hold)"),
    Key("down", "down", "down", "axis mode: select the next axis; camera mode: dolly out (hold)"),
    Key("left", "left", "jog -", "axis mode: jog the axis down (hold); camera mode: truck left (hold)"),
    Key("right", "right", "jog +", "axis mode: jog the axis up (hold); camera mode: truck right (hold)"),
    Key("pageup,u", "pedestal(1)", "ped up", "camera mode: pedestal up (hold)"),
    Key("pagedown,n", "pedestal(-1)", "ped down", "camera mode: pedestal down (hold)"),
    Key("h", "pan(1)", "pan L", "camera mode: pan left (hold)"),
    Key("l", "pan(-1)", "pan R", "camera mode: pan right (hold)"),
    Key("i", "tilt(1)", "tilt up", "camera mode: tilt up (hold)"),
    Key("j", "tilt(-1)", "tilt down", "camera mode: tilt down (hold)"),
    Key("comma", "cursor(-1)", "frame -1", "frame cursor back one frame (where a taught key goes)"),
    Key("full_stop", "cursor(1)", "frame +1", "frame cursor on one frame"),
    Key("less_than_sign", "cursor(-24)", "-24", "frame cursor back 24 frames"),
    Key("greater_than_sign", "cursor(24)", "+24", "frame cursor on 24 frames"),
    Key("k", "teach", "teach", "store the measured pose as a key at the frame cursor and save the move file"),
)

SCREENS = {"all screens": GLOBAL, "library (2)": LIBRARY, "move (3)": MOVE, "jog (4)": JOG}


def bindings(keys: tuple[Key, ...], *, priority_estop: bool = False) -> list[Binding]:
    return [Binding(k.key, k.action, k.label, show=k.show, priority=priority_estop and k is ESTOP) for k in keys]


def display(key: str) -> str:
    names = {"space": "space", "question_mark": "?", "minus": "-", "plus": "+", "equals_sign": "=",
             "comma": ",", "full_stop": ".", "less_than_sign": "<", "greater_than_sign": ">",
             "pageup": "PgUp", "pagedown": "PgDn", "enter": "Enter", "up": "↑", "down": "↓", "left": "←",
             "right": "→", "f1": "F1"}
    return " ".join(names.get(k, k) for k in key.split(","))
