from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from stockpipe.sources.timeparse import coerce_timestamp, parse_timestamp

# 2024-03-04 (EST, UTC-5) and 2024-07-01 (EDT, UTC-4)
CASES = [
    ("2024-03-04", datetime(2024, 3, 4, 14, 30, tzinfo=UTC), True),
    ("2024-07-01", datetime(2024, 7, 1, 13, 30, tzinfo=UTC), True),
    ("2024-03-04 09:31:00", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),
    ("2024-03-04 09:31", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),
    ("2024-03-04T09:31:00", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),
    ("2024-03-04 09:31:00-05:00", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),
    ("2024-07-01 09:31:00-04:00", datetime(2024, 7, 1, 13, 31, tzinfo=UTC), False),
    ("2024-03-04T14:31:00Z", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),
    ("2024-03-04T09:31:00.500-0500", datetime(2024, 3, 4, 14, 31, 0, 500000, tzinfo=UTC), False),
    ("03/04/2024", datetime(2024, 3, 4, 14, 30, tzinfo=UTC), True),
    ("3/4/2024 09:31", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),
    ("07/01/2024 15:59:00", datetime(2024, 7, 1, 19, 59, tzinfo=UTC), False),
    ("04-03-2024 09:31", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),  # the seed's DD-MM-YYYY HH:MM
    ("01-07-2024 09:31:30", datetime(2024, 7, 1, 13, 31, 30, tzinfo=UTC), False),
    ("1709562660", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),  # epoch seconds
    ("1709562660000", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),  # epoch milliseconds
    ("  2024-03-04 09:31:00  ", datetime(2024, 3, 4, 14, 31, tzinfo=UTC), False),
]


@pytest.mark.parametrize(("text", "utc", "date_only"), CASES)
def test_parse_timestamp_forms(text: str, utc: datetime, date_only: bool) -> None:
    parsed, is_date = parse_timestamp(text)
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() is not None
    assert parsed == utc  # aware comparison: the same instant
    assert is_date is date_only


@pytest.mark.parametrize(
    "text", ["2024-13-45", "13/45/2024", "31-02-2024 09:30", "2024-03-04 25:00", "yesterday", "", "12:30"]
)
def test_unparseable_dates_raise(text: str) -> None:
    with pytest.raises(ValueError, match="date"):
        parse_timestamp(text)


def test_coerce_accepts_native_values() -> None:
    naive = datetime(2024, 3, 4, 9, 31)  # noqa: DTZ001  # naive means New York
    assert coerce_timestamp(naive)[0] == datetime(2024, 3, 4, 14, 31, tzinfo=UTC)
    assert coerce_timestamp(datetime(2024, 3, 4, 14, 31, tzinfo=UTC)) == (
        datetime(2024, 3, 4, 14, 31, tzinfo=UTC),
        False,
    )
    assert coerce_timestamp(date(2024, 3, 4)) == (datetime(2024, 3, 4, 14, 30, tzinfo=UTC), True)
    assert coerce_timestamp(1709562660)[0] == datetime(2024, 3, 4, 14, 31, tzinfo=UTC)
    with pytest.raises(ValueError, match="missing date"):
        coerce_timestamp(None)
