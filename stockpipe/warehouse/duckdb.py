"""DuckDB adapter: the embedded warehouse file (``settings.duckdb_path``).

Bulk path, inside the load transaction: local silver files are scanned by DuckDB itself
(``insert into … select cast(…) from read_parquet([files]) where <rows the dataset owns>``,
the partition column and ``loaded_at`` bound as parameters); anything else (remote lakes,
companies, the quarantine summary) is read into Arrow, normalised to the raw schema and
inserted from the registered Arrow table. The session time zone is UTC so ``timestamptz``
values never depend on the host's zone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from stockpipe.errors import first_line
from stockpipe.settings import quote_identifier
from stockpipe.warehouse.base import (
    NativeScan,
    ProgressFn,
    TableChange,
    Warehouse,
    WarehouseError,
    WarehouseUnavailableError,
)
from stockpipe.warehouse.tables import RAW_TABLES
from stockpipe.warehouse.tables import sql_type as sql_type_of

if TYPE_CHECKING:
    import duckdb

    from stockpipe.settings import Settings
    from stockpipe.warehouse.silver import Partition

_ARROW_VIEW = "stockpipe_load_batch"
_LOCK_RE = re.compile(r"(Could not set lock|Conflicting lock)", re.IGNORECASE)


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file; schemas and names are lower-case as configured."""

    kind: ClassVar = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, raw_schema: str, gold_schema: str) -> None:
        super().__init__(raw_schema, gold_schema)
        self.con = con
        self.path = path

    @classmethod
    def connect(cls, settings: Settings, *, read_only: bool = False) -> Self:
        return cls.open(
            settings.duckdb_path,
            settings.warehouse.raw_schema,
            settings.warehouse.gold_schema,
            read_only=read_only,
            lock_wait=settings.duckdb.lock_wait_seconds,
        )

    @classmethod
    def open(
        cls,
        path: Path,
        raw_schema: str,
        gold_schema: str,
        *,
        read_only: bool = False,
        lock_wait: float = 0.0,
    ) -> Self:
        """Open the warehouse file; a lock held by another process (DuckDB allows one writer
        process, and no writer beside a reader) is waited for up to ``lock_wait`` seconds, so a
        dashboard or a query reading for a moment does not fail a load."""
        import duckdb

        quote_identifier(raw_schema, "schema name")
        quote_identifier(gold_schema, "schema name")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + lock_wait
        pause = 0.05
        while True:
            try:
                con = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.Error as exc:
                if not _LOCK_RE.search(str(exc)):
                    raise WarehouseUnavailableError(
                        f"Cannot open the DuckDB warehouse {path}: {first_line(exc)}."
                    ) from exc
                if time.monotonic() + pause > deadline:
                    waited = f" (waited {lock_wait:g} s)" if lock_wait else ""
                    raise WarehouseUnavailableError(
                        f"The DuckDB warehouse {path} is locked by another process{waited}; "
                        "wait for it to finish (or stop it) and retry."
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
        con.execute("set TimeZone = 'UTC'")
        return cls(con, path, raw_schema, gold_schema)

    @property
    def target_id(self) -> str:
        return f"duckdb:{self.path}"

    def ident(self, name: str) -> str:
        return quote_identifier(name)

    # ---- primitives ----
    def _run(self, fn: Any, sql: str, params: Any) -> Any:
        import duckdb

        try:
            return fn(sql, params)
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB statement failed on {self.path}: {first_line(exc)}.") from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(self.con.execute, sql, list(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._run(self.con.executemany, sql, [list(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._run(self.con.execute, sql, list(params))
        return [tuple(r) for r in cur.fetchall()]

    def close(self) -> None:
        self.con.close()

    def existing_tables(self, schema: str) -> set[str]:
        rows = self.query("select table_name from information_schema.tables where table_schema = ?", [schema])
        return {str(r[0]).lower() for r in rows}

    # ---- bulk path ----
    def _stage(self, change: TableChange, on_progress: ProgressFn | None) -> dict[str, int] | None:
        return None  # DuckDB reads the partitions inside the transaction

    def _insert(
        self, change: TableChange, staged: dict[str, int] | None, on_progress: ProgressFn | None
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        for partition in change.partitions:
            rows = 0
            if partition.files:
                scan = change.native(partition) if change.native else None
                native_rows = self._insert_native(change.table, scan) if scan else None
                rows = native_rows if native_rows is not None else self._insert_arrow(change, partition)
            counts[partition.key] = rows
            if on_progress:
                on_progress(change.table, partition.key, rows)
        return counts

    def _insert_arrow(self, change: TableChange, partition: Partition) -> int:
        batch = change.read(partition)
        if batch.num_rows:
            self.con.register(_ARROW_VIEW, batch)
            try:
                self.execute(self.insert_select_sql(change.table, _ARROW_VIEW))
            finally:
                self.con.unregister(_ARROW_VIEW)
        return int(batch.num_rows)

    def _insert_native(self, table: str, scan: NativeScan) -> int | None:
        """``insert … select cast(…) from read_parquet([files])``: DuckDB reads the files itself.

        Returns None (use the Arrow path, which reports schema problems clearly) when a column
        is neither in every file nor a constant.
        """
        select, params = [], []
        for f in RAW_TABLES[table]():
            column, sql_type = self.ident(f.name), sql_type_of(f.type, "duckdb")
            if f.name in scan.file_columns:
                select.append(f"cast({column} as {sql_type})")
            elif f.name in scan.constants:
                select.append(f"cast(? as {sql_type})")
                params.append(scan.constants[f.name])
            else:
                return None
        columns = ", ".join(self.columns(table))
        where, where_params = scan.rows.sql(self.ident) if scan.rows is not None else ("true", [])
        sql = (
            f"insert into {self.qualified(table)} ({columns}) select {', '.join(select)} "  # noqa: S608
            f"from read_parquet(?, hive_partitioning = false, union_by_name = true) where {where}"
        )
        rows = self.query(sql, [*params, scan.files, *where_params])
        return int(rows[0][0]) if rows else 0
