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

from stockpipe.contract.bar import FieldSpec, arrow_fields
from stockpipe.contract.silver import quarantine_schema, without_partition

if TYPE_CHECKING:
    import pyarrow as pa

UNPARSABLE_RULE = "unparsable_row"
FILE_PREFIX = "part-unparsable-"
ORIGIN_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("source_file", "string", "Replayed file the unparsable row came from"),
    FieldSpec("source_line", "long", "Line number of the row in that file (1 = first line)"),
    FieldSpec("detail", "string", "Why the row could not be parsed"),
)
ORIGIN_COLUMNS: tuple[str, ...] = tuple(f.name for f in ORIGIN_FIELDS)


def unparsable_schema() -> pa.Schema:
    """Arrow schema of a producer-side quarantine file (``ingest_date`` is in the path): the
    quarantine contract's columns plus the origin columns of a file row."""
    schema = without_partition(quarantine_schema(), "ingest_date")
    for field in arrow_fields(ORIGIN_FIELDS):
        schema = schema.append(field)
    return schema


def quarantine_union_schema() -> pa.Schema:
    """Every column any quarantine file has, plus the ``ingest_date`` partition column."""
    import pyarrow as pa

    return unparsable_schema().append(pa.field("ingest_date", pa.date32()))
