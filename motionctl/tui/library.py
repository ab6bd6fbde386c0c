"""The move library: move files found in folders, each planned and checked once (cached by mtime).

Planning takes a fraction of a second to a few seconds a move, so it runs on worker threads; the terminal
UI shows a verdict per move as it arrives.  No Textual here: pipelines and tests use it directly.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from motionctl.errors import InputError, MotionctlError
from motionctl.planner import Plan, plan_scene
from motionctl.spec import load_scene


class Verdict(Enum):
    UNCHECKED = "…"
    LEGAL = "legal"
    ILLEGAL = "illegal"
    BAD_FILE = "bad file"

    @property
    def phrase(self) -> str:
        """The verdict in a sentence: "x.toml is {phrase}" ("is a bad file", never "is bad file")."""
        return {Verdict.BAD_FILE: "a bad file", Verdict.UNCHECKED: "not checked yet"}.get(self, self.value)


@dataclass(frozen=True)
class Entry:
    """One move file and what its check said."""

    path: Path
    verdict: Verdict = Verdict.UNCHECKED
    summary: str = ""                 # worst violation, or the file error, in one line
    plan: Plan | None = None
    #: SHA-256 of the file's bytes the plan was made from: a take names exactly which plan it ran.
    digest: str = ""


def shown(path: Path | str) -> str:
    """A path as an operator reads it: relative to the working folder when it is inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def find_moves(folders: list[Path]) -> list[Path]:
    """Every ``*.toml`` move under ``folders`` (sub-folders too, so ``moves/illegal`` shows), sorted."""
    seen: dict[Path, None] = {}
    for folder in folders:
        if folder.is_file():
            seen[folder.resolve()] = None
            continue
        for path in sorted(folder.rglob("*.toml")):
            seen[path.resolve()] = None
    return list(seen)


class Library:
    """Move entries with thread-safe, cached checks."""

    def __init__(self, folders: list[Path], rate_hz: int | None = None) -> None:
        self.folders = folders
        self.rate_hz = rate_hz
        self._lock = threading.Lock()
        self._entries: dict[Path, Entry] = {}
        self._mtimes: dict[Path, float] = {}
        self.rescan()

    def rescan(self) -> None:
        with self._lock:
            paths = find_moves(self.folders)
            self._entries = {p: self._entries.get(p, Entry(p)) for p in paths}

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def add(self, path: Path) -> None:
        with self._lock:
            self._entries.setdefault(path.resolve(), Entry(path.resolve()))

    def invalidate(self) -> None:
        """Forget every verdict: the next check plans each move again."""
        with self._lock:
            self._mtimes.clear()
            self._entries = {p: Entry(p) for p in self._entries}

    def check(self, path: Path) -> Entry:
        """Plan and check ``path`` (or return the cached result if the file did not change)."""
        path = path.resolve()
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            entry = Entry(path, Verdict.BAD_FILE, f"cannot read {path.name}: {exc.strerror}")
            return self._store(path, entry, None)
        with self._lock:
            cached = self._entries.get(path)
            if cached is not None and cached.verdict is not Verdict.UNCHECKED and self._mtimes.get(path) == mtime:
                return cached
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            scene = load_scene(path)
            plan = plan_scene(scene, self.rate_hz)
            if path.stat().st_mtime != mtime:    # written while we read it: what was planned is unknown
                return self.check(path)
        except OSError as exc:
            return self._store(path, Entry(path, Verdict.BAD_FILE, f"cannot read {path.name}: {exc.strerror}"), None)
        except InputError as exc:
            return self._store(path, Entry(path, Verdict.BAD_FILE, str(exc)), mtime)
        except MotionctlError as exc:
            return self._store(path, Entry(path, Verdict.ILLEGAL, str(exc)), mtime)
        if plan.ok:
            report = plan.report
            clearance = report.extra.get("min_clearance_m")
            summary = f"{report.duration_s:.1f} s" + (f", min clearance {1000 * clearance:.0f} mm"
                                                      if clearance is not None else "")
            return self._store(path, Entry(path, Verdict.LEGAL, summary, plan, digest), mtime)
        worst = plan.report.violations[0].message if plan.report.violations else "not legal"
        return self._store(path, Entry(path, Verdict.ILLEGAL, worst, plan, digest), mtime)

    def _store(self, path: Path, entry: Entry, mtime: float | None) -> Entry:
        with self._lock:
            self._entries[path] = entry
            if mtime is not None:
                self._mtimes[path] = mtime
        return entry
