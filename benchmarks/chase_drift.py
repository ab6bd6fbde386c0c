"""Benchmark: a 10-minute chase of an LTC stream over the real serial wire: start error and drift.

Writes a 10-minute move (slow sweeps along the track, 25 fps) and a WAV of LTC that starts 3 s before
the move's start timecode, then runs ``motionctl run MOVE --sim --transport serial --timecode ltc:WAV
--freed/--otrk`` (the real streamer, serial driver, a simulated controller in its own process, LTC decoded
as the audio clock plays it).  Reports the start error and the sync error at the end and at its worst, in
servo ticks, and the latency from a measured state arriving to its vcam datagram leaving.
Optionally ``--speed 1.001`` plays the LTC 0.1 % fast (a deck off speed) to show the chase follows it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from machine_info import machine_line

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from motionctl.ltc import encode, write_wav  # noqa: E402
from motionctl.timecode import FrameRate, Timecode  # noqa: E402


def long_move(path: Path, minutes: float) -> None:
    frames = int(minutes * 60 * 25)
    lines = ['name = "chase-10min"', f'rig = "{ROOT / "rigs" / "ur10e_track.toml"}"',
             f'stage = "{ROOT / "rigs" / "stages" / "led_volume.toml"}"', 'fps = "25"', 'start = "01:00:00:00"']
    keys = np.linspace(0, frames, int(frames / 250) + 1).astype(int)
    for i, f in enumerate(keys):
        x = -1.5 if i % 2 == 0 else 1.5
        lines += ["[[key]]", f"frame = {f}",
                  f"camera = {{ position = [{x}, -0.9, 1.4], look_at = [{x * 0.3:.2f}, 2.0, 1.5] }}"]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=1.0, help="LTC playback speed (1.001 = 0.1 %% fast)")
    args = parser.parse_args()
    rate = FrameRate.parse("25")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        move = tmp / "chase.toml"
        long_move(move, args.minutes)
        start = Timecode.parse("01:00:00:00", rate) - 75
        sample_rate = int(round(48000 / args.speed))      # the same samples played at 48 kHz run fast
        count = int((args.minutes * 60 + 8) * 25)
        wav = tmp / "ltc.wav"
        write_wav(wav, encode(start.frame, count, rate, sample_rate), 48000)
        result = subprocess.run([sys.executable, "-m", "motionctl", "run", str(move), "--sim", "--transport",
                                 "serial", "--timecode", f"ltc:{wav}", "--freed", "127.0.0.1:40999", "--otrk",
                                 "127.0.0.1:40998", "--takes", str(tmp / "takes"), "--json"],
                                capture_output=True, text=True, cwd=ROOT, timeout=int(args.minutes * 60 * 2 + 600))
    summary = json.loads(result.stdout) if result.stdout.strip() else {"state": result.stderr[-500:]}
    print(f"{machine_line()}; LTC speed {args.speed}")
    print(json.dumps({k: summary.get(k) for k in ("state", "faults", "ticks", "start_error_ticks",
                                                  "max_sync_error_ticks", "final_sync_error_ticks", "timecode_speed",
                                                  "p99_late_us", "overruns")}, indent=1))
    print(json.dumps((summary.get("link") or {}).get("vcam"), indent=1))


if __name__ == "__main__":
    main()
