"""Benchmark: the stage network on 127.0.0.1 (issue 17): command round trips and telemetry latency.

Two rig daemons (``motionctl serve --sim --clock sim``, each in its own process, mutual TLS and access
control as ``[security]`` makes them) and a station in this process:

* **round trip, stop branch**: ``status`` asked of one rig N times in a row (station -> daemon's Zenoh
  thread -> reply), wall time per answer.
* **round trip, motion branch**: ``run`` asked of a rig that is idle (refused: "go to the start first")
  N times: the motion path (the daemon's worker queue, the station's liveliness check) without moving.
* **telemetry**: for every status received over ``--seconds``, the age at arrival (the daemon's
  ``sent_unix_ns`` against this host's wall clock: the same clock on one machine), and the rate.

* **start agreement**: ``--takes`` times, both rigs go to their starts and run on the stage's timecode
  (this station its master, as ``motionctl stage run --timecode``): each rig's start against the timecode
  as its own lock saw it (ticks), and the spread between the two rigs' starts on the host's wall clock
  (each daemon stamps the tick its run started).  The daemons keep simulated time paced to the wall clock
  (``--clock sim``), as the demo does.

Run: ``.venv/bin/python benchmarks/stage_net.py``.  Prints markdown; asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine_info import machine_line

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from motionctl.stage.certs import stage_certs  # noqa: E402
from motionctl.stage.messages import RigStatus, Verb  # noqa: E402
from motionctl.stage.netfile import load_stage_net  # noqa: E402
from motionctl.stage.station import Station  # noqa: E402


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _net(folder: Path) -> Path:
    path = folder / "net.toml"
    path.write_text(f'''stage = "bench"
[[station]]
name = "operator-1"
[[rig]]
name = "arm-a"
rig = "{ROOT / "rigs" / "ur10e_track.toml"}"
listen = "tcp/127.0.0.1:{_port()}"
move = "{ROOT / "moves" / "orbit.toml"}"
[[rig]]
name = "crane"
rig = "{ROOT / "rigs" / "moco_crane.toml"}"
listen = "tcp/127.0.0.1:{_port()}"
move = "{ROOT / "moves" / "crane_reveal_25.toml"}"
[security]
ca = "certs/ca.pem"
certs = "certs"
operators = ["operator-1"]
''')
    return path


def _ms(values: list[float]) -> str:
    a = np.asarray(values) * 1000.0
    return f"{np.percentile(a, 50):.2f} | {np.percentile(a, 99):.2f} | {a.max():.2f}"


def _start_on_timecode(station):
    """Both rigs to their starts on timecode, armed, then this station as master until both are done."""
    from motionctl.timecode import FrameRate, Timecode

    rigs = ("arm-a", "crane")
    for rig in rigs:
        station.ask(rig, Verb.GO, timecode=True)
    for rig in rigs:
        station.wait_for(rig, lambda s: s.state == "at start", 60)
    replies = {rig: station.ask(rig, Verb.RUN) for rig in rigs}
    if not all(r.accepted for r in replies.values()):
        return None
    rate = FrameRate.parse(replies["arm-a"].status["fps"])
    first = min(Timecode.parse(r.status["start"], rate) for r in replies.values())
    master = station.timecode_master(rate, first - 50)
    try:
        done = [station.wait_for(rig, lambda s: s.state in ("done", "stopped", "faulted"), 120) for rig in rigs]
    finally:
        master.stop()
    if not all(s is not None and s.state == "done" for s in done):
        return None
    stamps = [s.run_started_unix_ns for s in done]
    return {s.rig: s.start_error_ticks for s in done}, (max(stamps) - min(stamps)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--takes", type=int, default=3)
    parser.add_argument("--clock", choices=("sim", "wall"), default="sim", help="the daemons' clock (--sim either way)")
    args = parser.parse_args()
    print(f"{machine_line()}; Python {platform.python_version()}")
    print()
    with tempfile.TemporaryDirectory() as folder:
        path = _net(Path(folder))
        net = load_stage_net(path)
        stage_certs(net)
        daemons = [subprocess.Popen([sys.executable, "-m", "motionctl", "serve", "--stage-net", str(path), "--rig",
                                     rig.name, "--sim", "--clock", args.clock, "--takes", str(Path(folder) / "takes")],
                                    cwd=ROOT, stdout=subprocess.PIPE, text=True) for rig in net.rigs]
        try:
            for daemon in daemons:
                daemon.stdout.readline()
            ages: list[float] = []
            arrivals: list[float] = []
            timing = threading.Event()

            def arrived(status: RigStatus) -> None:
                if timing.is_set():
                    ages.append((time.time_ns() - status.sent_unix_ns) / 1e9)
                    arrivals.append(time.monotonic())

            with Station(net).open(on_status=arrived) as station:
                station.join(["arm-a", "crane"], timeout=30)
                for rig in ("arm-a", "crane"):
                    station.wait_for(rig, lambda s: s.state == "idle", 60)
                rows = []
                for verb, label in ((Verb.STATUS, "status (stop branch)"),
                                    (Verb.RUN, "run while idle (motion branch, refused)")):
                    took = []
                    for _ in range(args.count):
                        started = time.perf_counter()
                        station.ask("arm-a", verb, timeout=10)
                        took.append(time.perf_counter() - started)
                    rows.append((label, took))
                timing.set()
                time.sleep(args.seconds)
                timing.clear()
                starts = [_start_on_timecode(station) for _ in range(args.takes)]
            print("| command round trip, station -> daemon -> station | n | p50 ms | p99 ms | max ms |")
            print("|---|---|---|---|---|")
            for label, took in rows:
                print(f"| {label} | {len(took)} | {_ms(took)} |")
            print()
            rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
            print("| telemetry (two rigs, 20 Hz each) | statuses | rate Hz | p50 ms | p99 ms | max ms |")
            print("|---|---|---|---|---|---|")
            print(f"| age at arrival | {len(ages)} | {rate:.1f} | {_ms(ages)} |")
            print()
            print("| take on the stage's timecode | arm-a start error ticks | crane start error ticks | "
                  "spread between the rigs ms (ticks at 250 Hz) |")
            print("|---|---|---|---|")
            for n, start in enumerate(starts, 1):
                if start is None:
                    print(f"| {n} | - | - | did not run to the end |")
                    continue
                errors, spread_ms = start
                print(f"| {n} | {errors['arm-a']:+.2f} | {errors['crane']:+.2f} | {spread_ms:.2f} "
                      f"({spread_ms / 4.0:.2f}) |")
        finally:
            for daemon in daemons:
                daemon.terminate()
            for daemon in daemons:
                daemon.wait(20)


if __name__ == "__main__":
    main()
