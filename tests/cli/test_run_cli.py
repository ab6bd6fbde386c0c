"""End-to-end ``motionctl run --sim`` and ``motionctl takes``; a host killed with SIGKILL mid-run.

Dry runs are in simulated time (``--clock sim``) except where wall-clock behaviour is what is tested: the
real-time rehearsal's loop timing, and a host killed in the middle of a real-time run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from motionctl.runtime.takes import list_takes, read_take
import pytest

from tests.conftest import LEGAL_MOVES, MOVES, RIGS, dry_run


def motionctl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "motionctl", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.wall_clock
def test_real_time_rehearsal_over_serial_completes_with_summary_and_take(tmp_path):
    """Wall clock: the operator's rehearsal (``--sim`` alone) keeps real time and says how well."""
    result = dry_run(str(MOVES / "product_shot.toml"), "--transport", "serial", "--takes", str(tmp_path),
                     "--rate", "250", clock="wall")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "done", summary["faults"]
    for key in ("max_following_error", "p50_late_us", "p99_late_us", "max_late_us", "overruns", "link", "take",
                "scheduling"):
        assert key in summary
    assert summary["scheduling"] != "simulated time"
    take = read_take(summary["take"])
    assert take.complete and take.meta["move"] == "product-shot"
    listing = motionctl("takes", "--dir", str(tmp_path))
    assert listing.returncode == 0 and "product-shot" in listing.stdout and "done" in listing.stdout


def test_illegal_move_is_refused_before_anything_moves(tmp_path):
    result = motionctl("run", str(MOVES / "illegal" / "too_fast_through_obstacle.toml"), "--sim",
                       "--takes", str(tmp_path))
    assert result.returncode == 1
    assert "Not run" in result.stderr
    assert list_takes(tmp_path) == []


