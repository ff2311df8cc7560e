"""The quarantine rows a producer writes for file rows it could not parse (rule ``unparsable_row``).

They live in the quarantine layer with the Spark job's rows
(``silver/quarantine/ingest_date=YYYY-MM-DD/``), one file per input file named
``part-unparsable-<sha256 of the file, 16 hex>.parquet``, so a re-run of the same file rewrites
it instead of adding a copy. The columns are the Spark quarantine's (the Kafka lineage columns
null: these rows never reached Kafka) plus the explicit origin ``source_file``/``source_line``
and ``detail`` (what was wrong). Readers of the whole quarantine read with
``quarantine_union_schema()``: a column a file lacks is null (Spark's rows have no
``source_file``; these have no Kafka offsets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

UNPARSABLE_RULE = "unparsable_row"
FILE_PREFIX = "part-unparsable-"
ORIGIN_COLUMNS: tuple[str, ...] = ("source_file", "source_line", "detail")


def unparsable_schema() -> pa.Schema:
    """Arrow schema of a producer-side quarantine file (``ingest_date`` is in the path)."""
    import pyarrow as pa

    utc = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            pa.field("kafka_topic", pa.string()),
            pa.field("kafka_partition", pa.int32()),
            pa.field("kafka_offset", pa.int64()),
            pa.field("kafka_ts", utc),
            pa.field("key", pa.string()),
            pa.field("raw_payload", pa.string()),
            pa.field("failed_rules", pa.list_(pa.string())),
            pa.field("bronze_file", pa.string()),
            pa.field("quarantined_at", utc),
            pa.field("source_file", pa.string()),
            pa.field("source_line", pa.int64()),
            pa.field("detail", pa.string()),
        ]
    )


def quarantine_union_schema() -> pa.Schema:
    """Every column any quarantine file has, plus the ``ingest_date`` partition column."""
    import pyarrow as pa

    return unparsable_schema().append(pa.field("ingest_date", pa.date32()))
