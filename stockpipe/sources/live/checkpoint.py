"""Per-source checkpoint: per symbol, the high-water mark of what the producer has delivered.

A mark is the newest ``bar_ts`` sent for ``(symbol, interval)`` and a digest of that bar's
values (open, high, low, close, volume). ``fresh`` keeps only bars newer than the mark, plus the
newest bar again when its values changed (an intraday bar still forming). ``advance`` moves the
marks and ``save`` writes the file atomically; callers save only **after the producer's flush
succeeded**, so a restart (also after ``kill -9``) neither re-sends old bars nor skips new ones:
at worst the bars of the last unflushed batch are sent again, with the same key and values, and
silver keeps them once.

The file also carries a small ``extra`` dict a source may use for its own state (e.g. the
request times of a daily quota), saved in the same atomic write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockpipe.errors import StockpipeError
from stockpipe.sources.live.atomic import write_json_atomic

if TYPE_CHECKING:
    from stockpipe.contract import Bar
    from stockpipe.settings import Settings

VERSION = 1


def bar_digest(bar: Bar) -> str:
    """A short hash of the bar's values (not of ``produced_at``): equal bars, equal digests."""
    text = f"{bar.open!r}|{bar.high!r}|{bar.low!r}|{bar.close!r}|{bar.volume}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Mark:
    bar_ts: datetime
    digest: str


def checkpoint_path(settings: Settings, source: str) -> Path:
    """``<data>/state/live/<source>.checkpoint.json``."""
    return settings.state_dir / "live" / f"{source}.checkpoint.json"


class CheckpointError(StockpipeError):
    """The checkpoint file exists but cannot be read."""


class Checkpoint:
    """High-water marks per ``(symbol, interval)`` of one source, loaded from and saved to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marks: dict[tuple[str, str], Mark] = {}
        self.extra: dict[str, Any] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            for key, value in data.get("marks", {}).items():
                symbol, interval = key.split("|", 1)
                self.marks[symbol, interval] = Mark(datetime.fromisoformat(value["bar_ts"]), value["digest"])
            self.extra = dict(data.get("extra", {}))
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise CheckpointError(
                f"The checkpoint {self.path} is unreadable ({exc}); move it away to start over."
            ) from exc

    def mark(self, symbol: str, interval: str) -> Mark | None:
        return self.marks.get((symbol, interval))

    def is_fresh(self, bar: Bar) -> bool:
        """True when ``bar`` is newer than the mark, or is the marked bar with changed values."""
        mark = self.marks.get((bar.symbol, bar.interval))
        if mark is None or bar.bar_ts > mark.bar_ts:
            return True
        return bar.bar_ts == mark.bar_ts and bar_digest(bar) != mark.digest

    def fresh(self, bars: Iterable[Bar]) -> list[Bar]:
        """The bars of ``bars`` to send (see ``is_fresh``), in their order."""
        return [bar for bar in bars if self.is_fresh(bar)]

    def advance(self, bars: Iterable[Bar]) -> None:
        """Move each symbol's mark to the newest of ``bars`` (never backwards)."""
        for bar in bars:
            key = (bar.symbol, bar.interval)
            mark = self.marks.get(key)
            if mark is None or bar.bar_ts >= mark.bar_ts:
                self.marks[key] = Mark(bar.bar_ts, bar_digest(bar))

    def to_json(self) -> dict[str, Any]:
        marks = {
            f"{symbol}|{interval}": {"bar_ts": mark.bar_ts.isoformat(), "digest": mark.digest}
            for (symbol, interval), mark in sorted(self.marks.items())
        }
        return {"version": VERSION, "marks": marks, "extra": self.extra}

    def save(self) -> None:
        """Write the file atomically (temp file, fsync, rename, fsync the folder)."""
        write_json_atomic(self.path, self.to_json())