def _orbit_on_the_serial_simulator(takes: Path):
    """The simulator in its own process and a host running orbit on it in real time, until the take holds
    2 s of samples on disk.  Returns both processes, or what the host said when its run ended first."""
    simulator = subprocess.Popen([sys.executable, "-m", "simulator", "--rig", str(RIGS / "ur10e_track.toml")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    host = None
    try:
        line = simulator.stdout.readline()
        assert "ready at" in line, line + simulator.stderr.read()
        pty = line.rsplit(" ", 1)[-1].strip()
        host = subprocess.Popen([sys.executable, "-m", "motionctl", "run", str(MOVES / "orbit.toml"),
                                 "--hw", f"serial://{pty}", "--takes", str(takes), "--rate", "250"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            takes_now = list_takes(takes)
            if takes_now and len(takes_now[0].rows) > 2 * 250 + 100:
                return simulator, host
            if host.poll() is not None:
                out, err = host.communicate()
                _end(simulator)
                return f"it ended before 2 s of take: {out[-300:]}{err[-300:]}"
            time.sleep(0.2)
        raise AssertionError("the run never got going")
    except BaseException:
        for process in (host, simulator):
            if process is not None:
                _end(process)
        raise


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


@pytest.mark.wall_clock
def test_host_killed_mid_run_leaves_a_readable_take_and_the_drives_stop(tmp_path):
    takes = tmp_path / "takes"
    processes = _orbit_on_the_serial_simulator(takes)
    assert isinstance(processes, tuple), processes
    simulator, host = processes
    try:
        take_rows = len(list_takes(takes)[0].rows)
        os.kill(host.pid, signal.SIGKILL)
        host.wait(10)
        take = read_take(list_takes(takes)[0].path)
        assert not take.complete                                  # cut short, and says so
        assert len(take.rows) >= take_rows                        # nothing already on disk was lost
        float(take.rows[-1][take.columns.index("t_s")])           # the last row is whole
        # The simulated controller notices on its own that setpoints stopped: its setpoint queue (protocol
        # 1.1) runs dry and it stops every axis along the queued path.
        time.sleep(1.0)
        simulator.send_signal(signal.SIGTERM)
        _, err = simulator.communicate(timeout=10)
        assert "queue ran dry" in err and "stop along the queued path" in err, err
    finally:
        if simulator.poll() is None:
            simulator.kill()


@pytest.mark.parametrize("transport", ["serial", "can"])
@pytest.mark.parametrize("move", LEGAL_MOVES, ids=lambda p: p.stem)
def test_every_legal_move_dry_runs_over_serial_and_can(move, transport, tmp_path):
    result = dry_run(str(move), "--transport", transport, "--takes", str(tmp_path))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "done" and not summary["faults"]
    assert summary["overruns"] == 0 and summary["scheduling"] == "simulated time"
    assert read_take(summary["take"]).complete


@pytest.mark.parametrize("transport", ["serial", "can"])
def test_a_simulated_time_dry_run_is_the_same_every_time(transport, tmp_path):
    """Two fresh processes, the same move: byte-identical samples and events (simulated time only in them)."""
    takes = []
    for run in ("a", "b"):
        result = dry_run(str(MOVES / "crane_reveal.toml"), "--transport", transport, "--takes", str(tmp_path / run),
                         "--fault", "drop=0.01")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        takes.append(Path(json.loads(result.stdout)["take"]))
    for name in ("samples.csv", "events.jsonl"):
        assert (takes[0] / name).read_bytes() == (takes[1] / name).read_bytes(), name
    assert "wall" not in (takes[0] / "events.jsonl").read_text()


def test_exit_codes_say_how_a_run_ended(tmp_path):
    """0 done, 1 illegal (not run), 2 bad input, 4 a run that faulted (its own documented code, not the
    illegal move's 1); hardware errors carry the 'error:' prefix."""
    faulted = motionctl("run", str(MOVES / "push_in.toml"), "--sim", "--clock", "sim", "--takes", str(tmp_path),
                        "--fault", "drive:track@0.5=0x2310")
    assert faulted.returncode == 4, faulted.stdout[-1500:] + faulted.stderr[-1500:]
    assert "faulted" in faulted.stdout
    nowhere = motionctl("run", str(MOVES / "push_in.toml"), "--hw", "serial:///dev/ttyUSB9-nothing-here",
                        "--takes", str(tmp_path))
    assert nowhere.returncode == 4 and nowhere.stderr.startswith("motionctl: error: "), nowhere.stderr


def test_small_cli_promises(tmp_path):
    """--debug also after the sub-command; preview --out on a file is bad input, not an internal error;
    takes --dir on a folder that does not exist is bad input, not 'no takes'."""
    debug = motionctl("tc", "--fps", "25", "100", "--debug")
    assert debug.returncode == 0 and debug.stdout.strip() == "00:00:04:00", debug.stderr
    a_file = tmp_path / "page.html"
    a_file.write_text("mine")
    preview = motionctl("preview", str(MOVES / "push_in.toml"), "--out", str(a_file))
    assert preview.returncode == 2 and "is a file" in preview.stderr and a_file.read_text() == "mine"
    takes = motionctl("takes", "--dir", str(tmp_path / "missing"))
    assert takes.returncode == 2 and "no takes folder" in takes.stderr


def test_sim_over_can_says_how_many_drives_and_where_and_a_missing_bus_in_words():
    missing = motionctl("sim", "--rig", str(RIGS / "ur10e_track.toml"), "--transport", "can", "--can",
                        "can://socketcan/motionctl-no-such-bus", timeout=60)
    assert missing.returncode == 2 and "cannot open the CAN bus" in missing.stderr
    assert "Traceback" not in missing.stderr
    sim = subprocess.Popen([sys.executable, "-m", "motionctl", "sim", "--rig", str(RIGS / "ur10e_track.toml"),
                            "--transport", "can", "--can", "can://virtual/papercut-sim"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = sim.stdout.readline()
    finally:
        sim.send_signal(signal.SIGINT)
        sim.communicate(timeout=30)
    assert first.strip() == "simulator: 10 CAN drives on can://virtual/papercut-sim"


@pytest.mark.wall_clock
def test_ctrl_c_in_a_real_time_dry_run_is_a_controlled_stop_the_simulated_drives_live_through(tmp_path):
    """Wall clock (Ctrl-C is wall-clock behaviour): the terminal sends SIGINT to the whole foreground
    process group.  The simulated drives (another machine, really) must not die of it: the run ends in the
    controlled stop the README promises, exit 130, not 'the link to the drives failed'."""
    takes = tmp_path / "takes"
    run = subprocess.Popen([sys.executable, "-m", "motionctl", "run", str(MOVES / "orbit.toml"), "--sim",
                            "--transport", "serial", "--takes", str(takes)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            found = list_takes(takes) if takes.is_dir() else []
            if found and any("running" in row for row in found[0].rows[-1:]):
                break
            time.sleep(0.2)
        if run.poll() is not None:                            # ended before the Ctrl-C: say how, whole
            out, err = run.communicate()
            pytest.fail("the run ended by itself: " + " | ".join(l.strip() for l in (out + err).splitlines()
                                                                 if "Run:" in l or "fault" in l or "error" in l))
        os.killpg(run.pid, signal.SIGINT)                     # what the terminal does on Ctrl-C
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert "Input/output error" not in out + err and "link to the drives failed" not in out + err, out + err
    assert "Run: stopped" in out, out[-1500:] + err[-1500:]
    assert run.returncode == 130


def test_takes_listing_shortens_fault_texts_at_a_word_not_mid_word(tmp_path):
    """issue 15 item 6: fault texts and take names were cut mid-word."""
    from motionctl.runtime.takes import TakeWriter
    fault = ("drive fault on elbow: Continuous over-current at the motor output: the motor drew more current "
             "than allowed for too long")
    take = TakeWriter(tmp_path, {"move": "orbit"}, ("track",), 250)
    take.finish({"state": "faulted", "faults": [fault]})
    listing = motionctl("takes", "--dir", str(tmp_path))
    assert listing.returncode == 0, listing.stderr
    line = next(l for l in listing.stdout.splitlines() if "faulted" in l)
    assert take.path.name in line
    shown = line[line.index("drive fault"):].rstrip()
    assert shown.endswith(" …") and fault.startswith(shown[:-2])
    assert fault[len(shown) - 2] == " "                       # the cut falls between words


def test_a_take_names_the_exact_move_file_it_was_planned_from(tmp_path):
    import hashlib
    move = MOVES / "push_in.toml"
    result = dry_run(str(move), "--transport", "serial", "--takes", str(tmp_path))
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]
    take = read_take(json.loads(result.stdout)["take"])
    assert take.meta["move_sha256"] == hashlib.sha256(move.read_bytes()).hexdigest()
