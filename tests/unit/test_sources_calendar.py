from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from stockpipe.errors import ConfigError
from stockpipe.sources import calendar as cal


def test_trading_days_skip_weekends_and_holidays() -> None:
    days = cal.trading_days(date(2024, 7, 1), date(2024, 7, 8))
    # 2024-07-04 is Independence Day, 07-06/07 a weekend.
    assert days == [date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3), date(2024, 7, 5), date(2024, 7, 8)]
    assert cal.trading_days(date(2024, 7, 4), date(2024, 7, 4)) == []
    assert cal.trading_days(date(2024, 7, 5), date(2024, 7, 1)) == []


def test_session_minutes_regular_dst_and_early_close() -> None:
    # Winter (EST, UTC-5) and summer (EDT, UTC-4) regular sessions.
    assert cal.session_minutes(date(2024, 3, 8)) == (
        datetime(2024, 3, 8, 14, 30, tzinfo=UTC),
        datetime(2024, 3, 8, 21, 0, tzinfo=UTC),
    )
    assert cal.session_minutes(date(2024, 3, 11)) == (
        datetime(2024, 3, 11, 13, 30, tzinfo=UTC),
        datetime(2024, 3, 11, 20, 0, tzinfo=UTC),
    )
    # Day after Thanksgiving: early close at 13:00 New York = 18:00 UTC.
    open_utc, close_utc = cal.session_minutes(date(2024, 11, 29))
    assert close_utc - open_utc == timedelta(hours=3, minutes=30)
    assert close_utc.astimezone(cal.EXCHANGE_TZ).hour == 13
    with pytest.raises(ConfigError, match="not an NYSE trading day"):
        cal.session_minutes(date(2024, 12, 25))


def test_is_regular_session_boundaries() -> None:
    est = timezone(timedelta(hours=-5))
    assert cal.is_regular_session(datetime(2024, 3, 4, 9, 30, tzinfo=est))
    assert cal.is_regular_session(datetime(2024, 3, 4, 15, 59, tzinfo=est))
    assert not cal.is_regular_session(datetime(2024, 3, 4, 9, 29, tzinfo=est))
    assert not cal.is_regular_session(datetime(2024, 3, 4, 16, 0, tzinfo=est))
    assert not cal.is_regular_session(datetime(2024, 3, 9, 12, 0, tzinfo=est))  # Saturday
    assert not cal.is_regular_session(datetime(2024, 11, 29, 18, 0, tzinfo=UTC))  # after early close
    assert cal.is_regular_session(datetime(2024, 11, 29, 17, 59, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_regular_session(datetime(2024, 3, 4, 10, 0))  # noqa: DTZ001


def test_latest_complete_session_and_next_session() -> None:
    # Monday 2024-03-11 10:00 New York: Friday's session is the last complete one.
    assert cal.latest_complete_session(datetime(2024, 3, 11, 14, 0, tzinfo=UTC)) == date(2024, 3, 8)
    # Monday after the close: Monday itself.
    assert cal.latest_complete_session(datetime(2024, 3, 11, 20, 0, tzinfo=UTC)) == date(2024, 3, 11)
    assert cal.next_session_on_or_after(date(2024, 7, 4)) == date(2024, 7, 5)


def test_dates_outside_the_calendar_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="outside the NYSE calendar"):
        cal.trading_days(date(1980, 1, 1), date(1980, 1, 31))
