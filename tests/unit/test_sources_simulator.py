from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from statistics import mean

import exchange_calendars as xcals
import pandas as pd
import pytest

from stockpipe.contract import Bar
from stockpipe.errors import ConfigError
from stockpipe.sources import SourceOptions
from stockpipe.sources.calendar import EXCHANGE_TZ, is_regular_session
from stockpipe.sources.companies import load_companies
from stockpipe.sources.simulator import SimulatorSource
from tests.helpers_clock import FakeClock

SYMS = ("AAPL", "MSFT", "NVDA")
DAY = date(2024, 3, 4)  # a regular Monday session (EST)


def _bars(**kw: object) -> list[Bar]:
    opts: dict[str, object] = {"symbols": SYMS, "start": DAY}
    opts.update(kw)
    return list(SimulatorSource(SourceOptions(**opts)).bars())  # type: ignore[arg-type]


def _payload(bar: Bar) -> dict[str, object]:
    return bar.model_dump(exclude={"produced_at"})


def _xnys_minutes(day: date) -> int:
    """Session length straight from exchange_calendars (independent of stockpipe.sources)."""
    cal = xcals.get_calendar("XNYS")
    op, cl = cal.session_open_close(pd.Timestamp(day))
    return int((cl - op).total_seconds() // 60)


def test_same_seed_same_bars_different_seed_different() -> None:
    a, b = _bars(seed=7), _bars(seed=7)
    assert [_payload(x) for x in a] == [_payload(x) for x in b]
    c = _bars(seed=8)
    assert len(c) == len(a)
    assert [_payload(x) for x in c] != [_payload(x) for x in a]


def test_adding_a_symbol_does_not_change_the_others() -> None:
    base = _bars(symbols=("AAPL", "MSFT"))
    more = _bars(symbols=("AAPL", "TSLA", "MSFT"))
    assert [_payload(x) for x in base] == [_payload(x) for x in more if x.symbol != "TSLA"]


def test_exact_count_is_symbols_times_session_minutes() -> None:
    start, end = date(2024, 11, 26), date(2024, 12, 2)  # Thanksgiving week: holiday + early close
    src = SimulatorSource(SourceOptions(symbols=SYMS, start=start, end=end))
    bars = list(src.bars())
    cal = xcals.get_calendar("XNYS")
    days = [ts.date() for ts in cal.sessions_in_range(start.isoformat(), end.isoformat())]
    expected = len(SYMS) * sum(_xnys_minutes(d) for d in days)
    assert len(bars) == expected == src.estimated_count()
    assert {b.bar_ts.date() for b in bars} == set(days)
    assert date(2024, 11, 28) not in days  # Thanksgiving


def test_holiday_gives_no_bars() -> None:
    src = SimulatorSource(SourceOptions(symbols=SYMS, start=date(2024, 7, 4), end=date(2024, 7, 4)))
    assert src.estimated_count() == 0
    assert list(src.bars()) == []


def test_early_close_ends_at_13_00() -> None:
    bars = _bars(start=date(2024, 11, 29))
    local = [b.bar_ts.astimezone(EXCHANGE_TZ) for b in bars]
    assert min(local).time().isoformat() == "09:30:00"
    assert max(local).time().isoformat() == "12:59:00"  # last bar starts 12:59, ends 13:00
    assert len(bars) == len(SYMS) * 210


def test_bars_only_in_regular_hours_and_time_major_order() -> None:
    bars = _bars(end=date(2024, 3, 5))
    assert all(is_regular_session(b.bar_ts) for b in bars)
    assert bars[0].bar_ts.isoformat() == "2024-03-04T09:30:00-05:00"
    # all symbols' bar for minute t, then t+1
    assert [b.symbol for b in bars[:6]] == list(SYMS) * 2
    stamps = [b.bar_ts for b in bars]
    assert stamps == sorted(stamps)
    assert all(b.bar_ts.second == 0 and b.interval == "1min" and b.source == "simulator" for b in bars)


def test_ohlc_consistent_cents_and_continuous_for_every_bar() -> None:
    bars = _bars(end=date(2024, 3, 6))
    prev: dict[tuple[str, date], Bar] = {}
    for b in bars:
        assert 0 < b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        for price in (b.open, b.high, b.low, b.close):
            assert round(price, 2) == price
        assert isinstance(b.volume, int)
        assert b.volume >= 0
        key = (b.symbol, b.bar_ts.date())
        if key in prev:  # open = previous close within a session
            assert b.open == prev[key].close
        prev[key] = b


def test_every_bar_of_a_sample_day_passes_full_validation() -> None:
    bars = _bars(symbols=tuple(c.symbol for c in load_companies()[:10]))
    for b in bars:
        again = Bar.model_validate(b.model_dump())
        assert again == b
        assert b.produced_at.tzinfo is not None


def test_u_shaped_intraday_volume() -> None:
    bars = _bars(symbols=tuple(c.symbol for c in load_companies()[:20]), end=date(2024, 3, 8))
    by_part: dict[str, list[float]] = defaultdict(list)
    for b in bars:
        t = b.bar_ts.astimezone(EXCHANGE_TZ).time()
        minutes = t.hour * 60 + t.minute
        if minutes < 10 * 60 or minutes >= 15 * 60 + 30:  # 09:30-10:00 and 15:30-16:00
            by_part["edges"].append(b.volume)
        elif 12 * 60 <= minutes < 14 * 60:
            by_part["midday"].append(b.volume)
    ratio = mean(by_part["edges"]) / mean(by_part["midday"])
    assert ratio > 1.5, ratio


def test_daily_and_5min_bars_aggregate_the_minute_path() -> None:
    minute = _bars(symbols=("AAPL",), start=date(2024, 11, 29))
    daily = _bars(symbols=("AAPL",), start=date(2024, 11, 29), interval="1day")
    five = _bars(symbols=("AAPL",), start=date(2024, 11, 29), interval="5min")
    assert len(daily) == 1
    assert daily[0].interval == "1day"
    d = daily[0]
    assert d.bar_ts.isoformat() == "2024-11-29T09:30:00-05:00"
    assert (d.open, d.close) == (minute[0].open, minute[-1].close)
    assert d.high == max(b.high for b in minute)
    assert d.low == min(b.low for b in minute)
    assert d.volume == sum(b.volume for b in minute)
    assert len(five) == 210 // 5
    second = five[1]
    chunk = minute[5:10]
    assert second.bar_ts == chunk[0].bar_ts
    assert (second.open, second.close, second.volume) == (
        chunk[0].open,
        chunk[-1].close,
        sum(b.volume for b in chunk),
    )


def test_limit_and_defaults() -> None:
    src = SimulatorSource(SourceOptions(start=DAY, limit=45))
    bars = list(src.bars())
    assert len(bars) == 45 == src.estimated_count()
    assert {b.symbol for b in bars[:20]} == {c.symbol for c in load_companies()[:20]}


def test_backfill_without_start_uses_latest_complete_session() -> None:
    now = datetime(2024, 3, 11, 14, 0, tzinfo=UTC)  # Monday 10:00 New York, session running
    src = SimulatorSource(SourceOptions(symbols=("AAPL",), limit=1), now=lambda: now)
    (bar,) = list(src.bars())
    assert bar.bar_ts.isoformat() == "2024-03-08T09:30:00-05:00"


def test_invalid_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="cannot make"):
        SimulatorSource(SourceOptions(symbols=SYMS, start=DAY, interval="2min"))
    with pytest.raises(ConfigError, match="Invalid symbol"):
        SimulatorSource(SourceOptions(symbols=("aapl", "NOT A SYMBOL"), start=DAY))
    with pytest.raises(ConfigError, match="speed"):
        SimulatorSource(SourceOptions(symbols=SYMS, start=DAY, realtime=True, speed=0))


