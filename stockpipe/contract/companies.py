"""The companies reference contract: one row per symbol, Alpha Vantage OVERVIEW field names.

The CSV header (``CSV_COLUMNS`` keys) and the silver/warehouse columns (its values) are declared
here once; the Spark schema, the warehouse DDL (``warehouse/tables.py``) and the dbt source
(``gold/sources.py``) derive from ``arrow_schema()``. ``exchange`` names the trading calendar
of the symbol's bars: an ``exchange_calendars`` code (XNYS, XLON, XAMS, XSHG, ...) or one of its
aliases (NYSE, NASDAQ, LSE, ...); empty means ``DEFAULT_EXCHANGE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import StructType

CSV_COLUMNS: dict[str, str] = {
    "Symbol": "symbol",
    "AssetType": "asset_type",
    "Name": "name",
    "Description": "description",
    "Exchange": "exchange",
    "Sector": "sector",
    "Industry": "industry",
}
COLUMNS: tuple[str, ...] = tuple(CSV_COLUMNS.values())
DEFAULT_EXCHANGE = "XNYS"


def arrow_schema() -> pa.Schema:
    """Silver ``companies`` and warehouse ``raw.companies`` columns (all strings)."""
    import pyarrow as pa

    return pa.schema([pa.field(n, pa.string()) for n in COLUMNS])


def spark_schema() -> StructType:
    """The Spark schema derived from ``arrow_schema()`` (``symbol`` not null)."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, T.StringType(), f.name != "symbol") for f in arrow_schema()])
