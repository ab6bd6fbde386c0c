"""``python -m simulator`` as a process: it ends with whoever started it, however early that one went."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import RIGS, ROOT


def test_a_simulator_whose_parent_is_already_gone_ends_by_itself():
    """A Ctrl-C that reached ``motionctl sim`` while the simulator was still starting left the simulator
    serving forever on a loaded machine: it read its parent after the parent had gone (init's pid).  The
    parent is now named on the command line (and read first thing), so the simulator sees it is gone."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)
    simulator = subprocess.Popen([sys.executable, "-m", "simulator", "--rig", str(RIGS / "ur10e_track.toml"),
                                  "--transport", "can", "--can", "can://virtual/orphan", "--parent-pid", str(pid)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = simulator.communicate(timeout=120)       # it ends on its own (not a timing assertion)
    finally:
        simulator.kill()
    assert simulator.returncode == 0, err
    assert "CAN drives" in out


def test_one_group_of_a_rig_on_several_controllers_is_simulated_on_its_own(tmp_path):
    """``--group NAME``: the UR arm's controller of rigs/ur10e_rtde_track.toml in a process of its own (what
    a real-time rehearsal of that rig starts), and an unknown group refused in words."""
    import subprocess
    import sys

    rig = str(ROOT / "rigs" / "ur10e_rtde_track.toml")
    process = subprocess.Popen([sys.executable, "-m", "simulator", "--rig", rig, "--group", "arm", "--transport",
                                "rtde"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = process.stdout.readline()
        assert line.startswith("simulator: UR controller ready rtde://127.0.0.1?rtde_port="), line
    finally:
        process.terminate()
        process.wait(10)
    refused = subprocess.run([sys.executable, "-m", "simulator", "--rig", rig, "--group", "crane", "--transport",
                              "rtde"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert refused.returncode == 2 and 'no [[hardware.group]] named "crane" (it has arm, track, lens)' in refused.stderr
