"""The ``Trade`` record: JSON round trip and validation of what travels on ``stock-trades``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stockpipe.sources.live.trades import Trade, TradeFormatError

TS = datetime(2024, 3, 4, 14, 30, 0, 123000, tzinfo=UTC)


def good() -> dict[str, object]:
    return {
        "symbol": "AAPL",
        "price": 189.3,
        "size": 100,
        "ts": "2024-03-04T09:30:00.123-05:00",
        "trade_id": "V:52983525029461",
        "conditions": ["@", "I"],
        "provider": "alpaca",
        "received_at": "2024-03-04T14:30:00.140000+00:00",
    }


def test_json_round_trip_and_utc_normalisation() -> None:
    t = Trade.from_dict(good())
    assert t.ts == TS
    assert t.ts.tzinfo is UTC
    assert t.conditions == ("@", "I")
    assert t.size == 100.0
    assert Trade.from_json_bytes(t.to_json_bytes()) == t
    assert t.key() == b"AAPL"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("symbol", "aapl", "symbol"),
        ("price", 0, "price"),
        ("price", "1.0", "price"),
        ("price", float("nan"), "price"),
        ("size", -1, "size"),
        ("ts", "2024-03-04T09:30:00", "no UTC offset"),
        ("ts", "yesterday", "ISO-8601"),
        ("trade_id", 5, "trade_id"),
        ("provider", "", "provider"),
    ],
)
def test_bad_fields_are_refused_with_the_field_named(field: str, value: object, message: str) -> None:
    data = good() | {field: value}
    with pytest.raises(TradeFormatError, match=message):
        Trade.from_dict(data)


def test_missing_field_and_bad_json() -> None:
    data = good()
    del data["price"]
    with pytest.raises(TradeFormatError, match="'price'"):
        Trade.from_dict(data)
    with pytest.raises(TradeFormatError, match="not valid JSON"):
        Trade.from_json_bytes(b"{nope")


def test_other_offsets_are_kept_as_the_same_instant() -> None:
    t = Trade.from_dict(good() | {"ts": (TS.astimezone(timezone(timedelta(hours=9)))).isoformat()})
    assert t.ts == TS
