"""Commands that do not plan start without importing the planner (issue 15 item 7): a pipeline calls
``motionctl tc`` and ``--help`` in loops.  Asserted on what is imported, not on seconds (the time,
measured, is in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PUSH_IN = Path(__file__).resolve().parents[2] / "moves" / "push_in.toml"

HEAVY = ("motionctl.planner", "motionctl.kinematics", "roboticstoolbox", "spatialmath", "scipy", "numpy")

_PROBE = """
import contextlib, io, json, sys
from motionctl.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {'motionctl', 'roboticstoolbox',
                                                                       'spatialmath', 'scipy', 'numpy'})))
"""


@pytest.mark.parametrize("argv", [["--help"], ["tc", "--fps", "25", "100"], ["check", "--help"],
                                  ["run", "--help"], ["vcam", "--help"]])
def test_commands_that_do_not_plan_do_not_import_the_planner(argv):
    out = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if m.startswith(HEAVY)], loaded


def test_a_command_that_plans_still_gets_the_planner():
    out = subprocess.run([sys.executable, "-c", _PROBE, "check", str(PUSH_IN)], capture_output=True,
                         text=True, check=True)
    assert "motionctl.planner" in json.loads(out.stdout.strip().splitlines()[-1])
