"""Curves in a terminal: a braille-dot canvas (2 x 4 dots per cell) rendered as Rich text.

Hand-written rather than a plotting package: what the move screen needs is small (one or two series
against frames, dashed limit lines, shaded violation spans, a cursor) and must render identically in
SVG snapshot tests; textual-plotext would add a dependency tree for less control over exactly that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from rich.text import Text

_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))    # braille bit of (row % 4, col % 2)


@dataclass
class Series:
    values: np.ndarray
    style: str = "cyan"


@dataclass
class Chart:
    """Series against frame index 0..N-1 on a ``width`` x ``height`` cell canvas."""

    width: int
    height: int
    series: list[Series] = field(default_factory=list)
    limits: list[float] = field(default_factory=list)           # horizontal lines (dashed, red)
    spans: list[tuple[int, int]] = field(default_factory=list)  # (first, last) frames shaded as violations
    cursor: int | None = None                                   # a frame marked with a vertical line
    frames: int = 0

    def render(self, title: str = "", unit: str = "") -> Text:
        w, h = max(self.width, 8), max(self.height, 2)
        dots_w, dots_h = 2 * w, 4 * h
        values = [np.asarray(s.values, dtype=float) for s in self.series]
        finite = np.concatenate([v[np.isfinite(v)] for v in values] + [np.asarray(self.limits, dtype=float)]) \
            if values or self.limits else np.zeros(1)
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi - lo < 1e-12:
            lo, hi = lo - 1.0, hi + 1.0
        pad = 0.05 * (hi - lo)
        lo, hi = lo - pad, hi + pad
        frames = max(self.frames or max((len(v) for v in values), default=1), 1)

        def row_of(y: ArrayLike) -> np.ndarray:
            return np.clip(((hi - np.asarray(y, dtype=float)) / (hi - lo) * (dots_h - 1)).round(), 0, dots_h - 1).astype(int)

        def col_of(f: ArrayLike) -> np.ndarray:
            return np.clip((np.asarray(f, dtype=float) / max(frames - 1, 1) * (dots_w - 1)).round(), 0, dots_w - 1).astype(int)

        bits = np.zeros((h, w), dtype=np.int64)
        owner = np.full((h, w), -1, dtype=np.int64)            # which series (or -2 for a limit) drew a cell
        for k, limit in enumerate(self.limits):
            r = int(row_of(limit))
            for c in range(0, dots_w, 3):
                bits[r // 4, c // 2] |= _DOTS[r % 4][c % 2]
                owner[r // 4, c // 2] = -2
        for index, v in enumerate(values):
            if not len(v):
                continue
            cols = col_of(np.arange(len(v)) * (frames - 1) / max(len(v) - 1, 1))
            rows = row_of(v)
            # join consecutive points with vertical runs so steep curves stay connected
            for c0, r0, c1, r1 in zip(cols[:-1], rows[:-1], cols[1:], rows[1:]):
                for c in range(c0, c1 + 1):
                    a, b = sorted((r0, r1)) if c == c1 else (r0, r0)
                    for r in range(a, b + 1):
                        bits[r // 4, c // 2] |= _DOTS[r % 4][c % 2]
                        owner[r // 4, c // 2] = index
            if len(v) == 1:
                bits[rows[0] // 4, cols[0] // 2] |= _DOTS[rows[0] % 4][cols[0] % 2]
                owner[rows[0] // 4, cols[0] // 2] = index
        shaded = np.zeros(w, dtype=bool)
        for first, last in self.spans:
            shaded[int(col_of(first)) // 2: int(col_of(last)) // 2 + 1] = True
        cursor_col = int(col_of(self.cursor)) // 2 if self.cursor is not None else -1

        text = Text()
        label_w = 9
        for r in range(h):
            label = f"{hi - (hi - lo) * r / max(h - 1, 1):>{label_w - 1}.3g} " if r in (0, h - 1) else " " * label_w
            text.append(label, style="dim")
            for c in range(w):
                ch = chr(0x2800 + int(bits[r, c])) if bits[r, c] else ("│" if c == cursor_col else " ")
                who = owner[r, c]
                style = (self.series[who].style if who >= 0 else "red" if who == -2 else "yellow")
                if shaded[c]:
                    style += " on dark_red"
                text.append(ch, style=style)
            text.append("\n")
        text.append(" " * label_w + f"frame 0{'':>{max(w - 14, 1)}}{frames - 1}", style="dim")
        if title:
            text = Text(f"{title}" + (f" ({unit})" if unit else "") + "\n", style="bold") + text
        return text


def chart_for(values: Sequence[np.ndarray], styles: Sequence[str], width: int, height: int, **kw) -> Chart:
    return Chart(width, height, [Series(np.asarray(v), s) for v, s in zip(values, styles)], **kw)
