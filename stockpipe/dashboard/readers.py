"""The reader factory: open the configured warehouse read-only (DuckDB or Snowflake)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stockpipe.dashboard.snowflake_reader import SnowflakeReader
from stockpipe.dashboard.warehouse import DuckDBReader, WarehouseMissingError, WarehouseReader, display_path
from stockpipe.settings import Settings


@contextmanager
def open_reader(settings: Settings) -> Iterator[WarehouseReader]:
    """Open the configured warehouse read-only for the duration of a ``with`` block.

    Raises ``WarehouseMissingError`` when the DuckDB file does not exist (never creates it).
    """
    reader: WarehouseReader
    if settings.warehouse.kind == "snowflake":
        reader = SnowflakeReader(settings)
    else:
        path = settings.duckdb_path
        if not path.exists():
            raise WarehouseMissingError(
                f"The warehouse at {display_path(path)} does not exist yet: run `stockpipe run` first."
            )
        reader = DuckDBReader(path, settings.warehouse.raw_schema, settings.warehouse.gold_schema)
    try:
        yield reader
    finally:
        reader.close()
