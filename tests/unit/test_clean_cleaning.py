"""Unit tests of the pure cleaning functions on tiny DataFrames (session-scoped local Spark)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from stockpipe.clean import transforms
from stockpipe.clean.rules import RULE_NAMES
from stockpipe.contract.bar import FIELD_NAMES
from tests.fixtures.spark import SPARK_MODES, spark_in_mode
from tests.helpers_bronze import bar_json


@pytest.fixture(params=SPARK_MODES)
def spark(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Every test of this module over a classic and over a Spark Connect session."""
    yield from spark_in_mode(request)


NOW = datetime(2024, 7, 10, tzinfo=UTC)
RAW_COLUMNS = ["topic", "partition", "offset", "kafka_ts", "key", "value", "ingest_date", "bronze_file"]


def raw_df(spark: Any, values: list[bytes | None], *, partition: int = 0, first: int = 0) -> Any:
    """A DataFrame shaped like a bronze read (raw record columns + ingest_date + bronze_file)."""
    from pyspark.sql import types as T

    schema = T.StructType(
        [
            T.StructField("topic", T.StringType()),
            T.StructField("partition", T.IntegerType()),
            T.StructField("offset", T.LongType()),
            T.StructField("kafka_ts", T.TimestampType()),
            T.StructField("key", T.BinaryType()),
            T.StructField("value", T.BinaryType()),
            T.StructField("ingest_date", T.DateType()),
            T.StructField("bronze_file", T.StringType()),
        ]
    )
    ts = datetime(2024, 3, 4, 15, tzinfo=UTC)
    rows = [
        ("stock-prices", partition, first + i, ts, b"AAPL", v, date(2024, 3, 4), "f.parquet")
        for i, v in enumerate(values)
    ]
    return spark.createDataFrame(rows, schema)


def as_utc(value: datetime) -> datetime:
    """PySpark returns timestamps as naive datetimes in the Python process's local zone."""
    return value.astimezone(UTC)


def cleaned(spark: Any, values: list[bytes | None]) -> list[Any]:
    return transforms.clean(raw_df(spark, values), now=NOW).orderBy("kafka_offset").collect()


class Batch:
    """Many single-record cases cleaned in ONE Spark job (a query per case would be slow)."""

    def __init__(self) -> None:
        self.values: list[bytes | None] = []
        self.rows: list[Any] | None = None

    def add(self, value: bytes | None) -> int:
        self.values.append(value)
        return len(self.values) - 1

    def row(self, spark: Any, index: int) -> Any:
        if self.rows is None:
            self.rows = cleaned(spark, self.values)
        return self.rows[index]


BATCH = Batch()


def case(value: bytes | None) -> int:
    """Register a record for the module's batch; returns its index (= its Kafka offset)."""
    return BATCH.add(value)


def rules_of(spark: Any, index: int) -> list[str]:
    return list(BATCH.row(spark, index)["failed_rules"])


# ---- parse_raw -------------------------------------------------------------------------------


def test_parse_raw_types_every_contract_field(spark: Any) -> None:
    row = transforms.parse_raw(raw_df(spark, [bar_json()])).collect()[0]
    assert row["parse_errors"] == []
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == (10.0, 11.0, 9.5, 10.5, 100)
    assert row["schema_version"] == 1
    assert row["raw_payload"] == bar_json().decode()
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("stock-prices", 0, 0)
    assert row["key"] == "AAPL"


def test_the_parse_and_normalise_frames_have_the_columns_their_constants_name(spark: Any) -> None:
    """``normalise`` selects by ``PARSED_COLUMNS`` and the job by ``NORMALISED_COLUMNS`` (no
    ``df.columns`` round trip over Connect): a column added to either function must be named there."""
    parsed = transforms.parse_raw(raw_df(spark, [bar_json()]))
    assert tuple(parsed.columns) == transforms.PARSED_COLUMNS
    assert tuple(transforms.normalise(parsed).columns) == transforms.NORMALISED_COLUMNS


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (case(b"this is not json"), ["not_json"]),
        (case(b""), ["not_json"]),
        (case(b"{'symbol': 'AAPL'}"), ["not_json"]),
        (case(b"[1, 2, 3]"), ["not_object"]),
        (case(b"42"), ["not_object"]),
        (case(b"null"), ["not_object"]),
        (case(None), ["tombstone"]),
    ],
)
def test_parse_raw_unparseable_payloads_get_exactly_one_reason(
    spark: Any, index: int, expected: list[str]
) -> None:
    assert rules_of(spark, index) == expected


