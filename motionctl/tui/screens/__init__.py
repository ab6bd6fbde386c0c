"""The terminal UI's screens: rig (home), library, move detail, jog & teach, and the key help."""

from motionctl.tui.screens.base import OperatorScreen
from motionctl.tui.screens.help import HelpScreen
from motionctl.tui.screens.jog import JogScreen
from motionctl.tui.screens.library import LibraryScreen
from motionctl.tui.screens.move import MoveScreen
from motionctl.tui.screens.rig import RigScreen

__all__ = ["HelpScreen", "JogScreen", "LibraryScreen", "MoveScreen", "OperatorScreen", "RigScreen"]
