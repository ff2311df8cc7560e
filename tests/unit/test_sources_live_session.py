"""Session windows and the compact/full decision of the Alpha Vantage poller (pure, calendar-based)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from stockpipe.contract import Bar
from stockpipe.settings import Settings
from stockpipe.sources.base import SourceOptions
from stockpipe.sources.live.alphavantage_poll import AlphaVantagePoller
from stockpipe.sources.live.session import bars_between, current_or_next_window, previous_close

NY = ZoneInfo("America/New_York")


def ny(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NY).astimezone(UTC)


def test_windows_follow_the_exchange_calendar() -> None:
    # Friday after the close -> Monday's open; Good Friday 2024 is a holiday; DST began 2024-03-10
    assert current_or_next_window(ny("2024-03-08 17:00"), extended=False)[0] == ny("2024-03-11 09:30")
    assert current_or_next_window(ny("2024-03-28 16:30"), extended=False)[0] == ny("2024-04-01 09:30")
    assert current_or_next_window(ny("2024-03-11 10:00"), extended=True) == (
        ny("2024-03-11 04:00"),
        ny("2024-03-11 20:00"),
    )
    assert previous_close(ny("2024-03-11 08:00"), extended=False) == ny("2024-03-08 16:00")
    # the day after Thanksgiving closes at 13:00
    assert current_or_next_window(ny("2024-11-29 12:00"), extended=False)[1] == ny("2024-11-29 13:00")


def test_bars_between_counts_session_minutes_only() -> None:
    # an upper bound by design (session seconds / interval, plus one): compact must reach the mark
    assert bars_between(ny("2024-03-08 15:59"), ny("2024-03-11 09:45"), "1min", extended=False) == 17
    assert bars_between(ny("2024-03-11 09:30"), ny("2024-03-11 16:00"), "5min", extended=False) == 79
    assert bars_between(ny("2024-03-08 09:30"), ny("2024-03-12 10:00"), "1day", extended=False) == 2


def _poller(settings: Settings) -> AlphaVantagePoller:
    s = settings.model_copy(
        update={
            "alphavantage": settings.alphavantage.model_copy(
                update={"api_key": SecretStr("k"), "extended_hours": False}
            )
        }
    )
    return AlphaVantagePoller(s, SourceOptions(symbols=("IBM",)), now=lambda: ny("2024-03-11 12:00"))


def _mark(poller: AlphaVantagePoller, at: datetime) -> None:
    poller.checkpoint.advance(
        [Bar(symbol="IBM", interval="1min", bar_ts=at, open=1, high=1, low=1, close=1, volume=1,
             source="alphavantage", produced_at=at)]
    )  # fmt: skip


def test_compact_after_the_first_fill_full_only_after_a_long_gap(settings: Settings) -> None:
    poller = _poller(settings)
    now = ny("2024-03-11 12:00")
    assert poller.outputsize("IBM", now) == "full"  # no mark yet
    _mark(poller, now - timedelta(minutes=30))
    assert poller.outputsize("IBM", now) == "compact"
    poller.checkpoint.marks.clear()
    _mark(poller, ny("2024-03-08 15:59"))  # over the weekend: 1 + 150 session minutes
    assert poller.outputsize("IBM", now) == "full"
    poller.checkpoint.marks.clear()
    _mark(poller, ny("2024-03-08 15:59"))
    assert poller.outputsize("IBM", ny("2024-03-11 10:30")) == "compact"  # 61 bars: compact reaches