@pytest.mark.parametrize(("field", "index"), [(f, case(bar_json(drop=[f]))) for f in FIELD_NAMES])
def test_missing_field_is_named(spark: Any, field: str, index: int) -> None:
    assert rules_of(spark, index) == [f"missing_{field}"]


_NULL_VOLUME = case(bar_json(volume=None))


def test_json_null_counts_as_missing(spark: Any) -> None:
    assert rules_of(spark, _NULL_VOLUME) == ["missing_volume"]


@pytest.mark.parametrize(
    ("field", "index"),
    [
        (f, case(bar_json(**{f: v})))
        for f, v in [
            ("close", "abc"),
            ("open", {"a": 1}),
            ("volume", 10.5),
            ("volume", "100"),
            ("schema_version", "x"),
            ("symbol", 42.5),
        ]
    ],
)
def test_wrong_type_is_bad_type_not_missing(spark: Any, field: str, index: int) -> None:
    expected = [f"bad_type_{field}"]
    if field == "symbol":  # a number read as text is a string, but not a valid symbol
        expected = ["bad_symbol"]
    assert rules_of(spark, index) == expected


_TWO_FIELD_ERRORS = case(bar_json(drop=["source"], close="abc"))


def test_several_field_errors_are_all_reported(spark: Any) -> None:
    assert sorted(rules_of(spark, _TWO_FIELD_ERRORS)) == ["bad_type_close", "missing_source"]


# ---- normalise -------------------------------------------------------------------------------

_LOWER_SYMBOL = case(bar_json(symbol="  aapl "))


def test_normalise_symbol_timestamps_trade_date_and_session(spark: Any) -> None:
    row = BATCH.row(spark, _LOWER_SYMBOL)
    assert row["failed_rules"] == []
    assert row["symbol"] == "AAPL"
    assert as_utc(row["bar_ts"]) == datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    assert as_utc(row["produced_at"]) == datetime(2024, 3, 4, 14, 31, tzinfo=UTC)
    assert row["trade_date"] == date(2024, 3, 4)
    assert row["is_regular_session"] is True
    assert row["kafka_offset"] == _LOWER_SYMBOL


@pytest.mark.parametrize(
    ("index", "utc"),
    [
        (
            case(bar_json(bar_ts="2024-03-04T23:30:00+09:00")),
            datetime(2024, 3, 4, 14, 30, tzinfo=UTC),
        ),  # other zone
        (
            case(bar_json(bar_ts="2024-03-04T15:30:00.250+01:00")),
            datetime(2024, 3, 4, 14, 30, 0, 250000, tzinfo=UTC),
        ),
        (case(bar_json(bar_ts="2024-03-04T14:30:00Z")), datetime(2024, 3, 4, 14, 30, tzinfo=UTC)),
        (case(bar_json(bar_ts="2024-03-04 14:30:00+00:00")), datetime(2024, 3, 4, 14, 30, tzinfo=UTC)),
        (case(bar_json(bar_ts="2024-03-04T14:30:00+0000")), datetime(2024, 3, 4, 14, 30, tzinfo=UTC)),
        (
            case(bar_json(bar_ts=1709562600000)),
            datetime(2024, 3, 4, 14, 30, tzinfo=UTC),
        ),  # epoch ms (JSON number)
        (case(bar_json(bar_ts=1709562600)), datetime(2024, 3, 4, 14, 30, tzinfo=UTC)),  # epoch seconds
    ],
)
def test_accepted_timestamp_forms_become_the_same_utc_instant(spark: Any, index: int, utc: datetime) -> None:
    row = BATCH.row(spark, index)
    assert row["failed_rules"] == []
    assert as_utc(row["bar_ts"]) == utc
    assert row["trade_date"] == date(2024, 3, 4)


_LATE_EVENING = case(bar_json(bar_ts="2024-03-05T01:00:00Z"))


def test_trade_date_is_the_new_york_date_not_the_utc_date(spark: Any) -> None:
    # 2024-03-05 01:00 UTC is 2024-03-04 20:00 in New York (after hours).
    row = BATCH.row(spark, _LATE_EVENING)
    assert row["trade_date"] == date(2024, 3, 4)
    assert row["is_regular_session"] is False


