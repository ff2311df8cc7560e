"""The silver and quarantine layers (docs/architecture.md, section 3), defined once.

``SILVER_FIELDS`` (the bar contract, then the partition and lineage columns) and
``QUARANTINE_FIELDS`` are the single source of truth; ``silver_schema()`` and
``quarantine_schema()`` are their Arrow schemas. Everything else is derived from those: the Spark
schemas of the cleaning job (``to_spark``), the warehouse's raw table and DDL, the dbt source
columns, the test writer of tests/helpers_silver.py; a unit test fails when any two disagree.

Both schemas include their partition column (``trade_date`` / ``ingest_date``), which Spark keeps
in the folder name rather than in the Parquet files. Bars live in two datasets with the same row
contract (``contract.layout.PRICE_DATASETS``): intraday bars partitioned by ``trade_date``, daily
bars (``DAILY_INTERVALS``) partitioned by ``DAILY_PARTITION``, the month of ``trade_date``, which
then stays a column in their files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stockpipe.contract.bar import BAR_FIELDS, INTERVALS, INTRADAY_INTERVALS, FieldSpec, arrow_fields

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import DataType, StructType

SILVER_PARTITION = "trade_date"  # the intraday bars' partition
DAILY_PARTITION = "trade_month"  # the daily bars' partition: YYYY-MM of trade_date
QUARANTINE_PARTITION = "ingest_date"
# bars kept in the daily dataset (one folder per month): every interval that is not intraday
DAILY_INTERVALS: tuple[str, ...] = tuple(i for i in INTERVALS if i not in INTRADAY_INTERVALS)

LINEAGE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("kafka_topic", "string", "Lineage: Kafka topic of the record"),
    FieldSpec("kafka_partition", "int", "Lineage: Kafka partition of the record"),
    FieldSpec("kafka_offset", "long", "Lineage: Kafka offset of the record"),
    FieldSpec("kafka_ts", "timestamp", "Lineage: Kafka record timestamp"),
    FieldSpec("ingest_date", "date", "Lineage: bronze partition the record came from"),
    FieldSpec("bronze_file", "string", "Lineage: bronze file name"),
)
SILVER_FIELDS: tuple[FieldSpec, ...] = (
    *BAR_FIELDS,
    FieldSpec(
        "trade_date",
        "date",
        "Date of bar_ts in the zone of the symbol's exchange (default XNYS); the intraday partition",
    ),
    FieldSpec(
        "is_regular_session",
        "boolean",
        "Session open <= bar_ts < session close on the exchange's calendar (daily bars: a session date)",
    ),
    *LINEAGE_FIELDS,
)
_LINEAGE = {f.name: f for f in LINEAGE_FIELDS}
QUARANTINE_FIELDS: tuple[FieldSpec, ...] = (
    _LINEAGE["kafka_topic"],
    _LINEAGE["kafka_partition"],
    _LINEAGE["kafka_offset"],
    _LINEAGE["kafka_ts"],
    FieldSpec("key", "string", "Kafka record key as text"),
    FieldSpec("raw_payload", "string", "Kafka record value as text, verbatim"),
    FieldSpec("failed_rules", "string_list", "Every rule the record breaks (stable snake_case names)"),
    _LINEAGE["bronze_file"],
    FieldSpec("quarantined_at", "timestamp", "When the cleaning run quarantined the record"),
    FieldSpec("ingest_date", "date", "Bronze partition of the record; the quarantine partition"),
)

LINEAGE_COLUMNS: tuple[str, ...] = tuple(f.name for f in LINEAGE_FIELDS)
SILVER_COLUMNS: tuple[str, ...] = tuple(f.name for f in SILVER_FIELDS)
QUARANTINE_COLUMNS: tuple[str, ...] = tuple(f.name for f in QUARANTINE_FIELDS)


def silver_schema() -> pa.Schema:
    """Arrow schema of a silver ``stock_prices`` row (``trade_date`` included)."""
    return arrow_fields(SILVER_FIELDS)


def quarantine_schema() -> pa.Schema:
    """Arrow schema of a silver ``quarantine`` row (``ingest_date`` included)."""
    return arrow_fields(QUARANTINE_FIELDS)


def without_partition(schema: pa.Schema, partition: str) -> pa.Schema:
    """The columns stored in the Parquet files (the partition column lives in the folder name)."""
    return schema.remove(schema.get_field_index(partition))


def spark_type(arrow: pa.DataType) -> DataType:
    """The Spark SQL type of an Arrow type (the types the silver contract uses)."""
    import pyarrow as pa
    from pyspark.sql import types as T

    if pa.types.is_list(arrow):
        return T.ArrayType(spark_type(arrow.value_type))
    if pa.types.is_timestamp(arrow):
        return T.TimestampType()
    simple: dict[pa.DataType, DataType] = {
        pa.string(): T.StringType(),
        pa.float64(): T.DoubleType(),
        pa.int64(): T.LongType(),
        pa.int32(): T.IntegerType(),
        pa.date32(): T.DateType(),
        pa.bool_(): T.BooleanType(),
    }
    if arrow not in simple:
        raise TypeError(f"no Spark type mapping for Arrow type {arrow}")
    return simple[arrow]


def to_spark(schema: pa.Schema) -> StructType:
    """The Spark schema of an Arrow schema (every field nullable, as Spark reads Parquet)."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in schema])
