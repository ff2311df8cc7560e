from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from stockpipe.contract import BAR_FIELDS, Bar, arrow_schema, dbt_source_columns, json_schema
from stockpipe.contract.layout import BatchId, cluster_tag

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "bar.schema.json"
EST = timezone(timedelta(hours=-5))


def _bar(**kw: object) -> Bar:
    base: dict[str, object] = dict(
        symbol="AAPL",
        interval="1min",
        bar_ts=datetime(2024, 3, 4, 9, 30, tzinfo=EST),
        open=10.0,
        high=11.0,
        low=9.5,
        close=10.5,
        volume=100,
        source="test",
        produced_at=datetime(2024, 3, 4, 14, 31, tzinfo=UTC),
    )
    base.update(kw)
    return Bar(**base)  # type: ignore[arg-type]


def test_committed_json_schema_is_derived_from_the_contract() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()


def test_bar_message_validates_against_schema_and_keeps_offset() -> None:
    bar = _bar()
    doc = json.loads(bar.to_json_bytes())
    jsonschema.validate(doc, json_schema())
    assert doc["bar_ts"] == "2024-03-04T09:30:00-05:00"
    assert bar.key() == b"AAPL"


@pytest.mark.parametrize(
    "bad",
    [
        {"bar_ts": datetime(2024, 3, 4, 9, 30)},  # noqa: DTZ001 - naive on purpose
        {"low": 10.6},
        {"high": 10.1},
        {"open": 0.0},
        {"volume": -1},
        {"interval": "2min"},
        {"symbol": "aapl"},
    ],
)
def test_bar_rejects_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _bar(**bad)


def test_schema_rejects_naive_timestamp_and_extra_field() -> None:
    doc = json.loads(_bar().to_json_bytes())
    validator = jsonschema.Draft202012Validator(json_schema())
    assert validator.is_valid(doc)
    assert not validator.is_valid({**doc, "bar_ts": "2024-03-04T09:30:00"})
    assert not validator.is_valid({**doc, "extra": 1})
    assert not validator.is_valid({k: v for k, v in doc.items() if k != "close"})


def test_every_derivation_has_every_field_in_order() -> None:
    names = [f.name for f in BAR_FIELDS]
    assert list(Bar.model_fields) == names
    assert arrow_schema().names == names
    assert [c["name"] for c in dbt_source_columns()] == names
    assert list(json_schema()["properties"]) == names


def test_batch_file_names_round_trip_and_sort_by_offset() -> None:
    tag = cluster_tag("tansu_cluster")
    assert len(tag) == 12
    assert tag != cluster_tag("another-cluster")
    a = BatchId("stock-prices", tag, 2, 0, 99)
    b = BatchId("stock-prices", tag, 2, 100, 1_000_000)
    assert BatchId.parse(a.file_name) == a
    assert BatchId.parse("some/dir/" + b.file_name) == b
    assert sorted([b.file_name, a.file_name]) == [a.file_name, b.file_name]
    with pytest.raises(ValueError):
        BatchId.parse(f"stock-prices+{tag}+2+0+99.parquet")
