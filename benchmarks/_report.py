"""Write one benchmark's section into docs/benchmarks.md (shared by every benchmarks/bench_*.py).

Each section lives between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; rerunning a
benchmark replaces only its own block. The machine description is added to every block.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
TITLE = "# Benchmarks\n\nEach section is written by its script in `benchmarks/` (rerun it to refresh).\n"


def machine_description() -> str:
    """Platform, Python version, CPU count and memory of this machine, as one Markdown line."""
    mem = "unknown"
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:  # pragma: no cover
        pass
    return (
        f"Machine: {platform.platform()}, Python {platform.python_version()} "
        f"({sys.implementation.name}), {os.cpu_count()} CPUs, {mem} memory."
    )


class StealMeter:
    """Share of this machine's CPU time the hypervisor gave to others (Linux ``steal``) since start.

    On a shared virtual machine the same benchmark runs up to twice as slow when the host is
    busy; a report that states the steal lets a reader tell the host from the code.
    """

    def __init__(self) -> None:
        import psutil

        self._start = psutil.cpu_times()

    def percent(self) -> float | None:
        import psutil

        now = psutil.cpu_times()
        if not hasattr(now, "steal"):
            return None
        total = sum(now) - sum(self._start)
        return 100.0 * (now.steal - self._start.steal) / total if total > 0 else None

    def text(self) -> str:
        """``percent`` for a report table: ``12%``, or ``n/a`` where the OS does not count steal."""
        value = self.percent()
        return "n/a" if value is None else f"{value:.0f}%"


def write_section(name: str, markdown: str, doc: Path = DOC) -> None:
    """Replace (or append) the block of benchmark ``name`` in docs/benchmarks.md."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{start}\n{markdown.strip()}\n\n{machine_description()} Run at {stamp}.\n{end}"
    text = doc.read_text() if doc.exists() else TITLE
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
