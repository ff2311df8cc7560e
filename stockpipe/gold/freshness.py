"""Which bars source freshness applies to, and the one-line explanation the quality step prints.

The rule (enforced by dbt: ``loaded_at_query`` of ``raw.stock_prices`` in ``_sources.yml``):
a bar is *live* when its ``bar_ts`` is at most ``settings.dbt.freshness_live_window_hours``
before its ``loaded_at``. Freshness is the age of the newest load of a live bar: warn after
``freshness_warn_hours``, fail after ``freshness_error_hours``. A replayed history (old bars)
and an empty table (e.g. a fully quarantined batch) have no live bars and are not checked.

``measure`` asks the warehouse the same question in plain SQL so the summary can say which
case applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from stockpipe.settings import Settings
from stockpipe.warehouse import tables
from stockpipe.warehouse.connect import connect_warehouse


@dataclass(frozen=True)
class FreshnessScope:
    rows: int  # rows in raw.stock_prices
    live_rows: int  # rows whose bar_ts is within the live window of their load
    newest_live_load: datetime | None  # newest loaded_at of a live row (UTC)


def rule_text(settings: Settings) -> str:
    d = settings.dbt
    return (
        f"freshness applies to live bars (bar_ts at most {d.freshness_live_window_hours} h before "
        f"their load): warn after {d.freshness_warn_hours} h, fail after {d.freshness_error_hours} h "
        "without a new live load; replayed history and empty tables are not checked"
    )


def _live_condition(kind: str, hours: int) -> str:
    hours = int(hours)  # validated int; inlined because Snowflake's dateadd takes no bind here
    if kind == "snowflake":
        return f"bar_ts >= dateadd(hour, -{hours}, loaded_at)"
    return f"bar_ts >= loaded_at - to_hours({hours})"


def measure(settings: Settings) -> FreshnessScope:
    """Count live bars and find their newest load, in the configured warehouse."""
    with connect_warehouse(settings) as wh:
        wh.ensure_raw_tables()
        live = _live_condition(wh.kind, settings.dbt.freshness_live_window_hours)
        sql = (
            f"select count(*), coalesce(sum(case when {live} then 1 else 0 end), 0), "  # noqa: S608 - no user text
            f"max(case when {live} then loaded_at end) from {wh.qualified(tables.STOCK_PRICES)}"
        )
        rows, live_rows, newest = wh.query(sql)[0]
    if isinstance(newest, datetime):
        newest = newest.astimezone(UTC) if newest.tzinfo else newest.replace(tzinfo=UTC)
    return FreshnessScope(int(rows), int(live_rows), newest)


def summary_line(settings: Settings, scope: FreshnessScope, now: datetime | None = None) -> str:
    """The rule, then what it found: e.g. '... — 0 of 2,816 bars are live: not checked'."""
    rule = rule_text(settings)
    if scope.rows == 0:
        return f"{rule} — the table is empty: not checked"
    if scope.live_rows == 0 or scope.newest_live_load is None:
        return f"{rule} — 0 of {scope.rows:,} bars are live (history): not checked"
    age_h = ((now or datetime.now(UTC)) - scope.newest_live_load).total_seconds() / 3600
    return f"{rule} — {scope.live_rows:,} of {scope.rows:,} bars are live, newest loaded {age_h:.1f} h ago"
