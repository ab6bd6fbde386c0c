"""Camera track files by format: which format a file is, and the reader or writer for it.

The formats themselves live in :mod:`motionctl.vcam.tracks_formats` (CSV, JSON and the shared helpers)
and :mod:`motionctl.vcam.tracks_dcc` (Nuke ``.chan``, USD); this module only picks between them, so the
imports run one way: here -> dcc -> formats -> tracks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from motionctl.errors import InputError
from motionctl.fileio import write_atomic
from motionctl.timecode import RateLike
from motionctl.vcam import tracks_dcc
from motionctl.vcam.tracks import CameraTrack
from motionctl.vcam.tracks_formats import csv_text, json_text, read_csv, read_json, read_text

FORMATS = ("csv", "json", "chan", "usd")
_EXTENSIONS = {".csv": "csv", ".json": "json", ".chan": "chan", ".usd": "usd", ".usda": "usd", ".usdc": "usd",
               ".usdz": "usd"}


def format_of(path: Path | str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise InputError(f'cannot tell the camera track format from "{suffix or Path(path).name}": use .csv, '
                         ".json, .chan or .usd, or give the format", file=str(path))
    return _EXTENSIONS[suffix]


def read(path: Path, fmt: str, fps: RateLike | None, units: str | None, **options: Any) -> CameraTrack:
    allowed = {"csv": (), "json": (), "chan": ("start", "rotation_order", "lens_column", "sensor_height_mm"),
               "usd": ("camera",)}[fmt]
    for key in options:
        if key not in allowed:
            raise InputError(f'option "{key}" does not apply to {fmt} files', file=str(path))
    if fmt in ("csv", "json") and units not in (None, "m"):
        raise InputError(f"{fmt} camera tracks are in metres (x_m ...): units apply to .chan and USD files",
                         file=str(path))
    if fmt == "usd":
        return tracks_dcc.read_usd(path, fps, units, **options)
    text = read_text(path)
    reader = {"csv": read_csv, "json": read_json, "chan": tracks_dcc.read_chan}[fmt]
    return reader(text, str(path), fps, **({"units": units} if fmt == "chan" else {}), **options)


def write(track: CameraTrack, path: Path, fmt: str, **options: Any) -> Path:
    allowed = {"csv": (), "json": (), "chan": ("units", "rotation_order", "lens_column", "sensor_height_mm"),
               "usd": ()}[fmt]
    for key, value in options.items():
        if key not in allowed and not (key == "units" and value in (None, "m")):
            raise InputError(f'option "{key}" does not apply to {fmt} files', file=str(path))
    if fmt != "chan":
        options.pop("units", None)
    if fmt == "usd":
        return tracks_dcc.write_usd(track, path)
    text = {"csv": csv_text, "json": json_text, "chan": tracks_dcc.chan_text}[fmt](track, **options)
    return write_atomic(path, text)