@pytest.mark.parametrize(
    ("index", "regular"),
    [
        (case(bar_json(bar_ts="2024-03-04T09:29:00-05:00")), False),
        (case(bar_json(bar_ts="2024-03-04T09:30:00-05:00")), True),
        (case(bar_json(bar_ts="2024-03-04T15:59:00-05:00")), True),
        (case(bar_json(bar_ts="2024-03-04T16:00:00-05:00")), False),
        (case(bar_json(bar_ts="2024-03-02T10:00:00-05:00")), False),  # Saturday
        (case(bar_json(bar_ts="2024-07-01T13:30:00Z")), True),  # 09:30 EDT (summer time)
        (case(bar_json(bar_ts="2024-03-04T00:00:00-05:00", interval="1day")), True),
    ],
)
def test_regular_session_flag(spark: Any, index: int, regular: bool) -> None:
    row = BATCH.row(spark, index)
    assert row["failed_rules"] == []
    assert row["is_regular_session"] is regular


# ---- validate: each bad input has its named rule ---------------------------------------------

_OHLC = ["high_below_low", "open_outside_range", "close_outside_range"]


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (case(bar_json(open=-1.0, low=-2.0)), ["price_not_positive"]),
        (case(bar_json(low=0.0)), ["price_not_positive"]),
        (case(bar_json(volume=-5)), ["volume_negative"]),
        (case(bar_json(high=9.0, low=9.6, open=9.5, close=9.5)), _OHLC),
        (case(bar_json(open=12.0)), ["open_outside_range"]),
        (case(bar_json(open=9.0)), ["open_outside_range"]),
        (case(bar_json(close=11.5)), ["close_outside_range"]),
        (case(bar_json(close=9.4)), ["close_outside_range"]),
        (case(bar_json(bar_ts="2024-03-04T09:30:00")), ["timestamp_without_offset"]),
        (case(bar_json(produced_at="2024-03-04 14:31:00")), ["timestamp_without_offset"]),
        (case(bar_json(bar_ts="yesterday")), ["bad_type_bar_ts"]),
        (case(bar_json(bar_ts="2024-13-45T09:30:00Z")), ["bad_type_bar_ts"]),
        (case(bar_json(produced_at="soon")), ["bad_type_produced_at"]),
        (case(bar_json(bar_ts="1989-12-31T23:59:00Z")), ["bar_ts_out_of_range"]),
        (case(bar_json(bar_ts="2024-07-12T00:01:00Z")), ["bar_ts_out_of_range"]),  # after tomorrow
        (case(bar_json(interval="2min")), ["unknown_interval"]),
        (case(bar_json(symbol="AA PL")), ["bad_symbol"]),
        (case(bar_json(schema_version=2)), ["unknown_schema_version"]),
        (case(bar_json(open="NaN")), ["price_not_finite", "open_outside_range"]),  # NaN sorts above all
    ],
)
def test_each_bad_value_fails_its_named_rule(spark: Any, index: int, expected: list[str]) -> None:
    assert set(expected) <= set(RULE_NAMES)
    assert rules_of(spark, index) == expected


_END_OF_TOMORROW = case(bar_json(bar_ts="2024-07-11T23:59:00Z"))


def test_a_bar_of_tomorrow_is_still_plausible(spark: Any) -> None:
    assert rules_of(spark, _END_OF_TOMORROW) == []


_MANY = case(bar_json(volume=-1, interval="7min", high=9.0))
_VALID = case(bar_json())


def test_a_record_breaking_several_rules_lists_them_all(spark: Any) -> None:
    got = rules_of(spark, _MANY)
    assert got == [
        "volume_negative",
        "high_below_low",
        "open_outside_range",
        "close_outside_range",
        "unknown_interval",
    ]


def test_a_valid_bar_passes_every_rule(spark: Any) -> None:
    assert rules_of(spark, _VALID) == []


def test_unknown_symbol_fails_only_when_a_reference_is_given(spark: Any) -> None:
    values = [bar_json(symbol="AAPL"), bar_json(symbol=" zzzz "), bar_json(symbol="", volume=-1)]
    checked = transforms.clean(raw_df(spark, values), now=NOW, known_symbols={"AAPL", "MSFT"})
    got = [list(r["failed_rules"]) for r in checked.orderBy("kafka_offset").collect()]
    assert got == [[], ["unknown_symbol"], ["volume_negative", "bad_symbol", "unknown_symbol"]]
    unchecked = [list(r["failed_rules"]) for r in cleaned(spark, values)]
    assert unchecked == [[], [], ["volume_negative", "bad_symbol"]]


def test_an_empty_reference_rejects_every_symbol(spark: Any) -> None:
    rows = transforms.clean(raw_df(spark, [bar_json()]), now=NOW, known_symbols=set()).collect()
    assert list(rows[0]["failed_rules"]) == ["unknown_symbol"]


# ---- split, rule_counts ----------------------------------------------------------------------


