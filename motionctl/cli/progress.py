"""A progress bar on stderr for work that can take more than a second (quiet when not a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(title: str, enabled: bool | None = None) -> Iterator[Callable[[str, float], None]]:
    """Yield ``update(stage, fraction)``; draws a transient rich bar when stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda stage, fraction: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[stage]}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(title, total=1.0, stage="")

        def update(stage: str, fraction: float) -> None:
            bar.update(task, completed=fraction, stage=stage)

        yield update
