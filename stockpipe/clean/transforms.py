"""Pure cleaning transformations: DataFrame in, DataFrame out, no I/O.

The chain is ``parse_raw -> normalise -> validate -> split -> deduplicate`` (see ``job.py`` for the
reading and writing around it). Everything is built from Spark column expressions (no Python
UDFs), so a whole batch is one scan with whole-stage code generation.

Timestamps (``bar_ts``, ``produced_at``) are parsed strictly:

* ISO-8601 with an offset or ``Z`` (``2024-03-04T09:30:00-05:00``, ``...T14:30:00.123Z``; a space
  instead of ``T`` is accepted); any zone is converted to the UTC instant, never rejected;
* a non-negative epoch number (JSON number or digit string, at most 15 digits): up to 11 digits
  (< 10^11) it is epoch **seconds**, otherwise epoch **milliseconds** (10^11 s is the year 5138
  and 10^11 ms is 1973, so inside the plausible range 1990..now the two never overlap);
* a date-time without offset is rejected as ``timestamp_without_offset`` (never guessed);
  anything else is ``bad_type_<field>``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stockpipe.clean.rules import RULES, Rule, unknown_symbol_rule, violations
from stockpipe.clean.sessions import SessionCalendar, session_calendar
from stockpipe.contract import silver
from stockpipe.contract.bar import BAR_FIELDS, DAILY_INTERVAL, FIELD_NAMES, spark_schema
from stockpipe.contract.companies import DEFAULT_EXCHANGE
from stockpipe.contract.layout import INTRADAY_PRICES, PriceDataset
from stockpipe.contract.silver import QUARANTINE_COLUMNS, SILVER_COLUMNS, to_spark

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

EXCHANGE_TZ = "America/New_York"  # the zone of a symbol the calendar does not list (XNYS)
TIMESTAMP_FIELDS: tuple[str, ...] = tuple(f.name for f in BAR_FIELDS if f.type == "timestamp")
# ISO-8601 date-time with an offset or Z (fraction optional): checked by regex, then Spark's own
# fast string->timestamp cast does the conversion (far cheaper than a DateTimeFormatter per row).
ISO_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
EPOCH_PATTERN = r"^\d{1,15}$"
EPOCH_SECONDS_MAX_DIGITS = 11  # < 10^11: seconds; 12+ digits: milliseconds
DEDUP_KEY: tuple[str, ...] = ("symbol", "interval", "bar_ts")
LINEAGE_COLUMNS: tuple[str, ...] = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_ts",
    "key",
    "raw_payload",
    "ingest_date",
    "bronze_file",
)
PARSED_COLUMNS: tuple[str, ...] = (*LINEAGE_COLUMNS, *FIELD_NAMES, "parse_errors")
"""The columns of ``parse_raw``'s result, in order."""
NORMALISED_COLUMNS: tuple[str, ...] = (
    *PARSED_COLUMNS,
    *(f"{name}_raw" for name in TIMESTAMP_FIELDS),
    "trade_date",
    "is_regular_session",
)
"""The columns of ``normalise``'s result, in order."""


def silver_schema() -> StructType:
    """Spark schema of a silver ``stock_prices`` row (``trade_date`` included), from the contract."""
    return to_spark(silver.silver_schema())


def quarantine_schema() -> StructType:
    """Spark schema of a silver ``quarantine`` row (``ingest_date`` included), from the contract."""
    return to_spark(silver.quarantine_schema())


def in_dataset(ds: PriceDataset) -> Column:
    """True for a bar that belongs to ``ds`` (by its interval; ``layout.price_dataset``)."""
    from pyspark.sql import functions as F

    return F.col("interval").isin(*ds.intervals)


def partition_value(ds: PriceDataset) -> Column:
    """A bar's partition value in ``ds``: ``trade_date``, or its ``YYYY-MM`` (``PriceDataset.value``)."""
    from pyspark.sql import functions as F

    if not ds.daily:
        return F.col("trade_date")
    return F.substring(F.col("trade_date").cast("string"), 1, 7)


