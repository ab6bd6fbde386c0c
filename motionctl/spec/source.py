"""Reading TOML files into checked values, with errors that name the file, the key path and the line.

Why not a schema library: the error line an operator sees is the product here.  ``tomllib`` gives no line
numbers for keys, so :func:`key_lines` recovers them with a small scan of the text, and :class:`Table`
wraps each parsed table so every lookup knows its own key path (``key[2].camera.position``) and can
raise a :class:`~motionctl.errors.SpecError` that points at the exact spot.  Unknown keys are errors with
a "did you mean" suggestion, because a misspelt key that is silently ignored is a move that does
something other than what was written.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motionctl.errors import SpecError

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_\-]+)\s*=")


def _split_dotted(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in text.split(".")]


def _scan(line: str, depth: int, quote: str | None) -> tuple[int, str | None]:
    """Bracket depth and open multi-line string (its delimiter) after ``line``.

    Strings and comments are skipped, so a bracket inside them does not count.
    """
    i = 0
    while i < len(line):
        if quote is not None:                       # inside a multi-line string
            if quote == '"""' and line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                quote = None
                i += 3
                continue
            i += 1
            continue
        char = line[i]
        if char == "#":
            break
        if line.startswith('"""', i) or line.startswith("'''", i):
            quote = line[i:i + 3]
            i += 3
            continue
        if char in "\"'":                          # a one-line string: skip to its end
            i += 1
            while i < len(line) and line[i] != char:
                i += 2 if char == '"' and line[i] == "\\" else 1
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return depth, quote


def key_lines(text: str) -> dict[str, int]:
    """Map dotted key paths (``key[1].camera.position``) to 1-based line numbers, best effort.

    Handles table headers (including ``[key.camera]``, a sub-table of the latest ``[[key]]``), arrays of
    tables (``key`` itself maps to its first ``[[key]]``), dotted keys and the keys of inline tables
    written on one line.  The continuation lines of multi-line strings and arrays are skipped, so they
    only ever *hide* keys, never mislabel them.
    """
    lines: dict[str, int] = {}
    counters: dict[str, int] = {}
    prefix = ""
    depth, quote = 0, None
    for number, raw in enumerate(text.split("\n"), start=1):    # TOML lines end at \n only (not U+2028)
        inside = depth > 0 or quote is not None
        depth, quote = _scan(raw, depth, quote)
        stripped = raw.strip()
        if inside or not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(raw)
        if header and not _ASSIGN.match(raw):
            depth = 0                               # the brackets of a header are not an open array
            parts = _split_dotted(header.group(2))
            name = ""
            for part in parts[:-1]:                 # parents that are arrays: their latest element
                name = f"{name}.{part}" if name else part
                if name in counters:
                    name = f"{name}[{counters[name]}]"
            name = f"{name}.{parts[-1]}" if name else parts[-1]
            if header.group(1) == "[[":
                index = counters.get(name, -1) + 1
                counters[name] = index
                lines.setdefault(name, number)
                prefix = f"{name}[{index}]"
            else:
                prefix = name
            lines.setdefault(prefix, number)
            continue
        assign = _ASSIGN.match(raw)
        if not assign:
            continue
        key = ".".join(_split_dotted(assign.group(1)))
        path = f"{prefix}.{key}" if prefix else key
        lines.setdefault(path, number)
        rest = raw[assign.end():]
        if "{" in rest:
            for inner in _INLINE_KEY.finditer(rest):
                lines.setdefault(f"{path}.{inner.group(1)}", number)
    return lines


