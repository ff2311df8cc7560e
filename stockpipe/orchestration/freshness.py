"""Freshness: for each bar, the time from ``produced_at`` to being visible in ``gold.fact_stock``.

Pure statistics here; the warehouse query and the ``raw.freshness`` record go through the
warehouse adapter, so the numbers come from the warehouse the dashboard reads.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from stockpipe.settings import Settings
from stockpipe.warehouse import tables
from stockpipe.warehouse.connect import connect_warehouse

HISTOGRAM_STEP = 0.1  # seconds per histogram bucket


@dataclass(frozen=True)
class Freshness:
    bars: int
    p50: float | None
    p95: float | None
    max: float | None
    # bars per latency bucket (bucket start in seconds, as text -> count): lets a reader merge
    # cycles and compute exact percentiles over all bars (at HISTOGRAM_STEP resolution)
    histogram: dict[str, int] = field(default_factory=dict, compare=False)

    def as_row(self, cycle_at: datetime) -> tuple[datetime, int, float | None, float | None, float | None]:
        return (cycle_at, self.bars, self.p50, self.p95, self.max)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]) of an already sorted, non-empty sequence."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def summarise(latencies: Sequence[float]) -> Freshness:
    values = sorted(latencies)
    if not values:
        return Freshness(0, None, None, None)
    buckets = Counter(f"{math.floor(v / HISTOGRAM_STEP) * HISTOGRAM_STEP:.1f}" for v in values)
    return Freshness(
        len(values),
        percentile(values, 50),
        percentile(values, 95),
        values[-1],
        dict(sorted(buckets.items(), key=lambda kv: float(kv[0]))),
    )


def histogram_percentile(histograms: Sequence[dict[str, int]], q: float) -> float | None:
    """Nearest-rank percentile over merged histograms (a bucket stands for its upper edge)."""
    merged: Counter[float] = Counter()
    for h in histograms:
        for start, n in h.items():
            merged[float(start)] += n
    total = sum(merged.values())
    if not total:
        return None
    rank, seen = max(1, math.ceil(q / 100 * total)), 0
    for edge in sorted(merged):
        seen += merged[edge]
        if seen >= rank:
            return round(edge + HISTOGRAM_STEP, 1)
    raise AssertionError("unreachable: rank <= total")


def newly_visible(
    settings: Settings, produced_after: datetime | None, visible_at: datetime
) -> tuple[Freshness, datetime | None]:
    """Latencies of bars produced after the previous watermark, now visible in gold.

    Returns the summary and the new watermark (the newest ``produced_at`` now visible). The
    producer stamps ``produced_at`` in send order, so "produced after the watermark" is
    exactly "first visible in this cycle", even when a whole partition is reloaded.
    """

    with connect_warehouse(settings) as wh:
        if "fact_stock" not in wh.existing_tables(wh.gold_schema):
            return summarise([]), produced_after
        fact = wh.qualified("fact_stock", wh.gold_schema)
        if produced_after is None:
            rows = wh.query(f"select produced_at from {fact}")  # noqa: S608 - quoted identifiers
        else:
            rows = wh.query(
                f"select produced_at from {fact} where produced_at > ?",  # noqa: S608
                [produced_after],
            )
    stamps = [r[0] for r in rows if r[0] is not None]
    latencies = [(visible_at - ts).total_seconds() for ts in stamps]
    watermark = max(stamps) if stamps else produced_after
    return summarise(latencies), watermark


def record(settings: Settings, cycle_at: datetime, freshness: Freshness) -> None:
    """Append one row to ``raw.freshness`` (the dashboard's and ``status``'s source)."""

    with connect_warehouse(settings) as wh:
        wh.ensure_raw_tables()
        wh.append(tables.FRESHNESS, [freshness.as_row(cycle_at)])


def latest(settings: Settings, limit: int = 20) -> list[tuple[object, ...]]:
    """The most recent freshness rows, newest first (empty if none were recorded)."""

    with connect_warehouse(settings) as wh:
        if tables.FRESHNESS not in wh.existing_tables(wh.raw_schema):
            return []
        table = wh.qualified(tables.FRESHNESS)
        return wh.query(f"select * from {table} order by cycle_at desc limit {int(limit)}")  # noqa: S608
