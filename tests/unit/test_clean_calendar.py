"""The Spark job's trade_date and is_regular_session come from exchange_calendars (one calendar)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from stockpipe.clean import transforms
from stockpipe.clean.sessions import session_calendar
from stockpipe.sources import calendar as cal
from tests.helpers_bronze import bar_json
from tests.unit.test_clean_cleaning import raw_df

NOW = datetime(2024, 12, 31, tzinfo=UTC)

# (symbol, interval, bar_ts, expected trade_date, expected is_regular_session)
CASES = [
    # NYSE holiday: Independence Day, market closed all day
    ("AAPL", "1min", "2024-07-04T10:00:00-04:00", date(2024, 7, 4), False),
    ("AAPL", "1day", "2024-07-04T09:30:00-04:00", date(2024, 7, 4), False),
    # day after Thanksgiving: early close at 13:00 New York
    ("AAPL", "1min", "2024-11-29T14:00:00-05:00", date(2024, 11, 29), False),
    ("AAPL", "1min", "2024-11-29T12:59:00-05:00", date(2024, 11, 29), True),
    ("AAPL", "1min", "2024-07-05T10:00:00-04:00", date(2024, 7, 5), True),
    ("AAPL", "1day", "2024-07-05T09:30:00-04:00", date(2024, 7, 5), True),
    # a symbol missing from the reference trades on XNYS
    ("ZZZZ", "1min", "2024-07-05T10:00:00-04:00", date(2024, 7, 5), True),
    # London: Easter Monday is an LSE holiday (NYSE open); 08:00-16:30 local
    ("SHEL.L", "1day", "2024-04-01T08:00:00+01:00", date(2024, 4, 1), False),
    ("SHEL.L", "1day", "2024-04-02T08:00:00+01:00", date(2024, 4, 2), True),
    ("SHEL.L", "1min", "2024-04-02T08:00:00+01:00", date(2024, 4, 2), True),
    ("SHEL.L", "1min", "2024-04-02T16:30:00+01:00", date(2024, 4, 2), False),
    ("SHEL.L", "1min", "2024-04-02T07:59:00+01:00", date(2024, 4, 2), False),
    # 23:30 UTC is already the next day in London (BST) but the same day in New York
    ("SHEL.L", "1min", "2024-04-02T23:30:00Z", date(2024, 4, 3), False),
    ("AAPL", "1min", "2024-04-02T23:30:00Z", date(2024, 4, 2), False),
    # Christmas Eve: London closes early at 12:30
    ("SHEL.L", "1min", "2024-12-24T12:00:00Z", date(2024, 12, 24), True),
    ("SHEL.L", "1min", "2024-12-24T13:00:00Z", date(2024, 12, 24), False),
]


@pytest.fixture(scope="module")
def rows(spark: Any) -> list[Any]:
    values = [bar_json(symbol=s, interval=i, bar_ts=ts) for s, i, ts, _, _ in CASES]
    calendar = session_calendar(spark, {"AAPL": "NASDAQ", "SHEL.L": "XLON"})
    df = transforms.clean(raw_df(spark, values), now=NOW, calendar=calendar)
    return df.orderBy("kafka_offset").collect()


@pytest.mark.parametrize(("index", "case"), list(enumerate(CASES)), ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_sessions_holidays_and_early_closes(rows: list[Any], index: int, case: tuple[Any, ...]) -> None:
    symbol, interval, _ts, trade_date, regular = case
    row = rows[index]
    assert row["failed_rules"] == []
    assert (row["symbol"], row["interval"]) == (symbol, interval)
    assert row["trade_date"] == trade_date
    assert row["is_regular_session"] is regular


def test_spark_agrees_with_the_python_calendar(rows: list[Any]) -> None:
    for (symbol, interval, ts, _, regular), row in zip(CASES, rows, strict=True):
        if interval != "1min" or symbol == "SHEL.L":
            continue
        instant = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        assert cal.is_regular_session(instant) is regular is row["is_regular_session"]


def test_the_session_join_is_broadcast_without_python_udfs(spark: Any) -> None:
    calendar = session_calendar(spark, {"AAPL": "XNYS"})
    df = transforms.clean(raw_df(spark, [bar_json()]), now=NOW, calendar=calendar)
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert "BroadcastHashJoin" in plan or "BroadcastNestedLoopJoin" in plan
    assert "EvalPython" not in plan  # neither BatchEvalPython nor ArrowEvalPython
