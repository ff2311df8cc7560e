"""Quarantine listing and the replay's file rewrite, on Arrow tables (no Spark)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from stockpipe.clean.quarantine import _rewrite, conform, origin_of, summarise


def spark_rows() -> pa.Table:
    """Rows as the cleaning job writes them (no file/line origin columns)."""
    return pa.table(
        {
            "kafka_topic": ["stock-prices"] * 3,
            "kafka_partition": pa.array([0, 0, 1], pa.int32()),
            "kafka_offset": pa.array([5, 6, 7], pa.int64()),
            "key": ["ZZZZ", "ZZZZ", None],
            "raw_payload": ['{"symbol": "ZZZZ"}', '{"symbol": "ZZZZ", "high": 1}', "not json"],
            "failed_rules": [["unknown_symbol"], ["unknown_symbol", "high_below_low"], ["not_json"]],
            "bronze_file": ["b1", "b1", "b2"],
        }
    )


def unparsable_rows() -> pa.Table:
    """Rows a lenient file replay wrote: file/line origin, no Kafka lineage."""
    return pa.table(
        {
            "raw_payload": ["2024-01-02,null,null"],
            "failed_rules": [["unparsable_row"]],
            "source_file": ["AAPL.csv"],
            "source_line": pa.array([14], pa.int64()),
            "detail": ["open: not a number"],
        }
    )


def with_date(table: pa.Table) -> pa.Table:
    return table.append_column("ingest_date", pa.array([date(2024, 3, 6)] * table.num_rows, pa.date32()))


def test_counts_by_rule_and_samples_with_their_origin() -> None:
    table = pa.concat_tables([with_date(conform(spark_rows())), with_date(conform(unparsable_rows()))])
    listing = summarise(table, limit=1)
    assert listing.records == 4
    assert listing.by_rule == {"unknown_symbol": 2, "high_below_low": 1, "not_json": 1, "unparsable_row": 1}
    origins = {s.rule: s.origin for s in listing.samples}
    assert origins["unknown_symbol"] == "stock-prices/0/5"
    assert origins["unparsable_row"] == "AAPL.csv:14"
    (unparsable,) = [s for s in listing.samples if s.rule == "unparsable_row"]
    assert (unparsable.raw_payload, unparsable.detail) == ("2024-01-02,null,null", "open: not a number")
    only = summarise(table, rule="unknown_symbol", limit=5)
    assert (only.records, only.by_rule, len(only.samples)) == (2, {"unknown_symbol": 2}, 2)
    assert origin_of({}) == "unknown"


def test_rewrite_drops_admitted_records_and_updates_reasons() -> None:
    table = conform(spark_rows())
    mask = pa.array([True, True, False])
    verdicts = {("b1", 0, 5): (), ("b1", 0, 6): ("high_below_low",)}
    keep, changed = _rewrite(table, mask, verdicts)
    assert changed
    assert keep.column("kafka_offset").to_pylist() == [6, 7]
    assert keep.column("failed_rules").to_pylist() == [["high_below_low"], ["not_json"]]
    same, unchanged = _rewrite(
        table, mask, {("b1", 0, 5): ("unknown_symbol",), ("b1", 0, 6): ("unknown_symbol", "high_below_low")}
    )
    assert not unchanged
    assert same.num_rows == 3
