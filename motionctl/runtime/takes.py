"""Takes: everything a run did, written so that a crash loses at most the last second.

A take is a directory ``takes/<date>-<time>_<move>/`` holding

* ``meta.json``: what was run (move, rig, rate, axes, start timecode); rewritten atomically at the end
  with the summary.  A take without ``"finished"`` in it was cut short (crash, power, ``kill -9``).
* ``samples.csv``: one row per servo tick: commanded and measured value and following error of every
  axis, loop lateness, state, frame and timecode.  Rows are buffered and flushed *and fsynced* at least
  once a second, so after a crash the file holds every row up to the last second (the reader ignores
  a torn last line).
* ``events.jsonl``: state changes, faults and operator actions, one JSON object per line, fsynced each.
"""

from __future__ import annotations

import csv
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from motionctl.fileio import write_atomic

FLUSH_EVERY_S = 1.0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "take"


class TakeWriter:
    """Append-only, crash-safe writer of one take.

    The servo thread only queues raw values (no formatting, no I/O); a writer thread formats them and
    writes, flushes and fsyncs the file at least once a second (events at once), so a slow disk never
    stalls a servo cycle and a crash loses at most the last second.
    """

    def __init__(self, root: Path | str, meta: dict[str, Any], axis_names: tuple[str, ...], rate_hz: int) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        base = root / f"{stamp}_{_slug(str(meta.get('move', 'take')))}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        path.mkdir()
        self.path = path
        self.axis_names = axis_names
        self.meta = {**meta, "axes": list(axis_names), "rate_hz": rate_hz,
                     "created": datetime.now(UTC).isoformat(timespec="seconds")}
        write_atomic(path / "meta.json", json.dumps(self.meta, indent=1, default=str) + "\n")
        self._samples = open(path / "samples.csv", "w", newline="", encoding="utf-8")
        self._events = open(path / "events.jsonl", "a", encoding="utf-8")
        header = ["tick", "t_s", "state", "frame", "timecode", "late_us"]
        for name in axis_names:
            header += [f"cmd_{name}", f"meas_{name}", f"ferr_{name}"]
        self._samples.write(",".join(header) + "\n")
        self._rows: list[tuple] = []
        self._event_lines: list[str] = []
        self._clock = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.rows = 0
        self.closed = False
        self._thread = threading.Thread(target=self._writer, name="take-writer", daemon=True)
        self._thread.start()

    def sample(self, tick: int, t_s: float, state: str, frame: int, timecode: str, late_us: float,
               commanded: NDArray[np.float64], measured: NDArray[np.float64] | None,
               following: NDArray[np.float64] | None) -> None:
        """Queue one servo tick (cheap: the arrays are copied, formatting happens on the writer thread)."""
        row = (tick, t_s, state, frame, timecode, late_us, np.array(commanded, dtype=float),
               None if measured is None else np.array(measured, dtype=float),
               None if following is None else np.array(following, dtype=float))
        with self._lock:
            self._rows.append(row)
        self.rows += 1

    def use_clock(self, clock: Any) -> None:
        """Stamp events with the run's clock.  In simulated time an event carries only simulated time
        (``t_host``, seconds): no wall-clock stamp, so two runs of a move write the same bytes."""
        self._clock = clock

    def event(self, kind: str, message: str, **data: Any) -> None:
        clock = self._clock
        if clock is not None and clock.simulated:
            record = {"t_host": clock.now_ns() / 1e9, "kind": kind, "message": message, **data}
        else:
            now = clock.now_ns() / 1e9 if clock is not None else time.monotonic()
            record = {"t_host": now, "wall": datetime.now(UTC).isoformat(timespec="milliseconds"),
                      "kind": kind, "message": message, **data}
        with self._lock:
            self._event_lines.append(json.dumps(record, default=str) + "\n")
        self._wake.set()

    def _format(self, row: tuple) -> str:
        tick, t_s, state, frame, timecode, late_us, commanded, measured, following = row
        cells = [str(tick), repr(float(t_s)), state, str(frame), timecode, f"{late_us:.1f}"]
        for i in range(len(self.axis_names)):
            cells.append(repr(float(commanded[i])))
            cells.append(repr(float(measured[i])) if measured is not None else "")
            cells.append(repr(float(following[i])) if following is not None else "")
        return ",".join(cells) + "\n"

    def _drain(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            events, self._event_lines = self._event_lines, []
        if rows:
            self._samples.write("".join(self._format(r) for r in rows))
            self._samples.flush()
            os.fsync(self._samples.fileno())
        if events:
            self._events.write("".join(events))
            self._events.flush()
            os.fsync(self._events.fileno())

    def _writer(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY_S)
            self._wake.clear()
            self._drain()

    def flush(self) -> None:
        """Write everything queued so far, now (from the caller's thread)."""
        self._drain()

    def finish(self, summary: dict[str, Any]) -> None:
        if self.closed:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(5.0)
        self._drain()
        self._samples.close()
        self._events.close()
        self.meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.meta["summary"] = summary
        write_atomic(self.path / "meta.json", json.dumps(self.meta, indent=1, default=str) + "\n")
        self.closed = True


@dataclass
class Take:
    path: Path
    meta: dict[str, Any]
    columns: list[str]
    rows: list[list[str]]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return "finished" in self.meta

    def column(self, name: str) -> NDArray[np.float64]:
        index = self.columns.index(name)
        return np.array([float(r[index]) if r[index] else np.nan for r in self.rows])

    @property
    def duration_s(self) -> float:
        return float(self.rows[-1][1]) if self.rows else 0.0


def read_take(path: Path | str) -> Take:
    """Read a take, complete or cut short (a torn last row and a torn last event are skipped)."""
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    text = (path / "samples.csv").read_text(encoding="utf-8") if (path / "samples.csv").exists() else ""
    lines = text.split("\n")
    if lines and lines[-1] != "":
        lines = lines[:-1]                  # torn last row: written but not newline-terminated
    reader = list(csv.reader(line for line in lines if line))
    columns, rows = (reader[0], reader[1:]) if reader else ([], [])
    rows = [r for r in rows if len(r) == len(columns)]
    events = []
    events_path = path / "events.jsonl"
    if events_path.exists():
        for line in events_path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return Take(path, meta, columns, rows, events)


def list_takes(root: Path | str) -> list[Take]:
    root = Path(root)
    if not root.is_dir():
        return []
    takes = []
    for entry in sorted(root.iterdir()):
        if (entry / "meta.json").is_file():
            try:
                takes.append(read_take(entry))
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue
    return takes


def take_headers(root: Path | str, last: int = 50) -> list[tuple[Path, dict[str, Any]]]:
    """(path, meta) of the newest ``last`` takes, reading only their meta.json (cheap enough for a UI)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for entry in sorted(root.iterdir())[-last:]:
        try:
            out.append((entry, json.loads((entry / "meta.json").read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
    return out
