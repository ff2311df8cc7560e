"""What every market-data source provides: an iterator of contract ``Bar`` objects.

A source is pure with respect to Kafka: it only yields bars. The producer (``stockpipe.ingest``)
sends them. ``build_source`` is the one factory the CLI, the pipeline and the DAG use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stockpipe.contract import Bar


@dataclass(frozen=True)
class SourceOptions:
    """Options understood by the sources (each source reads the ones it needs)."""

    symbols: tuple[str, ...] = ()  # empty: the source's default list
    start: date | None = None  # first trading day (simulator, alphavantage filter)
    end: date | None = None  # last trading day, inclusive
    interval: str = "1min"
    seed: int = 42
    realtime: bool = False  # pace bars in (simulated) real time instead of backfilling
    speed: float = 1.0  # with realtime: simulated seconds per wall-clock second
    paths: tuple[Path, ...] = ()  # replay input files
    symbol: str | None = None  # replay: the symbol when the file has no symbol column
    column_map: dict[str, str] = field(default_factory=dict)  # replay generic CSV: contract->file
    limit: int | None = None  # stop after this many bars
    on_error: str = "raise"  # replay: "raise" or "skip-and-report" (bad rows collected in .errors)
    date_format: str | None = None  # replay: strftime format of the date column (e.g. %Y%m%d)
    exchange: str = "XNYS"  # replay: exchange_calendars code: zone of naive times, session opens


class Source(ABC):
    """A finite (backfill, replay) or endless (real-time) stream of bars."""

    name: str

    @abstractmethod
    def bars(self) -> Iterator[Bar]:
        """Yield bars in the order they should be sent."""

    def estimated_count(self) -> int | None:
        """How many bars ``bars()`` will yield, when known up front (for progress bars)."""
        return None
