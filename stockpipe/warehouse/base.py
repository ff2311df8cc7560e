"""The warehouse interface the loader and the dbt runner use, and the transaction template.

A ``Warehouse`` adapter (``duckdb.py``, ``snowflake.py``) supplies SQL primitives and a bulk
path; ``Warehouse.apply`` runs a whole load in ONE transaction: delete the changed partitions,
insert their new rows, append ``load_history``, commit. A failure rolls everything back.

Identifiers only ever reach SQL through ``ident`` (validated, then quoted); values are always
bound parameters (``?``, qmark style on both engines).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from stockpipe.errors import StockpipeError
from stockpipe.faults import FAULT_EXIT_CODE, fault_point
from stockpipe.warehouse import tables

if TYPE_CHECKING:
    import pyarrow as pa

    from stockpipe.warehouse.silver import Partition


class WarehouseError(StockpipeError):
    """A warehouse statement or load failed (the transaction was rolled back)."""


class WarehouseUnavailableError(WarehouseError):
    """The warehouse cannot be reached, or another process holds its lock."""


@dataclass(frozen=True)
class RowFilter:
    """The rows of a raw table a silver dataset owns: ``column`` in ``values`` (or, with
    ``negate``, not in them). Two silver datasets feed ``stock_prices`` (intraday bars by
    ``trade_date``, daily bars by month), so a partition's delete and insert are limited to
    the intervals its dataset holds: reloading one never touches the other's rows."""

    column: str
    values: tuple[str, ...]
    negate: bool = False

    def sql(self, ident: Callable[[str], str]) -> tuple[str, list[Any]]:
        marks = ", ".join("?" for _ in self.values)
        return f"{ident(self.column)} {'not in' if self.negate else 'in'} ({marks})", list(self.values)

    def apply(self, table: pa.Table) -> pa.Table:
        """The rows of ``table`` this filter keeps (a null ``column`` is kept by neither side)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        inside = pc.is_in(table.column(self.column), value_set=pa.array(self.values, pa.string()))
        keep = pc.invert(inside) if self.negate else inside
        return table.filter(pc.fill_null(pc.and_(keep, pc.is_valid(table.column(self.column))), False))


@dataclass(frozen=True)
class NativeScan:
    """A partition an engine may read itself: local Parquet files, the columns they all have,
    values for the columns they lack (e.g. the partition column and ``loaded_at``), and the
    rows to keep."""

    files: list[str]
    file_columns: frozenset[str]
    constants: dict[str, Any]
    rows: RowFilter | None = None


@dataclass
class TableChange:
    """The partitions of one raw table to replace; ``read`` gives a partition's new rows.

    ``partition_column`` None means the table is replaced as a whole (one partition).
    A partition with no files was removed from silver: its rows are deleted, none inserted.
    ``native`` (optional) offers an engine that reads Parquet itself the files to scan instead.
    With ``rows``, a partition owns only the rows of ``partition_column`` in its span
    (``Partition.value`` to ``Partition.end``) that ``rows`` keeps; ``read`` and ``native`` give
    only those rows. ``dataset`` names the change where engines stage rows (several changes may
    fill one table: ``stock_prices`` and ``stock_prices_daily``).
    """

    table: str
    partition_column: str | None
    partitions: list[Partition]
    read: Callable[[Partition], pa.Table]
    native: Callable[[Partition], NativeScan | None] | None = None
    rows: RowFilter | None = None
    dataset: str = ""

    @property
    def stage_name(self) -> str:
        return self.dataset or self.table


@dataclass(frozen=True)
class HistoryRow:
    table_name: str
    partition_key: str
    rows: int


ProgressFn = Callable[[str, str, int], None]  # (table, partition key, rows) after each partition


class Warehouse(ABC):
    """One open warehouse connection (use as a context manager)."""

    kind: ClassVar[tables.Dialect]

    def __init__(self, raw_schema: str, gold_schema: str) -> None:
        self.raw_schema = raw_schema
        self.gold_schema = gold_schema

    # ---- identity and identifiers ----
    @property
    @abstractmethod
    def target_id(self) -> str:
        """Names the warehouse in the load state, e.g. ``duckdb:/data/warehouse.duckdb``."""

    @abstractmethod
    def ident(self, name: str) -> str:
        """Validate and quote one identifier the way this engine stores unquoted names."""

    def schema_ref(self, schema: str | None = None) -> str:
        """A schema as SQL (the raw schema by default)."""
        return self.ident(schema or self.raw_schema)

    def qualified(self, table: str, schema: str | None = None) -> str:
        return f"{self.schema_ref(schema)}.{self.ident(table)}"

    # ---- primitives ----
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def existing_tables(self, schema: str) -> set[str]:
        """Lower-cased names of the tables in ``schema``."""

    @abstractmethod
    def _stage(self, change: TableChange, on_progress: ProgressFn | None) -> dict[str, int] | None:
        """Before the transaction: upload ``change``'s rows if the engine needs it (row counts)."""

    @abstractmethod
    def _insert(
        self, change: TableChange, staged: dict[str, int] | None, on_progress: ProgressFn | None
    ) -> dict[str, int]:
        """Inside the transaction: insert the rows of every partition; rows per partition key."""

    def _cleanup(self, changes: Sequence[TableChange]) -> None:
        """After the transaction (success or not): drop staging objects."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- DDL ----
    def ensure_raw_tables(self) -> set[str]:
        """Create the raw schema and tables if missing; return the tables created now."""
        self.execute(f"create schema if not exists {self.schema_ref()}")
        existing = self.existing_tables(self.raw_schema)
        created = set()
        for name, schema in tables.RAW_TABLES.items():
            if name not in existing:
                self.execute(tables.create_table_sql(self.qualified(name), schema(), self.kind, self.ident))
                created.add(name)
        return created

    def columns(self, table: str) -> list[str]:
        """The contract column names of a raw table, quoted."""
        return [self.ident(f.name) for f in tables.RAW_TABLES[table]()]

    # ---- the load transaction ----
    def apply(
        self, changes: Sequence[TableChange], loaded_at: datetime, on_progress: ProgressFn | None = None
    ) -> list[HistoryRow]:
        """Replace the changed partitions of every table in one transaction and record history."""
        staged = [self._stage(change, on_progress) for change in changes]
        history: list[HistoryRow] = []
        self.execute("begin transaction")
        try:
            for change in changes:
                self._delete(change)
            fault_point("LOAD_MID_TRANSACTION", exit_code=FAULT_EXIT_CODE)
            for change, stage in zip(changes, staged, strict=True):
                counts = self._insert(change, stage, on_progress)
                history += [HistoryRow(change.table, p.key, counts.get(p.key, 0)) for p in change.partitions]
            self._insert_history(history, loaded_at)
            self.execute("commit")
        except BaseException:
            self._rollback_quietly()
            raise
        finally:
            self._cleanup(changes)
        return history

    def _rollback_quietly(self) -> None:
        with contextlib.suppress(WarehouseError):
            self.execute("rollback")

    def _delete(self, change: TableChange) -> None:
        target = self.qualified(change.table)
        if change.partition_column is None:
            self.execute(f"delete from {target}")  # noqa: S608 - identifiers quoted, no values
            return
        column = self.ident(change.partition_column)
        if change.rows is None:
            values = [(p.value,) for p in change.partitions]
            self.executemany(f"delete from {target} where {column} = ?", values)  # noqa: S608 - bound values
            return
        owned, params = change.rows.sql(self.ident)
        sql = f"delete from {target} where {column} >= ? and {column} < ? and {owned}"  # noqa: S608
        self.executemany(sql, [(p.value, p.end, *params) for p in change.partitions])

    def _insert_history(self, history: list[HistoryRow], loaded_at: datetime) -> None:
        rows = [(loaded_at, h.table_name, h.partition_key, h.rows) for h in history]
        if rows:
            self.insert_values(tables.LOAD_HISTORY, rows)

    def insert_values(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert Python rows (all contract columns, in order) with bound values."""
        cols = self.columns(table)
        marks = ", ".join("?" for _ in cols)
        sql = f"insert into {self.qualified(table)} ({', '.join(cols)}) values ({marks})"  # noqa: S608
        self.executemany(sql, rows)

    def append(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows into a raw table in a transaction of their own (e.g. ``dbt_results``)."""
        if not rows:
            return
        self.execute("begin transaction")
        try:
            self.insert_values(table, rows)
            self.execute("commit")
        except BaseException:
            self._rollback_quietly()
            raise

    def insert_select_sql(self, table: str, source: str) -> str:
        """``insert into <raw table> (cols) select cols from <source>`` (source already quoted)."""
        cols = ", ".join(self.columns(table))
        return f"insert into {self.qualified(table)} ({cols}) select {cols} from {source}"  # noqa: S608
