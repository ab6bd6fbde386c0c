"""Benchmark: the stage network on 127.0.0.1 (issue 17): command round trips and telemetry latency.

Two rig daemons (``motionctl serve --sim --clock sim``, each in its own process, mutual TLS and access
control as ``[security]`` makes them) and a station in this process:

* **round trip, stop branch**: ``status`` asked of one rig N times in a row (station -> daemon's Zenoh
  thread -> reply), wall time per answer.
* **round trip, motion branch**: ``run`` asked of a rig that is idle (refused: "go to the start first")
  N times: the motion path (the daemon's worker queue, the station's liveliness check) without moving.
* **telemetry**: for every status received over ``--seconds``, the age at arrival (the daemon's
  ``sent_unix_ns`` against this host's wall clock: the same clock on one machine), and the rate.

Start-time agreement of two rigs armed on one timecode is not measured yet (issue 17 item 3 is not built).
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
move = "{ROOT / "moves" / "product_shot.toml"}"
[[rig]]
name = "crane"
rig = "{ROOT / "rigs" / "moco_crane.toml"}"
listen = "tcp/127.0.0.1:{_port()}"
move = "{ROOT / "moves" / "crane_reveal.toml"}"
[security]
ca = "certs/ca.pem"
certs = "certs"
operators = ["operator-1"]
''')
    return path


def _ms(values: list[float]) -> str:
    a = np.asarray(values) * 1000.0
    return f"{np.percentile(a, 50):.2f} | {np.percentile(a, 99):.2f} | {a.max():.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"{machine_line()}; Python {platform.python_version()}")
    print()
    with tempfile.TemporaryDirectory() as folder:
        path = _net(Path(folder))
        net = load_stage_net(path)
        stage_certs(net)
        daemons = [subprocess.Popen([sys.executable, "-m", "motionctl", "serve", "--stage-net", str(path), "--rig",
                                     rig.name, "--sim", "--clock", "sim", "--takes", str(Path(folder) / "takes")],
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
            print("| command round trip, station -> daemon -> station | n | p50 ms | p99 ms | max ms |")
            print("|---|---|---|---|---|")
            for label, took in rows:
                print(f"| {label} | {len(took)} | {_ms(took)} |")
            print()
            rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
            print("| telemetry (two rigs, 20 Hz each) | statuses | rate Hz | p50 ms | p99 ms | max ms |")
            print("|---|---|---|---|---|---|")
            print(f"| age at arrival | {len(ages)} | {rate:.1f} | {_ms(ages)} |")
        finally:
            for daemon in daemons:
                daemon.terminate()
            for daemon in daemons:
                daemon.wait(20)


if __name__ == "__main__":
    main()