@dataclass(frozen=True)
class Source:
    """Where a table came from: the file (as the user named it) and its key -> line map."""

    file: str
    lines: dict[str, int]

    def line_of(self, key: str) -> int | None:
        """The line of ``key`` or of its nearest parent that has one."""
        while key:
            if key in self.lines:
                return self.lines[key]
            cut = max(key.rfind("."), key.rfind("["))
            key = key[:cut] if cut > 0 else ""
        return None

    def error(self, key: str, message: str) -> SpecError:
        return SpecError(one_line(message), file=self.file, key=one_line(key) or None,
                         line=self.line_of(key) if key else None)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with control characters (newlines above all) escaped, so an error stays one line.

    Key names and values quoted in messages come from the file and may hold any character.
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def read_toml(path: Path | str) -> tuple[dict[str, Any], Source]:
    """Read and parse a TOML file; every failure becomes a one-line :class:`SpecError`."""
    path = Path(path)
    shown = one_line(str(path))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("file not found", file=shown) from None
    except IsADirectoryError:
        raise SpecError("is a directory, expected a TOML file", file=shown) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", file=shown) from None
    except ValueError as exc:  # e.g. a NUL character in the path, which no file can have
        raise SpecError(f"not a valid file name ({exc})", file=shown) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (byte {exc.start})", file=shown) from None
    return parse_toml(text, shown)


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def parse_toml(text: str, file: str) -> tuple[dict[str, Any], Source]:
    """Parse TOML text that came from ``file`` (used in messages only)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_AT.search(message)
        line = int(found.group(1)) if found else None
        message = _TOML_AT.sub("", message)
        raise SpecError(f"TOML syntax error: {message}", file=file, line=line) from None
    except (ValueError, RecursionError) as exc:  # e.g. absurdly nested input
        raise SpecError(f"TOML syntax error: {exc}", file=file) from None
    return doc, Source(file, key_lines(text))


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice close enough to ``word`` to be a misspelling of it (or of which it is one), if any."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean "x"?)' hint, or '' when nothing is close."""
    close = closest(word, choices)
    return f' (did you mean "{close}"?)' if close else ""


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class Table:
    """A parsed TOML table that knows its key path, so every check can say where it failed.

    Reading a key marks it as used; :meth:`finish` then reports any key nobody read as unknown,
    with a suggestion.  All numeric getters reject NaN and infinity.
    """

    def __init__(self, data: dict[str, Any], source: Source, path: str = "") -> None:
        self._data = data
        self.source = source
        self.path = path
        self._used: set[str] = set()

    # -- plumbing -----------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str | None, message: str) -> SpecError:
        return self.source.error(self.key(name) if name else self.path, message)

    def has(self, name: str) -> bool:
        return name in self._data

    def keys(self) -> list[str]:
        return list(self._data)

    def raw(self, name: str, default: Any = None) -> Any:
        self._used.add(name)
        return self._data.get(name, default)

    def _need(self, name: str) -> Any:
        self._used.add(name)
        if name not in self._data:
            # A key that is there but misspelt is the likeliest cause: name it (the unknown-key check that
            # would catch it only runs after every required key was read).
            close = closest(name, [k for k in self._data if k not in self._used])
            hint = f' (is "{close}" a misspelling of it?)' if close else ""
            raise self.error(None, f'missing required key "{name}"{hint}')
        return self._data[name]

    def finish(self, allowed: Iterable[str] | None = None) -> None:
        """Raise on the first key that was never read (or is not in ``allowed``)."""
        known = set(allowed) if allowed is not None else self._used
        for name in self._data:
            if name not in known:
                raise self.error(name, f'unknown key "{name}"{suggest(name, known)}')

    # -- typed getters ------------------------------------------------------------------------------
    def table(self, name: str, *, required: bool = True) -> Table | None:
        value = self._need(name) if required else self.raw(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table, got {_type_name(value)}")
        return Table(value, self.source, self.key(name))

    def tables(self, name: str, *, required: bool = False) -> list[Table]:
        """An array of tables (``[[name]]``)."""
        value = self._need(name) if required else self.raw(name, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(name, f"expected an array of tables ([[{name}]]), got {_type_name(value)}")
        return [Table(item, self.source, f"{self.key(name)}[{i}]") for i, item in enumerate(value)]

    def string(self, name: str, default: str | None = None, *, required: bool = False,
               choices: Iterable[str] | None = None) -> str | None:
        value = self._need(name) if required else self.raw(name, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {_type_name(value)}")
        if choices is not None:
            options = list(choices)
            if value not in options:
                listed = ", ".join(f'"{c}"' for c in options)
                raise self.error(name, f'"{value}" is not one of {listed}{suggest(value, options)}')
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {_type_name(value)}")
        return value

    def number(self, name: str, default: float | None = None, *, required: bool = False,
               minimum: float | None = None, maximum: float | None = None,
               positive: bool = False) -> float | None:
        value = self._need(name) if required else self.raw(name, default)
        if value is None:
            return None
        return check_number(value, self.error, name, minimum=minimum, maximum=maximum, positive=positive)

    def integer(self, name: str, default: int | None = None, *, required: bool = False,
                minimum: int | None = None) -> int | None:
        value = self._need(name) if required else self.raw(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value = int(value)
            else:
                raise self.error(name, f"expected a whole number, got {_type_name(value)} {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(name, f"must be >= {minimum}, got {value}")
        return value

    def vector(self, name: str, length: int, default: tuple[float, ...] | None = None, *,
               required: bool = False) -> tuple[float, ...] | None:
        value = self._need(name) if required else self.raw(name, default)
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or len(value) != length:
            got = f"{len(value)} values" if isinstance(value, (list, tuple)) else _type_name(value)
            raise self.error(name, f"expected an array of {length} numbers, got {got}")
        return tuple(check_number(v, self.error, name) for v in value)

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, "expected an array of strings")
        return tuple(value)

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every key and value (marks them all used: the caller checks them itself)."""
        for name, value in self._data.items():
            self._used.add(name)
            yield name, value


def check_number(value: Any, error: Any, name: str, *, minimum: float | None = None,
                 maximum: float | None = None, positive: bool = False) -> float:
    """Validate one finite number; ``error(name, message)`` builds the exception."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(name, f"expected a number, got {_type_name(value)} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise error(name, f"must be a finite number, got {value!r}")
    if positive and number <= 0:
        raise error(name, f"must be greater than 0, got {value!r}")
    if minimum is not None and number < minimum:
        raise error(name, f"must be >= {minimum:g}, got {value!r}")
    if maximum is not None and number > maximum:
        raise error(name, f"must be <= {maximum:g}, got {value!r}")
    return number
