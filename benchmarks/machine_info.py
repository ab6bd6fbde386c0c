"""The first line of every benchmark's output: the date and the machine it was measured on."""

from __future__ import annotations

import os
import platform
from datetime import date


def machine_line() -> str:
    """``date: YYYY-MM-DD; machine: <CPU model>, <N> cores`` (callers append what else they report)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"date: {date.today().isoformat()}; machine: {cpu}, {os.cpu_count()} cores"
