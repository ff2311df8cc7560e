"""A small read-only reader of the warehouse (DuckDB or Snowflake) for the reporting layer.

Connections are short-lived: ``open_reader`` opens one per page refresh / report / export and
closes it at the end, so a DuckDB read-only connection never holds the file lock while the
loader wants to write. SQL is written once as templates whose ``{placeholders}`` are table
references: values are always bound, identifiers always go through ``quote_identifier``.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stockpipe.errors import StockpipeError
from stockpipe.settings import quote_identifier

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

Layer = Literal["raw", "gold"]
LOCK_RETRIES = 5
LOCK_BACKOFF_SECONDS = 0.2
SELECT_ALL = "select * from {t}"
SELECT_NONE = "select * from {t} where 1 = 0"


class WarehouseMissingError(StockpipeError):
    """The warehouse does not exist yet."""


class WarehouseEmptyError(StockpipeError):
    """The warehouse exists but has no gold tables or no bars yet."""


class WarehouseBusyError(StockpipeError):
    """Another process holds the DuckDB file's write lock."""


class WarehouseReader(ABC):
    """Read-only access to the raw and gold schemas; subclasses adapt one engine."""

    kind: str = ""
    location: str = ""

    def __init__(self) -> None:
        self._tables: dict[str, set[str]] | None = None

    @abstractmethod
    def ref(self, layer: Layer, name: str) -> str:
        """The quoted, fully qualified reference of a table, e.g. ``"gold"."fact_stock"``."""

    @abstractmethod
    def schema_name(self, layer: Layer) -> str:
        """The configured schema name of a layer (as the user knows it)."""

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any]) -> pd.DataFrame:
        """Run one statement with bound parameters and return its rows."""

    @abstractmethod
    def _list_tables(self) -> dict[str, set[str]]:
        """Lower-cased table and view names per layer."""

    @abstractmethod
    def arrow_reader(self, layer: Layer, name: str) -> pa.RecordBatchReader:
        """Every row of one table as a stream of Arrow batches (lower-case column names)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def tables(self, layer: Layer) -> set[str]:
        """Table names present in a layer (cached for the reader's lifetime)."""
        if self._tables is None:
            self._tables = self._list_tables()
        return self._tables.get(layer, set())

    def has(self, layer: Layer, name: str) -> bool:
        """Whether ``layer.name`` exists."""
        return name.lower() in self.tables(layer)

    def display(self, layer: Layer, name: str) -> str:
        """``schema.table`` as shown to users."""
        return f"{self.schema_name(layer)}.{name}"

    def query(self, template: str, params: Sequence[Any] = (), **tables: tuple[Layer, str]) -> pd.DataFrame:
        """Fill ``template``'s ``{name}`` slots with table references, bind ``params``, run it."""
        sql = template.format(**{slot: self.ref(*target) for slot, target in tables.items()})
        frame = self._fetch(sql, list(params))
        frame.columns = [str(c).lower() for c in frame.columns]
        return frame

    def count(self, layer: Layer, name: str) -> int | None:
        """Row count of a table, ``None`` when it does not exist."""
        if not self.has(layer, name):
            return None
        frame = self.query("select count(*) as n from {t}", t=(layer, name))
        return int(frame["n"].iloc[0])


class DuckDBReader(WarehouseReader):
    """A read-only DuckDB connection (session time zone UTC)."""

    kind = "duckdb"

    def __init__(self, path: Path, raw_schema: str, gold_schema: str) -> None:
        super().__init__()
        self.location = display_path(path)
        self._schemas: dict[str, str] = {"raw": raw_schema, "gold": gold_schema}
        self._con = _connect_duckdb(path, self.location)
        self._con.execute("SET TimeZone = 'UTC'")

    def schema_name(self, layer: Layer) -> str:
        return self._schemas[layer]

    def ref(self, layer: Layer, name: str) -> str:
        return f"{quote_identifier(self._schemas[layer], 'schema')}.{quote_identifier(name, 'table')}"

    def _fetch(self, sql: str, params: Sequence[Any]) -> pd.DataFrame:
        return self._con.execute(sql, params).df()

    def _list_tables(self) -> dict[str, set[str]]:
        rows = self._con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database()"
        ).fetchall()
        out: dict[str, set[str]] = {"raw": set(), "gold": set()}
        for layer, schema in self._schemas.items():
            out[layer] = {str(t).lower() for s, t in rows if str(s).lower() == schema.lower()}
        return out

    def arrow_reader(self, layer: Layer, name: str) -> pa.RecordBatchReader:
        rel = self._con.sql(SELECT_ALL.format(t=self.ref(layer, name)))
        return lower_case(rel.to_arrow_reader())

    def close(self) -> None:
        self._con.close()


def lower_case(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The same stream with lower-case column names."""
    import pyarrow as pa

    names = reader.schema.names
    lower = [n.lower() for n in names]
    if lower == names:
        return reader
    schema = pa.schema([f.with_name(n) for f, n in zip(reader.schema, lower, strict=True)])
    gen = (pa.RecordBatch.from_arrays(b.columns, schema=schema) for b in reader)
    return pa.RecordBatchReader.from_batches(schema, gen)


def display_path(path: Path) -> str:
    """A path relative to the working directory when it is below it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _connect_duckdb(path: Path, shown: str) -> Any:
    """Open ``path`` read-only, retrying briefly while a writer holds the lock."""
    import duckdb

    for attempt in range(LOCK_RETRIES):
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise StockpipeError(f"The warehouse at {shown} cannot be opened: {exc}.") from exc
            log.debug("warehouse locked (attempt %d): %s", attempt + 1, exc)
            time.sleep(LOCK_BACKOFF_SECONDS * (attempt + 1))
    raise WarehouseBusyError(
        f"The warehouse at {shown} is locked by another process (the loader is writing): "
        "try again in a few seconds."
    )


def duckdb_signature(path: Path) -> tuple[int, ...]:
    """A cheap change marker for a DuckDB file (no connection, so no lock): sizes and mtimes."""
    marks: list[int] = []
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            st = os.stat(candidate)
        except OSError:
            marks += [0, 0]
            continue
        marks += [st.st_mtime_ns, st.st_size]
    return tuple(marks)
