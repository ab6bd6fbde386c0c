"""Camera track files in motionctl's own row formats (CSV, JSON), and the helpers every format shares.

CSV and JSON are motionctl's own ``export --format csv|json`` files (stage frame, metres and degrees):

* CSV: a header of ``frame`` and/or ``timecode``, ``x_m y_m z_m pan_deg tilt_deg roll_deg``, optional
  ``t_s`` (checked against the frame), ``focus iris zoom`` and ``follow.<axis>`` (a rig's follow axis in
  m or deg, as ``export`` writes it for a rig that has one); ``# key=value`` comment lines give ``fps``,
  ``start`` and ``name``.  Without a frame rate from the caller or a comment, the rate is taken from
  ``t_s`` (``;`` in the timecodes makes it drop-frame).
* JSON: the export dict (``fps``, ``start``, ``frames: [rows]``) or a plain list of rows.

Nuke ``.chan`` and USD live in :mod:`motionctl.vcam.tracks_dcc`, which builds on the helpers here;
:mod:`motionctl.vcam.track_files` picks the format of a file and calls the reader or writer.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from motionctl.errors import InputError, TimecodeError
from motionctl.timecode import FRAME_RATES, FrameRate, RateLike, Timecode, frame_to_label, label_to_frame
from motionctl.vcam.tracks import CAMERA_COLUMNS, FOLLOW_PREFIX, LENS_AXES, CameraTrack

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
ROW_COLUMNS = ("frame", "timecode", "t_s", *CAMERA_COLUMNS, *LENS_AXES)


def _suggest(word: str, choices) -> str:
    from motionctl.spec.source import suggest
    return suggest(word, choices)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InputError(f"cannot read the file: {reason}", file=str(path)) from None


def _at(line: Any) -> int | None:
    """A line number, or a function that finds it (JSON lines are only looked up for an error)."""
    return line() if callable(line) else line


def resolve_rate(fps: RateLike | None, from_file: tuple[Any, Any] | None, file: str) -> FrameRate | None:
    """The caller's rate, the file's, or both when they agree."""
    given = None
    if fps is not None:
        try:
            given = FrameRate.parse(fps)
        except TimecodeError as exc:
            raise InputError(f"fps: {exc.message}") from None
    if from_file is None:
        return given
    value, where = from_file
    try:
        found = FrameRate.parse(value)
    except TimecodeError as exc:
        raise InputError(exc.message, file=file, key="fps", line=_at(where)) from None
    if given is not None and given != found:
        raise InputError(f"the file says {found} but {given} was given", file=file, key="fps", line=_at(where))
    return found


# -- rows (CSV and JSON) ------------------------------------------------------------------------------

def _rows_to_track(rows: list[dict[str, Any]], where: Callable[[int, str | None], int | None], file: str,
                   fps: RateLike | None, meta: dict[str, tuple[Any, int | None]], name: str) -> CameraTrack:
    """Rows of column -> text or number into a track; ``where(row, column)`` gives the line of a cell."""
    def fail(i: int | None, column: str | None, message: str) -> InputError:
        return InputError(message, file=file, key=column, line=where(i, column))

    def column_fail(column: str | None, message: str) -> InputError:   # CSV: the header; JSON: the first row
        line = meta["header"][1] if "header" in meta else where(0, column)
        return InputError(message, file=file, key=column, line=line)

    if not rows:
        raise fail(None, None, "the track has no rows")
    columns = list(rows[0])
    for c in columns:
        if c not in ROW_COLUMNS and not (c.startswith(FOLLOW_PREFIX) and len(c) > len(FOLLOW_PREFIX)):
            raise column_fail(c, f'unknown column "{c}"{_suggest(c, ROW_COLUMNS)}')
    for c in CAMERA_COLUMNS:
        if c not in columns:
            raise column_fail(None, f'missing column "{c}"')
    if "frame" not in columns and "timecode" not in columns:
        raise column_fail(None, 'missing column "frame" (or "timecode")')
    numbers = [c for c in columns if c not in ("frame", "timecode")]
    values = np.empty((len(rows), len(numbers)))
    raw_frames: list[int] = []
    labels: list[str] = []
    for i, row in enumerate(rows):
        if list(row) != columns:
            missing = [c for c in columns if c not in row]
            extra = [c for c in row if c not in columns]
            raise fail(i, None, f'missing "{missing[0]}"' if missing else f'unexpected "{extra[0]}"'
                       if extra else "columns in a different order from the first row")
        for j, c in enumerate(numbers):
            values[i, j] = parse_number(row[c], lambda m, c=c: fail(i, c, m))
        if "frame" in row:
            raw_frames.append(_whole(row["frame"], lambda m: fail(i, "frame", m)))
        if "timecode" in row:
            if not isinstance(row["timecode"], str):
                raise fail(i, "timecode", f"timecode must be a label (10:00:00:00), not {row['timecode']!r}")
            labels.append(row["timecode"].strip())
    col = {c: values[:, j] for j, c in enumerate(numbers)}
    rate = resolve_rate(fps, meta.get("fps"), file)
    if rate is None:
        rate = _rate_from_times(raw_frames, labels, col.get("t_s"))
    if rate is None:
        raise fail(None, None, "no frame rate: give fps (--fps) or add a line '# fps=25'")
    start_meta = meta.get("start")
    start = None
    if start_meta is not None:
        try:
            start = Timecode.parse(str(start_meta[0]), rate)
        except TimecodeError as exc:
            raise InputError(exc.message, file=file, key="start", line=_at(start_meta[1])) from None
    day = rate.frames_per_day
    parsed = []
    for i, label in enumerate(labels):
        try:
            parsed.append(label_to_frame(label, rate))
        except TimecodeError as exc:
            raise fail(i, "timecode", exc.message) from None
    if raw_frames:
        frames = raw_frames
        if parsed:
            if start is None:
                start = Timecode((parsed[0] - frames[0]) % day, rate)
            for i, (f, tc) in enumerate(zip(frames, parsed)):
                if (start.frame + f) % day != tc:
                    raise fail(i, "timecode", f"timecode {labels[i]} is not frame {f} from the start "
                               f"{start.label} (that is {frame_to_label(start.frame + f, rate)})")
    else:
        if start is None:          # the first row is frame 0, or the frame t_s says it is
            first = round(col["t_s"][0] / float(rate.frame_duration)) if "t_s" in col else 0
            start = Timecode((parsed[0] - max(first, 0)) % day, rate)
        frames = [(tc - start.frame) % day for tc in parsed]
    start = start or Timecode(0, rate)
    for i in range(len(frames)):
        if frames[i] < 0:
            raise fail(i, "frame", f"frame {frames[i]} is negative")
        if i and frames[i] <= frames[i - 1]:
            raise fail(i, "frame", f"frame {frames[i]} does not come after frame {frames[i - 1]}")
    if "t_s" in col:
        expected = np.array(frames) * float(rate.frame_duration)
        off = np.flatnonzero(np.abs(col["t_s"] - expected) > 1e-6 + 1e-9 * np.abs(expected))
        if len(off):
            i = int(off[0])
            raise fail(i, "t_s", f"t_s {col['t_s'][i]!r} is not the time of frame {frames[i]} at {rate} "
                       f"({expected[i]!r} s): is the frame rate right?")
    lens = {k: col[k] for k in LENS_AXES if k in col}
    follow = {c[len(FOLLOW_PREFIX):]: col[c] for c in numbers if c.startswith(FOLLOW_PREFIX)}
    return CameraTrack(rate, start, np.array(frames, dtype=np.int64),
                       np.stack([col[c] for c in CAMERA_COLUMNS[:3]], 1),
                       np.stack([col[c] for c in CAMERA_COLUMNS[3:]], 1), lens, name, follow)


def parse_number(value: Any, fail: Callable[[str], InputError]) -> float:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise fail(f'"{value}" is not a number') from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise fail(f"{json.dumps(value)} is not a number")
    if not math.isfinite(number):
        raise fail(f"{value} is not a finite number")
    return number


def _whole(value: Any, fail: Callable[[str], InputError]) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise fail(f"frame must be a whole number, not {value!r}")


def _rate_from_times(frames: list[int], labels: list[str], times: NDArray[np.float64] | None,
                     ) -> FrameRate | None:
    """The rate implied by ``t_s`` and the frame numbers, or by ``t_s`` and the timecodes (unique match)."""
    if times is None or len(times) < 2 or times[-1] <= times[0]:
        return None
    drop = any(";" in label or "." in label for label in labels)
    if frames:
        if frames[-1] == frames[0]:
            return None
        try:
            fps = (frames[-1] - frames[0]) / (times[-1] - times[0])
            return FrameRate.parse(f"{fps:.6f}{'df' if drop else ''}")
        except TimecodeError:
            return None
    found = []
    for rate in FRAME_RATES.values():
        try:
            counts = np.array([label_to_frame(label, rate) for label in labels])
        except TimecodeError:
            continue
        counts = (counts - counts[0]) % rate.frames_per_day
        if np.all(np.abs(times - times[0] - counts * float(rate.frame_duration)) <= 1e-6):
            found.append(rate)
    return found[0] if len(found) == 1 else None


# -- CSV ----------------------------------------------------------------------------------------------

_META = re.compile(r"#\s*(fps|start|name)\s*[=:]\s*(.*?)\s*$", re.IGNORECASE)


def read_csv(text: str, file: str, fps: RateLike | None = None) -> CameraTrack:
    meta: dict[str, tuple[Any, int | None]] = {}
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            match = _META.match(stripped)
            if match:
                meta[match.group(1).lower()] = (match.group(2), number)
            continue
        cells = [c.strip() for c in next(csv.reader([stripped]))]
        if header is None:
            header = cells
            meta["header"] = ("", number)
            for i, c in enumerate(cells):
                if c in cells[:i]:
                    raise InputError(f'column "{c}" appears twice', file=file, line=number)
            continue
        if len(cells) != len(header):
            raise InputError(f"expected {len(header)} values (one per column of the header), "
                             f"got {len(cells)}", file=file, line=number)
        rows.append(dict(zip(header, cells)))
        lines.append(number)
    if header is None:
        raise InputError("no header line (frame,timecode,x_m,y_m,z_m,pan_deg,tilt_deg,roll_deg...)",
                         file=file)

    def where(i: int | None, column: str | None) -> int | None:
        return meta["header"][1] if i is None or not lines else lines[i]

    name = str(meta["name"][0]) if "name" in meta else Path(file).stem
    return _rows_to_track(rows, where, file, fps, meta, name)


def csv_text(track: CameraTrack) -> str:
    header = ["frame", "timecode", "t_s", *CAMERA_COLUMNS, *track.lens,
              *(FOLLOW_PREFIX + k for k in track.follow)]
    out = [f"# fps={track.fps.label}", f"# start={track.start.label}"]
    if track.name:
        out.append(f"# name={' '.join(track.name.split())}")
    out.append(",".join(header))
    labels, times = track.timecodes, track.times_s
    for i, f in enumerate(track.frames):
        numbers = [times[i], *track.position[i], *track.ptr[i], *(v[i] for v in track.lens.values()),
                   *(v[i] for v in track.follow.values())]
        out.append(",".join([str(int(f)), labels[i]] + [repr(float(x)) for x in numbers]))
    return "\n".join(out) + "\n"


# -- JSON ---------------------------------------------------------------------------------------------

def read_json(text: str, file: str, fps: RateLike | None = None) -> CameraTrack:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=file,
                         line=exc.lineno) from None
    lines: dict[str, int] | None = None

    def line(path: str) -> int | None:
        nonlocal lines
        if lines is None:
            lines = _json_lines(text)
        return lines.get(path)

    meta: dict[str, tuple[Any, int | None]] = {}
    prefix = ""
    name = Path(file).stem
    if isinstance(doc, dict):
        if "frames" not in doc or not isinstance(doc["frames"], list):
            raise InputError('expected "frames": [rows] (or a list of rows)', file=file, line=1)
        for key in ("fps", "start"):
            if key in doc:
                meta[key] = (doc[key], lambda key=key: line(key))
        if "fps" not in doc and isinstance(doc.get("frame_rate"), dict):
            rate = doc["frame_rate"]
            meta["fps"] = (f"{rate.get('num')}/{rate.get('den')}", lambda: line("frame_rate"))
        name = str(doc.get("move") or doc.get("name") or name)
        rows, prefix = doc["frames"], "frames"
        if "frame_count" in doc and doc["frame_count"] != len(rows):
            raise InputError(f"frame_count is {doc['frame_count']} but there are {len(rows)} frames",
                             file=file, key="frame_count", line=line("frame_count"))
    elif isinstance(doc, list):
        rows = doc
    else:
        raise InputError("expected an object with \"frames\" or a list of rows", file=file, line=1)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"row {i} is not an object", file=file, key=f"{prefix}[{i}]",
                             line=line(f"{prefix}[{i}]"))

    def where(i: int | None, column: str | None) -> int | None:
        path = f"{prefix}[{i}]" if i is not None else prefix
        return line(f"{path}.{column}") or line(path) if column else line(path)

    return _rows_to_track(rows, where, file, fps, meta, name)


def _json_lines(text: str) -> dict[str, int]:
    """Line of every value of a (valid) JSON document by path: ``frames[3].x_m``."""
    decoder = json.JSONDecoder()
    space = re.compile(r"[ \t\n\r]*")
    newlines = [m.start() for m in re.finditer("\n", text)]
    out: dict[str, int] = {}

    def skip(i: int) -> int:
        return space.match(text, i).end()

    def value(i: int, path: str) -> int:
        i = skip(i)
        out[path] = bisect.bisect_left(newlines, i) + 1
        if text[i] == "{":
            i = skip(i + 1)
            while text[i] != "}":
                key, i = json.decoder.scanstring(text, i + 1)
                i = value(skip(i) + 1, f"{path}.{key}" if path else key)
                i = skip(i)
                i = skip(i + 1) if text[i] == "," else i
            return i + 1
        if text[i] == "[":
            i, n = skip(i + 1), 0
            while text[i] != "]":
                i = skip(value(i, f"{path}[{n}]"))
                i, n = (skip(i + 1) if text[i] == "," else i), n + 1
            return i + 1
        return decoder.raw_decode(text, i)[1]

    value(0, "")
    return out


def json_text(track: CameraTrack) -> str:
    labels, times = track.timecodes, track.times_s
    rows = []
    for i, f in enumerate(track.frames):
        row: dict[str, Any] = {"frame": int(f), "timecode": labels[i], "t_s": float(times[i])}
        row.update({c: float(v) for c, v in zip(CAMERA_COLUMNS, [*track.position[i], *track.ptr[i]])})
        row.update({k: float(v[i]) for k, v in track.lens.items()})
        row.update({FOLLOW_PREFIX + k: float(v[i]) for k, v in track.follow.items()})
        rows.append(row)
    doc = {"move": track.name, "fps": track.fps.label, "start": track.start.label, "frame_count": len(rows),
           "frame_rate": {"num": track.fps.num, "den": track.fps.den}, "frames": rows}
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"
