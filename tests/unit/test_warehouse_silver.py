from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stockpipe.warehouse import tables
from stockpipe.warehouse.silver import (
    WHOLE_TABLE,
    SilverFile,
    SilverReader,
    SilverSchemaError,
    fingerprint,
    normalize,
)
from tests.helpers_silver import make_bars, write_silver


def _reader(lake: Path) -> SilverReader:
    import fsspec

    fs, path = fsspec.core.url_to_fs(lake.resolve().as_uri())
    return SilverReader(fs, path)


def test_fingerprint_is_order_independent_and_sensitive_to_name_and_size() -> None:
    a, b = SilverFile("/x/a.parquet", "a.parquet", 10), SilverFile("/x/b.parquet", "b.parquet", 20)
    assert fingerprint([a, b]) == fingerprint([b, a])
    assert fingerprint([a, b]) != fingerprint([a, SilverFile("/x/b.parquet", "b.parquet", 21)])
    assert fingerprint([a, b]) != fingerprint([a, SilverFile("/x/c.parquet", "c.parquet", 20)])
    # the folder does not matter, only (name, size)
    assert fingerprint([a]) == fingerprint([SilverFile("/elsewhere/a.parquet", "a.parquet", 10)])


def test_partitions_are_listed_with_their_parquet_files_only(tmp_path: Path) -> None:
    ds = write_silver(tmp_path / "lake", days=2, bars_per_day=3, files_per_partition=2)
    base = tmp_path / "lake" / "silver" / "stock_prices"
    # things Spark and others leave around, which are not data
    (base / "trade_date=2024-03-04" / ".part-0.crc").write_text("x")
    (base / "trade_date=2024-03-04" / "_committed_123").write_text("x")
    (base / "_temporary").mkdir()
    (base / "trade_date=__HIVE_DEFAULT_PARTITION__").mkdir()
    (base / "trade_date=2024-03-06").mkdir()  # empty: nothing to load

    parts = _reader(tmp_path / "lake").partitions("stock_prices", "trade_date")
    assert [p.key for p in parts] == [f"trade_date={d.isoformat()}" for d in ds.trade_dates]
    assert [p.value for p in parts] == ds.trade_dates
    for p in parts:
        assert len(p.files) == 2
        assert all(f.name.startswith("part-") and f.name.endswith(".parquet") for f in p.files)
        assert all(f.size == (base / p.key / f.name).stat().st_size for f in p.files)


def test_missing_dataset_has_no_partitions(tmp_path: Path) -> None:
    reader = _reader(tmp_path)
    assert reader.partitions("stock_prices", "trade_date") == []
    assert reader.whole("companies") is None


def test_rewriting_a_partition_changes_its_fingerprint(tmp_path: Path) -> None:
    ds = write_silver(tmp_path / "lake", days=2, bars_per_day=3)
    reader = _reader(tmp_path / "lake")
    before = {p.key: p.fingerprint for p in reader.partitions("stock_prices", "trade_date")}
    ds.replace_partition(ds.trade_dates[0], ds.partition(ds.trade_dates[0]))  # same rows, new file name
    after = {p.key: p.fingerprint for p in reader.partitions("stock_prices", "trade_date")}
    first, second = (f"trade_date={d.isoformat()}" for d in ds.trade_dates)
    assert before[first] != after[first]
    assert before[second] == after[second]


def test_read_normalized_fills_the_partition_column_and_keeps_rows(tmp_path: Path) -> None:
    ds = write_silver(tmp_path / "lake", days=2, bars_per_day=4, files_per_partition=3)
    reader = _reader(tmp_path / "lake")
    loaded_at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    part = reader.partitions("stock_prices", "trade_date")[1]
    table = reader.read_normalized(
        part, tables.raw_stock_prices_schema(), {"trade_date": part.value, "loaded_at": loaded_at}
    )
    assert table.schema.equals(tables.raw_stock_prices_schema())
    expected = ds.partition(ds.trade_dates[1])
    assert table.num_rows == expected.num_rows
    assert set(table.column("trade_date").to_pylist()) == {ds.trade_dates[1]}
    assert set(table.column("loaded_at").to_pylist()) == {loaded_at}
    key = ["symbol", "bar_ts"]
    got = table.select([*key, "close", "volume", "kafka_offset"]).sort_by([(k, "ascending") for k in key])
    want = expected.select([*key, "close", "volume", "kafka_offset"]).sort_by([(k, "ascending") for k in key])
    assert got.equals(want)


def test_normalize_casts_spark_physical_types(tmp_path: Path) -> None:
    """INT96 (naive nanosecond) timestamps mean UTC; int64 where int32 is expected is narrowed."""
    bars = make_bars(("AAPL",), days=1, bars_per_day=2, premarket_bars=0).drop_columns(["trade_date"])
    spark_like = bars.set_column(
        bars.schema.get_field_index("schema_version"),
        "schema_version",
        bars.column("schema_version").cast(pa.int64()),
    )
    path = tmp_path / "part-0.parquet"
    pq.write_table(spark_like, path, use_deprecated_int96_timestamps=True)
    raw = pq.read_table(path)
    assert raw.schema.field("bar_ts").type == pa.timestamp("ns")  # what Spark's INT96 reads as

    out = normalize(raw, tables.silver_stock_prices_schema(), {"trade_date": date(2024, 3, 4)}, str(path))
    assert out.schema.equals(tables.silver_stock_prices_schema())
    assert out.column("bar_ts").to_pylist() == bars.column("bar_ts").to_pylist()
    assert out.column("schema_version").to_pylist() == [1, 1]


def test_normalize_refuses_a_missing_column_and_an_unconvertible_type() -> None:
    bars = make_bars(("AAPL",), days=1, bars_per_day=1, premarket_bars=0)
    with pytest.raises(SilverSchemaError, match="has no column close"):
        normalize(bars.drop_columns(["close"]), tables.silver_stock_prices_schema(), {}, "f.parquet")
    bad = bars.set_column(bars.schema.get_field_index("close"), "close", pa.array(["n/a"]))
    with pytest.raises(SilverSchemaError, match=r"Column close of silver file f\.parquet"):
        normalize(bad, tables.silver_stock_prices_schema(), {}, "f.parquet")


def test_quarantine_summary_counts_each_rule_once_per_record(tmp_path: Path) -> None:
    ds = write_silver(tmp_path / "lake", days=2, bars_per_day=1)
    reader = _reader(tmp_path / "lake")
    parts = reader.partitions("quarantine", "ingest_date")
    assert [p.value for p in parts] == ds.trade_dates
    summary = pa.concat_tables(
        [reader.quarantine_summary(p, tables.quarantine_summary_schema()) for p in parts]
    )
    expected: dict[tuple[date, str], int] = {}
    for row in ds.quarantine.to_pylist():
        for rule in row["failed_rules"]:
            key = (row["ingest_date"], rule)
            expected[key] = expected.get(key, 0) + 1
    got = {(r["ingest_date"], r["rule"]): r["records"] for r in summary.to_pylist()}
    assert got == expected
    assert sum(got.values()) > ds.quarantine.num_rows  # one record failed two rules


def test_companies_are_one_unpartitioned_dataset(tmp_path: Path) -> None:
    write_silver(tmp_path / "lake", days=1, bars_per_day=1)
    whole = _reader(tmp_path / "lake").whole("companies")
    assert whole is not None
    assert whole.key == WHOLE_TABLE
    assert whole.value is None
    assert len(whole.files) == 1