def test_realtime_pacing_on_an_injected_clock() -> None:
    clock = FakeClock(100.0)
    speed = 120.0  # one simulated minute per 0.5 wall seconds
    src = SimulatorSource(
        SourceOptions(symbols=("AAPL", "MSFT"), start=DAY, realtime=True, speed=speed, limit=8),
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    emitted: list[tuple[float, Bar]] = [(clock.now - 100.0, b) for b in src.bars()]
    # a bar is emitted when its minute has ended on the simulated clock
    for wall, bar in emitted:
        minute_end = bar.bar_ts + timedelta(minutes=1)
        sim_elapsed = (minute_end - datetime(2024, 3, 4, 9, 30, tzinfo=EXCHANGE_TZ)).total_seconds()
        assert wall == pytest.approx(sim_elapsed / speed)
    assert max(clock.sleeps) <= 0.05 + 1e-9  # small steps keep a stop responsive


def test_realtime_starting_mid_session_and_skipping_closed_market() -> None:
    clock = FakeClock(100.0)
    saturday = datetime(2024, 3, 9, 15, 0, tzinfo=UTC)
    src = SimulatorSource(
        SourceOptions(symbols=("AAPL",), realtime=True, speed=60.0, limit=2),
        now=lambda: saturday,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    bars = list(src.bars())
    assert [b.bar_ts.isoformat() for b in bars] == ["2024-03-11T09:30:00-04:00", "2024-03-11T09:31:00-04:00"]
    assert clock.now - 100.0 == pytest.approx(2.0)  # the weekend is skipped, not waited for

    clock = FakeClock(100.0)
    friday_10am = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)
    src = SimulatorSource(
        SourceOptions(symbols=("AAPL",), realtime=True, speed=60.0, limit=1),
        now=lambda: friday_10am,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    # bars that ended before the clock started are not replayed
    assert [b.bar_ts.isoformat() for b in src.bars()] == ["2024-03-08T10:00:00-05:00"]
    assert clock.now - 100.0 == pytest.approx(1.0)


def test_realtime_speed_roughly_honoured_on_the_wall_clock() -> None:
    speed = 1200.0  # a simulated minute every 0.05 s
    steps = 8
    src = SimulatorSource(
        SourceOptions(symbols=("AAPL", "MSFT"), start=DAY, realtime=True, speed=speed, limit=2 * steps)
    )
    started = time.monotonic()
    bars = list(src.bars())
    elapsed = time.monotonic() - started
    expected = steps * 60 / speed
    assert len(bars) == 2 * steps
    assert expected * 0.9 <= elapsed <= expected + 1.0, elapsed


def test_stop_event_ends_a_realtime_stream_promptly() -> None:
    stop = threading.Event()
    src = SimulatorSource(
        SourceOptions(symbols=("AAPL",), start=DAY, realtime=True, speed=1.0), stop_event=stop
    )
    assert src.estimated_count() is None  # endless
    received: list[Bar] = []

    def consume() -> None:
        received.extend(src.bars())

    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(0.2)
    stopped_at = time.monotonic()
    stop.set()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert time.monotonic() - stopped_at < 0.5
    assert received == []  # the first minute had not ended at speed 1


def test_generation_time_for_195k_bars(capsys: pytest.CaptureFixture[str]) -> None:
    symbols = tuple(f"S{i:03d}" for i in range(500))
    started = time.perf_counter()
    src = SimulatorSource(SourceOptions(symbols=symbols, start=DAY))
    count = sum(1 for _ in src.bars())
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nsimulator: {count} bars (500 symbols x 1 day) in {seconds:.2f} s")
    assert count == 500 * 390
    assert seconds < 30  # generous: the goal (well under 5 s) is reported, not asserted