def read_silver(spark: SparkSession, ds: PriceDataset, root: str, folders: list[str]) -> DataFrame:
    """The rows of the partition ``folders`` of ``ds`` (stored under ``root``), silver columns.

    Intraday files lack ``trade_date`` (it is the folder name); daily files keep it, and each
    month folder is read as a root of its own, so no partition column is inferred from its name.
    """
    reader = spark.read.schema(silver_schema())
    if not ds.daily:
        reader = reader.option("basePath", root)
    return reader.parquet(*(f"{root}/{f}" for f in folders)).select(*SILVER_COLUMNS)


def parse_raw(raw: DataFrame) -> DataFrame:
    """Bronze records → one row per record with the bar fields parsed and ``parse_errors``.

    ``raw`` has the bronze columns (``layout.raw_record_schema()``) plus ``ingest_date`` and
    ``bronze_file``. The value is parsed with the contract's schema (timestamps kept as strings
    for ``normalise``). Records that need a closer look (a field came out null) are parsed a
    second time with every field as a string, which tells a missing field from a mistyped one;
    ``parse_errors`` is ``[tombstone]``, ``[not_json]``, ``[not_object]`` or a list of
    ``missing_<field>`` / ``bad_type_<field>``.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    typed_schema = spark_schema()
    text_schema = T.StructType([T.StructField(n, T.StringType(), True) for n in FIELD_NAMES])
    opts = {"mode": "PERMISSIVE", "allowSingleQuotes": "false"}
    payload = F.col("value").cast("string")
    lineage_and_raw = {  # LINEAGE_COLUMNS
        "kafka_topic": F.col("topic"),
        "kafka_partition": F.col("partition").cast("int"),
        "kafka_offset": F.col("offset").cast("long"),
        "kafka_ts": F.col("kafka_ts"),
        "key": F.col("key").cast("string"),
        "raw_payload": payload,
        "ingest_date": F.col("ingest_date").cast("date"),
        "bronze_file": F.col("bronze_file"),
    }
    df = raw.select(
        *(col.alias(name) for name, col in lineage_and_raw.items()),
        F.from_json(payload, typed_schema, opts).alias("_t"),
    )
    typed = [F.col(f"_t.{n}") for n in FIELD_NAMES]
    incomplete = F.col("_t").isNull() | _any_null(typed)
    text = F.when(incomplete, F.from_json(F.col("raw_payload"), text_schema, opts))
    df = df.select("*", text.alias("_s"))
    kind = (
        F.when(F.col("raw_payload").isNull(), F.lit("tombstone"))
        .when(F.expr("try_parse_json(raw_payload)").isNull(), F.lit("not_json"))
        .when(F.json_object_keys(F.col("raw_payload")).isNull(), F.lit("not_object"))
    )
    field_errors = [
        F.when(F.col(f"_s.{n}").isNull(), F.lit(f"missing_{n}")).when(
            F.col(f"_t.{n}").isNull(), F.lit(f"bad_type_{n}")
        )
        for n in FIELD_NAMES
    ]
    errors = (
        F.when(~incomplete, F.array().cast("array<string>"))
        .when(kind.isNotNull(), F.array(kind))
        .otherwise(F.array_compact(F.array(*field_errors)))
    )
    fields = [F.col(f"_t.{n}").alias(n) for n in FIELD_NAMES]
    # the names, not ``df.columns``: over Spark Connect that asks the server to analyse the plan
    return df.select(*LINEAGE_COLUMNS, *fields, errors.alias("parse_errors"))


def _any_null(cols: list[Column]) -> Column:
    out = cols[0].isNull()
    for col in cols[1:]:
        out = out | col.isNull()
    return out


def parse_timestamp(raw: Column) -> Column:
    """A contract timestamp string → UTC ``timestamp`` (null when not strictly parseable)."""
    from pyspark.sql import functions as F

    millis = F.when(F.length(raw) <= EPOCH_SECONDS_MAX_DIGITS, F.concat(raw, F.lit("000"))).otherwise(raw)
    return F.when(raw.rlike(ISO_PATTERN), raw.try_cast("timestamp")).when(
        raw.rlike(EPOCH_PATTERN), F.timestamp_millis(millis.try_cast("long"))
    )


def normalise(df: DataFrame, calendar: SessionCalendar | None = None) -> DataFrame:
    """Typed, normalised bars: symbol upper-cased and trimmed, timestamps to UTC, exchange date.

    Adds ``trade_date`` (the date of ``bar_ts`` in the zone of the symbol's exchange) and
    ``is_regular_session`` (``open <= bar_ts < close`` of that day's session on that exchange;
    a daily bar: the day is a session), both from ``calendar`` (``clean.sessions``: the companies
    reference's exchanges and their ``exchange_calendars`` sessions, holidays and early closes;
    default: every symbol on XNYS). The calendar tables are broadcast-joined: no Python UDF. The
    raw timestamp strings stay as ``bar_ts_raw`` / ``produced_at_raw`` for the timestamp rules.
    ``df`` is ``parse_raw``'s result (``PARSED_COLUMNS``); the result has ``NORMALISED_COLUMNS``.
    """
    from pyspark.sql import functions as F

    cal = calendar or session_calendar(df.sparkSession)
    # one select per step, not withColumn/drop: over Spark Connect the server analyses the plan
    # below each withColumn or drop as it converts it, a select is converted as it is
    raw = {name: F.trim(F.col(name)) for name in TIMESTAMP_FIELDS}
    replaced = {"symbol": F.upper(F.trim(F.col("symbol"))), **{n: parse_timestamp(c) for n, c in raw.items()}}
    out = df.select(
        *(replaced[c].alias(c) if c in replaced else F.col(c) for c in PARSED_COLUMNS),
        *(col.alias(f"{name}_raw") for name, col in raw.items()),
    )
    symbols = cal.symbols.select(
        F.col("symbol").alias("_cal_symbol"), F.col("exchange").alias("_exchange"), F.col("tz").alias("_tz")
    )
    out = out.join(F.broadcast(symbols), F.col("symbol") == F.col("_cal_symbol"), "left")
    tz = F.coalesce(F.col("_tz"), F.lit(EXCHANGE_TZ))
    out = out.select(
        *NORMALISED_COLUMNS[:-2],
        F.to_date(F.from_utc_timestamp(F.col("bar_ts"), tz)).alias("trade_date"),
        F.coalesce(F.col("_exchange"), F.lit(DEFAULT_EXCHANGE)).alias("_bar_exchange"),
    )
    sessions = cal.sessions.select(
        F.col("exchange").alias("_s_exchange"),
        F.col("session_date").alias("_s_date"),
        F.col("open_utc").alias("_open"),
        F.col("close_utc").alias("_close"),
    )
    on = (F.col("_bar_exchange") == F.col("_s_exchange")) & (F.col("trade_date") == F.col("_s_date"))
    out = out.join(F.broadcast(sessions), on, "left")
    in_session = (
        F.col("_open").isNotNull() & (F.col("bar_ts") >= F.col("_open")) & (F.col("bar_ts") < F.col("_close"))
    )
    regular = (
        F.when(F.col("bar_ts").isNull(), F.lit(None).cast("boolean"))
        .when(F.col("interval") == DAILY_INTERVAL, F.col("_open").isNotNull())
        .otherwise(in_session)
    )
    return out.select(*NORMALISED_COLUMNS[:-1], regular.alias("is_regular_session"))


def validate(
    df: DataFrame,
    *,
    now: datetime | None = None,
    rules: tuple[Rule, ...] = RULES,
    known_symbols: Collection[str] | None = None,
) -> DataFrame:
    """Add ``failed_rules``: the parse errors, then every violated rule (empty = clean).

    ``now`` bounds the plausible ``bar_ts`` range (default: the current time). With
    ``known_symbols`` (the companies reference) a symbol outside it fails ``unknown_symbol``.
    """
    from pyspark.sql import functions as F

    moment = now or datetime.now(UTC)
    if known_symbols is not None:
        rules = (*rules, unknown_symbol_rule(known_symbols))
    any_violated, names = violations(moment, rules)
    errors = F.col("parse_errors")
    clean_row = (F.size(errors) == 0) & ~any_violated
    # the common case (a clean row) gets a constant empty array: no per-row allocation
    failed = F.when(clean_row, F.array().cast("array<string>")).otherwise(F.concat(errors, names))
    return df.select("*", failed.alias("failed_rules"))


def split(df: DataFrame, *, quarantined_at: datetime | None = None) -> tuple[DataFrame, DataFrame]:
    """``(good, quarantine)``: clean rows with the silver columns, failed rows with the quarantine ones."""
    from pyspark.sql import functions as F

    failed = F.size(F.col("failed_rules")) > 0
    good = df.where(~failed).select(*SILVER_COLUMNS)
    at = F.lit(quarantined_at or datetime.now(UTC)).cast("timestamp")
    bad = df.where(failed).select(*(at.alias(c) if c == "quarantined_at" else c for c in QUARANTINE_COLUMNS))
    return good, bad


def narrow_for_split(df: DataFrame) -> DataFrame:
    """Only what ``split`` needs of validated rows; the raw payload is kept for failed rows only.

    A clean row's payload is never written anywhere (silver holds the parsed fields), so
    dropping it here makes a cached batch a fraction of its size.
    """
    from pyspark.sql import functions as F

    failed = F.size(F.col("failed_rules")) > 0
    needed = dict.fromkeys((*SILVER_COLUMNS, *QUARANTINE_COLUMNS))
    needed.pop("quarantined_at")
    return df.select(*(F.when(failed, F.col(c)).alias(c) if c == "raw_payload" else F.col(c) for c in needed))


def deduplicate(
    good: DataFrame,
    existing_silver: DataFrame | None = None,
    *,
    partitions: int | None = None,
    dataset: PriceDataset = INTRADAY_PRICES,
) -> DataFrame:
    """One row per (symbol, interval, bar_ts): the latest by ``produced_at``, then Kafka position.

    ``existing_silver`` (rows already in silver for the affected partitions) competes on equal
    terms, so a bar re-sent later replaces the stored one and an old re-delivery never wins.
    Ties are broken by partition, offset and bronze file name, so the result is deterministic.
    The result has the silver columns plus ``dataset``'s partition column (``trade_month`` for
    the daily dataset). With ``partitions`` the rows are first hash-partitioned by that column
    into that many partitions, so writing the result partitioned by it gives one file per folder.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    rows = good.select(*SILVER_COLUMNS)
    if existing_silver is not None:
        rows = rows.unionByName(existing_silver.select(*SILVER_COLUMNS))
    key = dataset.partition
    if key not in SILVER_COLUMNS:
        rows = rows.select("*", partition_value(dataset).alias(key))
    if partitions is not None:
        rows = rows.repartition(partitions, key)
    order = [
        F.col("produced_at").desc_nulls_last(),
        F.col("kafka_partition").desc_nulls_last(),
        F.col("kafka_offset").desc_nulls_last(),
        F.col("bronze_file").desc_nulls_last(),
    ]
    # the partition column is a function of bar_ts, so adding it to the key changes nothing but
    # lets a frame already hash-partitioned by it be deduplicated without another shuffle.
    window = Window.partitionBy(key, *DEDUP_KEY).orderBy(*order)
    ranked = rows.select("*", F.row_number().over(window).alias("_rank"))
    return ranked.where(F.col("_rank") == 1).select(*dict.fromkeys((*SILVER_COLUMNS, key)))


def rule_counts(quarantine: DataFrame) -> dict[str, int]:
    """Records per failed rule (a record failing two rules counts under both)."""
    from pyspark.sql import functions as F

    rows = quarantine.select(F.explode(F.col("failed_rules")).alias("rule")).groupBy("rule").count().collect()
    return {str(r["rule"]): int(r["count"]) for r in sorted(rows, key=lambda r: str(r["rule"]))}


def clean(
    raw: DataFrame,
    *,
    now: datetime | None = None,
    known_symbols: Collection[str] | None = None,
    calendar: SessionCalendar | None = None,
) -> DataFrame:
    """``validate(normalise(parse_raw(raw), calendar))``: every record with its ``failed_rules``."""
    return validate(normalise(parse_raw(raw), calendar), now=now, known_symbols=known_symbols)


__all__ = [
    "DEDUP_KEY",
    "QUARANTINE_COLUMNS",
    "RULES",
    "SILVER_COLUMNS",
    "clean",
    "deduplicate",
    "in_dataset",
    "narrow_for_split",
    "normalise",
    "parse_raw",
    "parse_timestamp",
    "partition_value",
    "quarantine_schema",
    "read_silver",
    "rule_counts",
    "silver_schema",
    "split",
    "validate",
]
