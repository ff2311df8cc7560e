"""``run_load``: load the silver partitions that changed since the last load, idempotently.

Plan: list silver partitions and fingerprint them; compare with the load state; a partition
whose fingerprint changed (or that is new, or that disappeared from silver) is "changed".
Both bar datasets fill ``stock_prices``: a ``trade_date=D`` partition of ``stock_prices`` owns
the intraday rows of D, a ``trade_month=M`` partition of ``stock_prices_daily`` the daily rows of
M (``base.RowFilter``), and each has its own load state key, so neither reload touches the other.
Apply: in ONE warehouse transaction, delete the changed partitions from the raw tables, insert
their current rows, append ``load_history``, commit. Only then is the load state written. A
crash anywhere before the commit leaves the previous rows; a crash after it only makes the
next load redo the same partitions — either way the tables end up with the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stockpipe.contract.layout import DAILY_PRICES, INTRADAY_PRICES, PRICE_DATASETS, partition_span
from stockpipe.contract.silver import DAILY_INTERVALS, SILVER_PARTITION
from stockpipe.warehouse import tables
from stockpipe.warehouse.base import HistoryRow, NativeScan, RowFilter, TableChange
from stockpipe.warehouse.connect import connect_warehouse
from stockpipe.warehouse.silver import WHOLE_TABLE, Partition, SilverReader
from stockpipe.warehouse.state import LoadState, read_state, state_path, write_state

if TYPE_CHECKING:
    import pyarrow as pa

    from stockpipe.settings import Settings
    from stockpipe.warehouse.base import Warehouse


@dataclass(frozen=True)
class LoadProgress:
    """Reported after each loaded partition (``done`` of ``total`` changed partitions)."""

    table: str
    partition_key: str
    rows: int
    done: int
    total: int


@dataclass
class LoadResult:
    partitions_loaded: int
    partitions_skipped: int
    rows_loaded: int
    tables: dict[str, int]  # rows inserted per raw table
    seconds: float
    target: str = ""
    history: list[HistoryRow] = field(default_factory=list)


@dataclass(frozen=True)
class _Dataset:
    """How one silver dataset maps to a raw table.

    ``folder_column`` names the partition folders; ``partition_column`` is the raw column a
    partition's span applies to; ``rows`` limits a partition to the rows its dataset owns.
    ``state_key`` names the dataset in the load state (the table name, except for the second
    dataset of a table).
    """

    silver: str
    table: str
    folder_column: str | None
    partition_column: str | None
    rows: RowFilter | None = None
    state_key: str = ""

    @property
    def key(self) -> str:
        return self.state_key or self.table


_BAR_ROWS = {
    INTRADAY_PRICES.name: RowFilter("interval", DAILY_INTERVALS, negate=True),
    DAILY_PRICES.name: RowFilter("interval", DAILY_INTERVALS),
}
DATASETS: tuple[_Dataset, ...] = (
    *(
        _Dataset(
            ds.name,
            tables.STOCK_PRICES,
            ds.partition,
            SILVER_PARTITION,
            _BAR_ROWS[ds.name],
            tables.STOCK_PRICES if ds is INTRADAY_PRICES else ds.name,
        )
        for ds in PRICE_DATASETS
    ),
    _Dataset("companies", tables.COMPANIES, None, None),
    _Dataset("quarantine", tables.QUARANTINE_SUMMARY, "ingest_date", "ingest_date"),
)


@dataclass
class _Plan:
    changes: list[TableChange]
    new_state: dict[str, dict[str, str]]
    skipped: int


def _removed(key: str) -> Partition:
    """A partition that disappeared from silver: delete its rows, insert none."""
    span = None if key == WHOLE_TABLE else partition_span(key)
    if span is None:
        return Partition(key, None, ())
    return Partition(key, span[1], (), span[2])


def _constants(ds: _Dataset, p: Partition, loaded_at: datetime) -> dict[str, Any]:
    """Values for columns the files lack: the partition column when it is the folder's, ``loaded_at``."""
    if ds.folder_column == ds.partition_column:
        return {str(ds.partition_column): p.value, "loaded_at": loaded_at}
    return {"loaded_at": loaded_at}


