"""Benchmark: plan + full check of a 60 s camera-space move at 1 kHz, against a naive per-sample pipeline.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/plan_speed.py``).  Prints a markdown table to
paste into ``docs/benchmarks.md`` with the machine and the date.  This is a benchmark, not a test:
nothing here asserts a time.

* **motionctl**: ``motionctl.plan`` on ``benchmarks/moves/sweep_60s.toml`` (UR10e track rig, LED volume)
  at 1000 Hz: keys, path, IK with refinement, 60 000 ticks of limits and clearance.  Best of N runs.
* **naive**: the per-sample pipeline a first version would write, timed in the same run on the same
  move: roboticstoolbox IK at every tick (seeded from the previous tick), roboticstoolbox FK of every
  link, and a Python loop over every (capsule, zone) and self pair with the same exact distance
  kernels.  It is timed on a slice of ticks and scaled to the whole move (it is linear in ticks).
* **retime**: ``--retime fastest`` against plain TOPP-RA (velocity and acceleration only) on the same
  path: the jerk-limited result can only be longer; the ratio is reported.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from machine_info import machine_line

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import motionctl  # noqa: E402
from motionctl.collision import ClearanceChecker  # noqa: E402
from motionctl.collision_kernels import segment_segment_distance, segment_shape_distance  # noqa: E402
from motionctl.kinematics import IKTracker, Kinematics  # noqa: E402

MOVE = ROOT / "benchmarks" / "moves" / "sweep_60s.toml"


def time_plan(runs: int) -> tuple[float, motionctl.planner.Plan]:
    scene = motionctl.load_scene(MOVE)
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = motionctl.plan(scene.move, scene.rig, scene.stage, 1000)
        times.append(time.perf_counter() - start)
    return min(times), result


def time_naive(result, ticks: int) -> float:
    """Per-sample IK (roboticstoolbox), per-link FK (roboticstoolbox) and a per-pair distance loop."""
    rig, stage = result.rig, result.stage
    kin = Kinematics(rig)
    tracker = IKTracker(kin)
    ets = tracker._arm_ets
    checker = ClearanceChecker(rig, stage, kin.capsules)
    traj = result.trajectory
    targets = traj.camera[:ticks]
    follow = traj.q[:ticks, :tracker.k]
    caps = kin.capsules
    from roboticstoolbox import ETS, ET
    link_ets = []
    for i in range(len(rig.links)):
        elements = []
        for link in rig.links[: i + 1]:
            elements.append(ET.SE3(np.array(link.pre)))
            if link.joint is not None:
                maker = {(True, 0): ET.tx, (True, 1): ET.ty, (True, 2): ET.tz, (False, 0): ET.Rx,
                         (False, 1): ET.Ry, (False, 2): ET.Rz}[(link.joint.prismatic, link.joint.direction)]
                column = rig.axis_names.index(link.joint.variable)
                elements.append(maker(jindex=column, flip=link.joint.sign < 0))
            elements.append(ET.SE3(np.array(link.post)))
        link_ets.append(ETS(elements))
    zones = [z for z in stage.zones]
    start = time.perf_counter()
    q = np.array(traj.q[0])
    for k in range(ticks):
        base = tracker._arm_base(follow[k])
        sol = ets.ik_LM(np.linalg.inv(base) @ targets[k], q0=q[tracker.k:], ilimit=80, slimit=1, tol=1e-20,
                        joint_limits=False)
        q = np.concatenate([follow[k], sol[0]])
        frames = [np.array(rig.base) @ e.fkine(q).A if e.n else np.array(rig.base) @ e.fkine([]).A
                  for e in link_ets]
        a = [frames[caps.link[c]][:3, :3] @ caps.a[c] + frames[caps.link[c]][:3, 3] for c in range(len(caps.link))]
        b = [frames[caps.link[c]][:3, :3] @ caps.b[c] + frames[caps.link[c]][:3, 3] for c in range(len(caps.link))]
        for c in range(len(caps.link)):
            for zone in zones:
                if caps.names[c] in zone.ignore_links:
                    continue
                segment_shape_distance(a[c], b[c], zone.shape)
        for i, j in checker.self_pairs:
            segment_segment_distance(a[i], b[i], a[j], b[j])
    return (time.perf_counter() - start) / ticks * len(traj)


def time_retime() -> dict:
    scene = motionctl.load_scene(MOVE)
    start = time.perf_counter()
    fast = motionctl.plan(scene.move, scene.rig, scene.stage, 1000, retime="fastest")
    elapsed = time.perf_counter() - start
    info = fast.report.extra["retime"]
    return {"fastest_s": fast.trajectory.duration_s, "toppra_s": info["toppra_duration_s"],
            "keyed_s": info["duration_before_s"], "ok": fast.ok, "elapsed": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive-ticks", type=int, default=1000)
    args = parser.parse_args()
    best, result = time_plan(args.runs)
    duration = result.trajectory.duration_s
    naive = time_naive(result, args.naive_ticks)
    retime = time_retime()
    print(f"{machine_line()}; Python "
          f"{platform.python_version()}; numpy {np.__version__}")
    print()
    print("| measurement | value |")
    print("|---|---|")
    print(f"| move | {MOVE.name}: {duration:.2f} s, {len(result.trajectory)} ticks at 1000 Hz, ok={result.ok} |")
    print(f"| motionctl plan + full check (best of {args.runs}) | {best:.3f} s = {duration / best:.1f}x real time |")
    print(f"| naive per-sample pipeline ({args.naive_ticks} ticks timed, scaled) | {naive:.1f} s = "
          f"{duration / naive:.2f}x real time |")
    print(f"| speed-up over naive | {naive / best:.0f}x |")
    print(f"| --retime fastest duration | {retime['fastest_s']:.3f} s (keyed {retime['keyed_s']:.3f} s, "
          f"legal={retime['ok']}, planned in {retime['elapsed']:.2f} s) |")
    print(f"| TOPP-RA optimum, same v/a limits, no jerk | {retime['toppra_s']:.3f} s |")
    print(f"| fastest / TOPP-RA | {retime['fastest_s'] / retime['toppra_s']:.3f} |")


if __name__ == "__main__":
    main()
