"""Incremental Alpha Vantage polling against a loopback market serving the documented JSON layout."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from stockpipe.settings import Settings
from stockpipe.sources.base import SourceOptions
from stockpipe.sources.live.alphavantage_poll import AlphaVantagePoller, plan_refresh
from stockpipe.sources.live.runtime import run_live
from tests.helpers_live import NY, Market, WallClock, as_utc, market_server, read_topic

pytestmark = pytest.mark.integration


def _settings(base: Settings, url: str, **av: object) -> Settings:
    fields = {"api_key": SecretStr("LOOPBACK-KEY"), "base_url": url, **av}
    return base.model_copy(update={"alphavantage": base.alphavantage.model_copy(update=fields)})


def _poller(settings: Settings, clock: WallClock, symbols: tuple[str, ...]) -> AlphaVantagePoller:
    return AlphaVantagePoller(settings, SourceOptions(symbols=symbols), now=clock, sleep=clock.sleep)


def test_three_runs_send_only_new_or_changed_bars(kafka_settings: Settings) -> None:
    clock = WallClock(as_utc("2024-03-11 10:00:20"))
    market = Market(clock)
    with market_server(market) as url:
        settings = _settings(
            kafka_settings, url, requests_per_day=500, extended_hours=False, entitlement="delayed"
        )
        sent: list[list[tuple[str, float, int]]] = []
        for step in (0, 180, 75):  # three scheduled runs, each a fresh poller (a new process)
            clock.now += timedelta(seconds=step)
            poller = _poller(settings, clock, ("IBM",))
            result = run_live(settings, poller, once=True)
            assert result.batches == 1
            rows = [
                json.loads(v or b"")
                for _, v in read_topic(settings.kafka.bootstrap_servers or "", settings.kafka.topic)
            ]
            sent.append([(r["bar_ts"], r["close"], r["volume"]) for r in rows])
    first, second, third = sent[0], sent[1][len(sent[0]) :], sent[2][len(sent[1]) :]
    queries = [q for _, q in market.requests]
    assert [q["outputsize"] for q in queries] == ["full", "compact", "compact"]
    assert all(q["entitlement"] == "delayed" and q["extended_hours"] == "false" for q in queries)
    # run 1: the whole history of three weekdays (regular hours) up to the forming 10:00 bar
    assert len(first) == 2 * 390 + 31
    assert len({ts for ts, _, _ in first}) == len(first)
    # run 2 at 10:03:20: the 10:00 bar again (it changed: now final), 10:01, 10:02 and forming 10:03
    assert [datetime.fromisoformat(ts).astimezone(NY).strftime("%H:%M") for ts, _, _ in second] == [
        "10:00", "10:01", "10:02", "10:03",
    ]  # fmt: skip
    final_1000 = market.final_bar("IBM", as_utc("2024-03-11 10:00"))
    assert second[0][1:] == (final_1000[3], final_1000[4])
    # run 3 at 10:04:35: forming 10:03 is final now (changed) and 10:04 is new; nothing older again
    assert [datetime.fromisoformat(ts).astimezone(NY).strftime("%H:%M") for ts, _, _ in third] == [
        "10:03", "10:04",
    ]  # fmt: skip
    checkpoint = json.loads((settings.state_dir / "live" / "alphavantage.checkpoint.json").read_text())
    assert set(checkpoint["marks"]) == {"IBM|1min"}
    assert len(checkpoint["extra"]["requests"]) == 3


def test_quota_is_never_exceeded_over_three_compressed_days(settings: Settings) -> None:
    start, end = as_utc("2024-03-11 09:30"), as_utc("2024-03-14 08:00")
    clock = WallClock(start, stop_at=end)
    market = Market(clock)
    symbols = ("IBM", "AAPL", "MSFT", "NVDA", "JPM")
    with market_server(market) as url:
        s = _settings(settings, url, requests_per_day=25, requests_per_minute=5, extended_hours=False)
        poller = _poller(s, clock, symbols)
        assert (
            "every 1 h 38 min from 09:30-16:00 New York (up to 4 polls) and once after the close"
            in (poller.describe()[0])
        )
        sent = 0
        for batch in poller.batches(clock.stop):
            batch.ack()  # what the runtime does after a successful flush
            sent += len(batch.bars)
    times = [t for t, _ in market.requests]
    assert len(times) >= 50, "the poller kept polling over the three days"
    for i, t in enumerate(times):  # the rolling 24-hour budget and the per-minute spacing
        assert sum(1 for u in times[: i + 1] if t - u < timedelta(days=1)) <= 25
        if i:
            assert (t - times[i - 1]).total_seconds() >= 12.0 - 1e-6
    for t in times:  # only in the session, or right after the close
        local = t.astimezone(NY).time()
        assert "09:30" <= local.strftime("%H:%M") <= "16:05", t
    per_symbol = Counter(q["symbol"] for _, q in market.requests)
    assert max(per_symbol.values()) - min(per_symbol.values()) <= 1  # spread over the symbols
    assert Counter(q["outputsize"] for _, q in market.requests)["full"] == 5  # first fill only
    assert sent > 0


def test_sleeps_until_the_next_open_by_the_exchange_calendar(settings: Settings, tmp_path: Path) -> None:
    # Thursday before Good Friday 2024, after the closing poll: the next open is Monday 09:30
    clock = WallClock(as_utc("2024-03-28 16:00:30"))
    market = Market(clock)
    with market_server(market) as url:
        s = _settings(settings, url, requests_per_day=25, extended_hours=False)
        poller = _poller(s, clock, ("IBM",))
        poller.polled["IBM"] = clock.now  # the closing poll just happened
        assert poller.next_wake(clock.now) == as_utc("2024-04-01 09:30")
        clock.stop_at = as_utc("2024-04-01 09:31")
        batches = []
        for batch in poller.batches(clock.stop):
            batch.ack()
            batches.append(batch)
    slept_at, seconds = clock.sleeps[0]
    assert slept_at + timedelta(seconds=seconds) == as_utc("2024-04-01 09:30")  # one sleep, to the open
    assert [t for t, _ in market.requests] == [as_utc("2024-04-01 09:30")]
    assert len(batches) == 1


def test_plan_refuses_more_symbols_than_the_budget_and_spaces_by_the_minute_limit() -> None:
    from stockpipe.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot refresh 30 symbols even once"):
        plan_refresh(30, 5, 25, extended=False)
    premium = plan_refresh(50, 75, 100_000, extended=False)
    assert premium.interval_seconds == pytest.approx(40.0)  # one round of 50 symbols at 75/min
    assert plan_refresh(5, 5, 25, extended=True).interval_seconds == 4 * 3600


def test_now_is_utc() -> None:
    assert as_utc("2024-03-11 09:30") == datetime(2024, 3, 11, 13, 30, tzinfo=UTC)


def test_scheduled_run_step_polls_once_then_waits_for_the_schedule(kafka_settings: Settings) -> None:
    from stockpipe.orchestration.pipeline import RunOptions, run_step

    clock = WallClock(datetime.now(UTC))  # the step uses the real clock; the market follows it
    market = Market(clock)
    with market_server(market) as url:
        settings = _settings(kafka_settings, url, requests_per_day=25)
        options = RunOptions(source="alphavantage", symbols=("IBM",))
        first = run_step("Kafka_Producer", settings, options)
        second = run_step("Kafka_Producer", settings, options)  # ten minutes later in the DAG
    assert first.counts["polls"] == 1
    assert first.counts["bars_sent"] > 0
    assert second.counts == {"bars_sent": 0, "polls": 0}  # not due yet: no request, nothing sent
    assert len(market.requests) == 1
    assert "each symbol refreshed every" in first.details["plan"][0]
