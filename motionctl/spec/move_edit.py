"""Editing a move file's text: put a taught key in, keep everything else byte for byte.

Operators teach keys into files they (or a pipeline) also edit by hand, with comments that matter, so the
file is not re-serialised from the model: the new ``[[key]]`` table is spliced into the text, in frame
order, replacing a key at the same frame.  Pure: text in, text out; the caller validates by loading it.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping

from motionctl.errors import InputError

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")


def _blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first line, end line) of each top-level ``[[key]]`` table, its sub-tables included."""
    out: list[tuple[int, int]] = []
    start = None
    for i, line in enumerate(lines):
        match = _HEADER.match(line)
        if not match:
            continue
        name = match.group(1).strip()
        if start is not None and not name.startswith("key."):
            out.append((start, i))
            start = None
        if line.lstrip().startswith("[[") and name == "key":
            start = i
    if start is not None:
        out.append((start, len(lines)))
    trimmed = []
    for first, end in out:          # blank and comment lines before the next table belong to it
        while end - 1 > first and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        trimmed.append((first, end))
    return trimmed


def _number(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0.0" if text in ("-0", "0") else (text if "." in text else text + ".0")


def key_table(frame: int, joints: Mapping[str, float], lens: Mapping[str, float], label: str = "") -> str:
    """A ``[[key]]`` table (values already in file units: metres, degrees, lens units)."""
    lines = ["[[key]]", f"frame = {int(frame)}"]
    if joints:
        lines.append("joints = { " + ", ".join(f"{k} = {_number(v)}" for k, v in joints.items()) + " }")
    if lens:
        lines.append("lens = { " + ", ".join(f"{k} = {_number(v)}" for k, v in lens.items()) + " }")
    if label:
        lines.append(f"label = {json.dumps(label, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def put_key(text: str, table: str, frame: int) -> str:
    """``text`` with ``table`` (one ``[[key]]``) placed in frame order, replacing a key at ``frame``."""
    lines = text.splitlines(keepends=True)
    blocks = _blocks(lines)
    frames = []
    for first, end in blocks:
        try:
            frames.append(int(tomllib.loads("".join(lines[first:end]))["key"][0]["frame"]))
        except (tomllib.TOMLDecodeError, KeyError, IndexError, TypeError, ValueError):
            raise InputError(f"cannot teach into this file: the key table at line {first + 1} is not "
                             "readable on its own") from None
    block = table if table.endswith("\n") else table + "\n"
    for (first, end), existing in zip(blocks, frames):
        if existing == frame:
            return "".join(lines[:first]) + block + "".join(lines[end:])
        if existing > frame:
            return "".join(lines[:first]) + block + "\n" + "".join(lines[first:])
    body = "".join(lines)
    if body and not body.endswith("\n"):
        body += "\n"
    return body + ("\n" if body.strip() else "") + block
