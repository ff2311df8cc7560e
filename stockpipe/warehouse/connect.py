"""The warehouse factory: open the adapter ``settings.warehouse.kind`` names."""

from __future__ import annotations

from stockpipe.settings import Settings
from stockpipe.warehouse.base import Warehouse
from stockpipe.warehouse.duckdb import DuckDBWarehouse
from stockpipe.warehouse.snowflake import SnowflakeWarehouse


def connect_warehouse(settings: Settings) -> Warehouse:
    """Open the configured warehouse (``settings.warehouse.kind``)."""
    if settings.warehouse.kind == "snowflake":
        return SnowflakeWarehouse.connect(settings)
    return DuckDBWarehouse.connect(settings)
