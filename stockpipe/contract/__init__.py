"""The data contract shared by every stage: the bar, silver and quarantine schemas, the interval
table, and the layouts derived from them (``bar.py``, ``silver.py``, ``layout.py``)."""

from stockpipe.contract.bar import (
    BAR_FIELDS,
    DAILY_INTERVAL,
    FIELD_NAMES,
    INTERVAL_MINUTES,
    INTERVALS,
    SCHEMA_VERSION,
    Bar,
    arrow_schema,
    dbt_source_columns,
    json_schema,
    json_schema_text,
    spark_schema,
)

__all__ = [
    "BAR_FIELDS",
    "DAILY_INTERVAL",
    "FIELD_NAMES",
    "INTERVALS",
    "INTERVAL_MINUTES",
    "SCHEMA_VERSION",
    "Bar",
    "arrow_schema",
    "dbt_source_columns",
    "json_schema",
    "json_schema_text",
    "spark_schema",
]
