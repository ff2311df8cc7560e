"""Pipeline health from the warehouse: load time, freshness, rows per layer, quarantine, dbt.

Reads ``raw.load_history``, ``raw.quarantine_summary``, ``raw.dbt_results`` and, when the
streaming mode has created it, ``raw.freshness`` (``cycle_at, bars, p50_seconds, p95_seconds,
max_seconds``). Each part is optional: a missing table yields ``None`` or an empty frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


from stockpipe.dashboard.warehouse import Layer, WarehouseReader
from stockpipe.sources.live.status import STATUS_COLUMNS, status_rows

LAYER_TABLES: tuple[tuple[Layer, str], ...] = (
    ("raw", "stock_prices"),
    ("gold", "fact_stock"),
    ("gold", "dim_companies"),
    ("gold", "dim_date"),
    ("gold", "mart_daily_ohlcv"),
    ("gold", "mart_daily_returns"),
    ("gold", "mart_moving_averages"),
    ("gold", "mart_sector_daily"),
)
DBT_COLUMNS = ["run_at", "invocation", "node", "resource_type", "status", "message"]
STREAM_COLUMNS = ["cycle_at", "bars", "p50_seconds", "p95_seconds", "max_seconds"]
STREAM_CYCLES = 120
OK_STATUSES = frozenset({"pass", "success"})


@dataclass(frozen=True)
class Health:
    """A snapshot of the pipeline's state as seen from the warehouse."""

    checked_at: datetime
    last_load_at: datetime | None
    latest_bar_ts: datetime | None
    layer_rows: pd.DataFrame
    quarantine: pd.DataFrame
    dbt: pd.DataFrame
    stream: pd.DataFrame | None

    @property
    def freshness_seconds(self) -> float | None:
        """Seconds between the check and the newest bar (None without bars)."""
        if self.latest_bar_ts is None:
            return None
        return max(0.0, (self.checked_at - self.latest_bar_ts).total_seconds())

    @property
    def quarantined_total(self) -> int:
        """All quarantined records, every rule."""
        return int(self.quarantine["records"].sum()) if not self.quarantine.empty else 0

    @property
    def dbt_last_run_at(self) -> datetime | None:
        """When dbt last wrote a result."""
        return to_utc(self.dbt["run_at"].max()) if not self.dbt.empty else None

    @property
    def dbt_failures(self) -> pd.DataFrame:
        """Nodes whose latest status is not pass/success."""
        if self.dbt.empty:
            return self.dbt
        return self.dbt[~self.dbt["status"].str.lower().isin(OK_STATUSES)]

    @property
    def rows_by_table(self) -> dict[str, int | None]:
        """``schema.table`` -> rows (None when the table does not exist)."""
        import pandas as pd

        return {
            str(t): (None if pd.isna(r) else int(r))
            for t, r in zip(self.layer_rows["table"], self.layer_rows["rows"], strict=True)
        }


def to_utc(value: object) -> datetime | None:
    """A timestamp from either engine as an aware UTC ``datetime`` (naive means UTC)."""
    import pandas as pd

    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return None
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def format_age(seconds: float | None) -> str:
    """``42 s``, ``5 min 3 s``, ``3 h 12 min``, ``612 d 4 h`` (pure)."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def summarize_dbt(latest: pd.DataFrame) -> pd.DataFrame:
    """Counts per (resource_type, status) of the latest result per node (pure)."""
    import pandas as pd

    if latest.empty:
        return pd.DataFrame(columns=["resource_type", "status", "nodes"])
    grouped = latest.groupby(["resource_type", "status"], dropna=False).size()
    return grouped.reset_index(name="nodes").sort_values(["resource_type", "status"]).reset_index(drop=True)


def rows_display(health: Health) -> pd.DataFrame:
    """Rows per layer as display strings: ``9,355`` or ``missing`` (pure)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "layer": health.layer_rows["layer"],
            "table": health.layer_rows["table"],
            "rows": ["missing" if pd.isna(r) else f"{int(r):,}" for r in health.layer_rows["rows"]],
        }
    )


def live_sources_display(statuses: list[dict[str, Any]], now: datetime | None = None) -> pd.DataFrame:
    import pandas as pd

    """Live-source status files as a display table (pure)."""
    return pd.DataFrame(status_rows(statuses, now), columns=list(STATUS_COLUMNS))


def _scalar(reader: WarehouseReader, template: str, layer: Layer, name: str) -> object:
    if not reader.has(layer, name):
        return None
    frame = reader.query(template, t=(layer, name))
    return None if frame.empty else frame.iloc[0, 0]


def layer_rows(reader: WarehouseReader) -> pd.DataFrame:
    """Rows per table of every layer (``rows`` is NA for a missing table)."""
    import pandas as pd

    rows = [
        {"layer": layer, "table": reader.display(layer, name), "rows": reader.count(layer, name)}
        for layer, name in LAYER_TABLES
    ]
    frame = pd.DataFrame(rows, columns=["layer", "table", "rows"])
    frame["rows"] = frame["rows"].astype("Int64")
    return frame


def latest_dbt_results(reader: WarehouseReader) -> pd.DataFrame:
    """The most recent result of every dbt node (model, test, ...) from ``raw.dbt_results``."""
    import pandas as pd

    if not reader.has("raw", "dbt_results"):
        return pd.DataFrame(columns=DBT_COLUMNS)
    return reader.query(
        "select run_at, invocation, node, resource_type, status, message from {t} "
        "qualify row_number() over (partition by node, resource_type order by run_at desc) = 1 "
        "order by resource_type, node",
        t=("raw", "dbt_results"),
    )


def stream_freshness(reader: WarehouseReader, cycles: int = STREAM_CYCLES) -> pd.DataFrame | None:
    """The latest ``cycles`` rows of ``raw.freshness`` oldest first; None when it does not exist."""
    if not reader.has("raw", "freshness"):
        return None
    frame = reader.query(
        "select cycle_at, bars, p50_seconds, p95_seconds, max_seconds from {t} "
        "qualify row_number() over (order by cycle_at desc) <= ?",
        [int(cycles)],
        t=("raw", "freshness"),
    )
    return frame.sort_values("cycle_at").reset_index(drop=True)


def pipeline_health(reader: WarehouseReader, now: datetime | None = None) -> Health:
    """Everything the health panel shows, read in one go."""
    import pandas as pd

    checked_at = now or datetime.now(UTC)
    latest_bar = _scalar(reader, "select max(bar_ts) from {t}", "gold", "fact_stock")
    if latest_bar is None or pd.isna(latest_bar):  # type: ignore[call-overload]
        latest_bar = _scalar(reader, "select max(bar_ts) from {t}", "raw", "stock_prices")
    quarantine = pd.DataFrame(columns=["rule", "records"])
    if reader.has("raw", "quarantine_summary"):
        quarantine = reader.query(
            "select rule, sum(records) as records from {t} group by rule order by records desc, rule",
            t=("raw", "quarantine_summary"),
        )
        quarantine["records"] = quarantine["records"].astype("int64")
    return Health(
        checked_at=checked_at,
        last_load_at=to_utc(_scalar(reader, "select max(loaded_at) from {t}", "raw", "load_history")),
        latest_bar_ts=to_utc(latest_bar),
        layer_rows=layer_rows(reader),
        quarantine=quarantine,
        dbt=latest_dbt_results(reader),
        stream=stream_freshness(reader),
    )