def test_narrow_for_split_keeps_what_split_needs_and_only_failed_payloads(spark: Any) -> None:
    values = [bar_json(), bar_json(volume=-1)]
    narrow = transforms.narrow_for_split(transforms.clean(raw_df(spark, values), now=NOW))
    good, bad = transforms.split(narrow, quarantined_at=NOW)
    assert tuple(good.columns) == transforms.SILVER_COLUMNS
    assert tuple(bad.columns) == transforms.QUARANTINE_COLUMNS
    payloads = {r["kafka_offset"]: r["raw_payload"] for r in narrow.collect()}
    assert payloads[0] is None
    assert json.loads(payloads[1])["volume"] == -1


def test_split_partitions_every_record_once_with_contract_columns(spark: Any) -> None:
    values = [bar_json(), b"nope", bar_json(volume=-1), None, bar_json(symbol="MSFT")]
    good, bad = transforms.split(transforms.clean(raw_df(spark, values), now=NOW), quarantined_at=NOW)
    assert tuple(good.columns) == transforms.SILVER_COLUMNS
    assert tuple(bad.columns) == transforms.QUARANTINE_COLUMNS
    good_offsets = {r["kafka_offset"] for r in good.collect()}
    bad_rows = {r["kafka_offset"]: r for r in bad.collect()}
    assert good_offsets == {0, 4}
    assert set(bad_rows) == {1, 2, 3}
    assert bad_rows[1]["raw_payload"] == "nope"
    assert bad_rows[3]["raw_payload"] is None
    assert as_utc(bad_rows[2]["quarantined_at"]) == NOW
    assert json.loads(bad_rows[2]["raw_payload"])["volume"] == -1


def test_rule_counts_counts_each_rule(spark: Any) -> None:
    values = [b"x", b"y", bar_json(volume=-1, interval="9min"), bar_json(volume=-2), bar_json()]
    _, bad = transforms.split(transforms.clean(raw_df(spark, values), now=NOW))
    assert transforms.rule_counts(bad) == {"not_json": 2, "unknown_interval": 1, "volume_negative": 2}


# ---- deduplicate -----------------------------------------------------------------------------


def _good(spark: Any, values: list[bytes], first: int = 0, partition: int = 0) -> Any:
    good, bad = transforms.split(
        transforms.clean(raw_df(spark, values, first=first, partition=partition), now=NOW)
    )
    assert bad.count() == 0
    return good


def test_exact_duplicate_keeps_one_row_the_later_offset(spark: Any) -> None:
    out = transforms.deduplicate(_good(spark, [bar_json(), bar_json()])).collect()
    assert len(out) == 1
    assert out[0]["kafka_offset"] == 1


def test_newer_version_of_a_bar_wins_regardless_of_offset_order(spark: Any) -> None:
    newer = bar_json(close=10.9, produced_at="2024-03-04T15:00:00Z")
    older = bar_json(close=10.1, produced_at="2024-03-04T14:31:00Z")
    out = transforms.deduplicate(_good(spark, [newer, older])).collect()
    assert [(r["close"], r["kafka_offset"]) for r in out] == [(10.9, 0)]


def test_same_bar_in_other_zone_is_a_duplicate(spark: Any) -> None:
    values = [bar_json(), bar_json(bar_ts="2024-03-04T14:30:00Z"), bar_json(bar_ts=1709562600000)]
    assert transforms.deduplicate(_good(spark, values)).count() == 1


def test_distinct_keys_are_all_kept(spark: Any) -> None:
    values = [
        bar_json(),
        bar_json(symbol="MSFT"),
        bar_json(interval="5min"),
        bar_json(bar_ts="2024-03-04T09:31:00-05:00"),
    ]
    assert transforms.deduplicate(_good(spark, values)).count() == 4


def test_existing_silver_row_is_replaced_by_a_newer_resend_and_beats_an_older_one(spark: Any) -> None:
    existing = _good(spark, [bar_json(close=10.2, produced_at="2024-03-04T14:40:00Z")], first=100)
    resent_newer = _good(spark, [bar_json(close=10.8, produced_at="2024-03-06T09:00:00Z")], first=200)
    resent_older = _good(spark, [bar_json(close=10.1, produced_at="2024-03-04T14:35:00Z")], first=300)
    newer = transforms.deduplicate(resent_newer, existing_silver=existing).collect()
    older = transforms.deduplicate(resent_older, existing_silver=existing).collect()
    assert [(r["close"], r["kafka_offset"]) for r in newer] == [(10.8, 200)]
    assert [(r["close"], r["kafka_offset"]) for r in older] == [(10.2, 100)]
