"""The data contract shared by every stage: the bar schema and the layouts derived from it."""

from stockpipe.contract.bar import (
    BAR_FIELDS,
    FIELD_NAMES,
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
    "FIELD_NAMES",
    "INTERVALS",
    "SCHEMA_VERSION",
    "Bar",
    "arrow_schema",
    "dbt_source_columns",
    "json_schema",
    "json_schema_text",
    "spark_schema",
]