def _reader_for(ds: _Dataset, reader: SilverReader, loaded_at: datetime) -> Callable[[Partition], pa.Table]:
    if ds.table == tables.QUARANTINE_SUMMARY:
        schema = tables.quarantine_summary_schema()
        return lambda p: reader.quarantine_summary(p, schema)
    if ds.table == tables.COMPANIES:
        schema = tables.silver_companies_schema()
        return lambda p: reader.read_normalized(p, schema, {})
    schema = tables.raw_stock_prices_schema()
    rows = ds.rows

    def read(p: Partition) -> pa.Table:
        table = reader.read_normalized(p, schema, _constants(ds, p, loaded_at))
        return rows.apply(table) if rows is not None else table

    return read


def _native_for(
    ds: _Dataset, reader: SilverReader, loaded_at: datetime
) -> Callable[[Partition], NativeScan | None] | None:
    """Local stock_prices files may be scanned by the engine itself (DuckDB's read_parquet)."""
    if ds.table != tables.STOCK_PRICES or not reader.is_local:
        return None

    def scan(p: Partition) -> NativeScan:
        return NativeScan(
            [f.path for f in p.files], reader.common_columns(p), _constants(ds, p, loaded_at), ds.rows
        )

    return scan


def plan_load(
    reader: SilverReader, state: LoadState, target: str, created: set[str], loaded_at: datetime
) -> _Plan:
    """Which partitions of which tables to replace, and the state after a successful load."""
    changes: list[TableChange] = []
    new_state: dict[str, dict[str, str]] = {}
    skipped = 0
    for ds in DATASETS:
        if ds.folder_column is None:
            whole = reader.whole(ds.silver)
            current = [whole] if whole else []
        else:
            current = reader.partitions(ds.silver, ds.folder_column)
        loaded = {} if ds.table in created else state.table(target, ds.key)
        changed = [p for p in current if loaded.get(p.key) != p.fingerprint]
        present = {p.key for p in current}
        changed += [_removed(k) for k in sorted(loaded) if k not in present]
        skipped += len(current) - len([p for p in changed if p.files])
        new_state[ds.key] = {p.key: p.fingerprint for p in current}
        if changed:
            read, native = _reader_for(ds, reader, loaded_at), _native_for(ds, reader, loaded_at)
            changes.append(
                TableChange(ds.table, ds.partition_column, changed, read, native, ds.rows, ds.silver)
            )
    return _Plan(changes, new_state, skipped)


def run_load(
    settings: Settings,
    *,
    on_progress: Callable[[LoadProgress], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Load changed silver partitions into the raw schema of ``settings.warehouse.kind``.

    ``on_plan(changed, skipped)`` is called once the plan is known; ``on_progress`` after each
    partition. Raises ``StockpipeError`` subclasses (one sentence) on any failure, in which
    case the warehouse and the load state are unchanged.
    """
    started = time.perf_counter()
    reader = SilverReader.from_settings(settings)
    state = read_state(state_path(settings.state_dir))
    loaded_at = datetime.now(UTC)
    with connect_warehouse(settings) as wh:
        created = wh.ensure_raw_tables()
        plan = plan_load(reader, state, wh.target_id, created, loaded_at)
        total = sum(len(c.partitions) for c in plan.changes)
        if on_plan:
            on_plan(total, plan.skipped)
        history = _apply(wh, plan, loaded_at, total, on_progress) if plan.changes else []
        for key, partitions in plan.new_state.items():
            state.set_table(wh.target_id, key, partitions)
        write_state(state)
        target = wh.target_id
    per_table: dict[str, int] = {}
    for h in history:
        per_table[h.table_name] = per_table.get(h.table_name, 0) + h.rows
    return LoadResult(
        partitions_loaded=sum(1 for c in plan.changes for p in c.partitions if p.files),
        partitions_skipped=plan.skipped,
        rows_loaded=per_table.get(tables.STOCK_PRICES, 0),
        tables=per_table,
        seconds=time.perf_counter() - started,
        target=target,
        history=history,
    )


def _apply(
    wh: Warehouse,
    plan: _Plan,
    loaded_at: datetime,
    total: int,
    on_progress: Callable[[LoadProgress], None] | None,
) -> list[HistoryRow]:
    done = 0

    def progress(table: str, key: str, rows: int) -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress(LoadProgress(table, key, rows, done, total))

    return wh.apply(plan.changes, loaded_at, progress)
