"""The pure trades -> bars aggregator: windows, watermark, grace, quiet timeout, conditions, restore."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stockpipe.contract import Bar
from stockpipe.sources.live.aggregate import Aggregator, AggregatorConfig, bars_and_dead
from tests.helpers_clock import FakeClock
from tests.live_helpers import bars_frame, mismatches, pandas_bars, random_trades, trade

NY = ZoneInfo("America/New_York")
T0 = datetime(2024, 3, 4, 9, 30, tzinfo=NY)  # a Monday session open


class WallClock:
    """A UTC wall clock that only moves when told to (produced_at)."""

    def __init__(self) -> None:
        self.now = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def make(clock: FakeClock | None = None, wall: WallClock | None = None, **cfg: object) -> Aggregator:
    clock = clock or FakeClock()
    return Aggregator(AggregatorConfig(**cfg), monotonic=clock.monotonic, wall=wall or WallClock())  # type: ignore[arg-type]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_one_bar_open_close_by_trade_time_not_arrival() -> None:
    agg = make()
    arrivals = [(1, 10.0), (30, 12.0), (0.5, 11.0), (59.9, 9.5), (40, 10.5)]
    outs = [agg.add(trade("AAPL", at(s), p, 100)) for s, p in arrivals]
    assert all(not o.bars for o in outs)
    out = agg.add(trade("AAPL", at(65.1), 13.0))  # watermark 60.1 > end 60
    (bar,) = out.bars
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (11.0, 12.0, 9.5, 9.5, 500)
    assert bar.bar_ts == T0
    assert bar.bar_ts.utcoffset() == timedelta(hours=-5)
    assert bar.source == "finnhub"
    assert bar.interval == "1min"
    assert Bar.model_validate(bar.model_dump()) == bar  # a valid contract bar


def test_ties_on_trade_time_keep_arrival_order() -> None:
    agg = make()
    agg.add(trade("AAPL", at(1), 10.0))
    agg.add(trade("AAPL", at(1), 11.0))
    agg.add(trade("AAPL", at(2), 12.0))
    agg.add(trade("AAPL", at(2), 13.0))
    (bar,) = agg.flush().bars
    assert (bar.open, bar.close) == (10.0, 13.0)


def test_out_of_order_within_delay_gives_one_bar_equal_to_in_order() -> None:
    trades = random_trades(["AAPL", "MSFT", "IBM"], T0, 600, 50, jitter=4.0)
    agg = make()
    out = bars_and_dead([agg.add(t) for t in trades] + [agg.flush()])
    assert not out.dead_letters
    assert agg.counters.corrections == 0  # the delay absorbed every out-of-order trade
    keys = [(b.symbol, b.bar_ts) for b in out.bars]
    assert len(keys) == len(set(keys)) == 30
    assert mismatches(bars_frame(out.bars), pandas_bars(trades)) == 0


@pytest.mark.parametrize("interval", ["1min", "5min", "15min", "30min", "60min"])
def test_equal_to_pandas_resample_for_every_intraday_interval(interval: str) -> None:
    trades = random_trades(["AAPL", "MSFT"], T0, 3 * 3600, 2, seed=11, jitter=2.0)
    agg = make(interval=interval)
    out = bars_and_dead([agg.add(t) for t in trades] + [agg.flush()])
    ref = pandas_bars(trades, interval=interval)
    assert len(ref) > 0
    assert mismatches(bars_frame(out.bars), ref) == 0


def test_late_trade_within_grace_reemits_corrected_bar_with_newer_produced_at() -> None:
    wall = WallClock()
    agg = make(wall=wall)
    agg.add(trade("AAPL", at(10), 10.0))
    (first,) = agg.add(trade("AAPL", at(70), 10.0)).bars  # watermark 65: bar 09:30 out
    late = agg.add(trade("AAPL", at(50), 15.0, 7))  # 20 s behind the watermark, grace 120 s
    (corrected,) = late.bars
    assert (corrected.symbol, corrected.bar_ts) == (first.symbol, first.bar_ts)
    assert corrected.produced_at > first.produced_at  # strictly newer even with a frozen wall clock
    assert (corrected.high, corrected.close, corrected.volume) == (15.0, 15.0, 107)
    assert agg.counters.corrections == 1


def test_trade_after_grace_is_a_late_trade_dead_letter() -> None:
    agg = make(grace_seconds=120)
    agg.add(trade("AAPL", at(10), 10.0))
    agg.add(trade("AAPL", at(60 + 5 + 120), 11.0))  # watermark = end + grace: window final
    out = agg.add(trade("AAPL", at(30), 99.0))
    assert not out.bars
    (dead,) = out.dead_letters
    assert dead.reason == "late_trade"
    assert dead.trade is not None
    assert dead.trade.price == 99.0
    assert "AAPL" in dead.detail
    assert "grace 120 s" in dead.detail
    assert json.loads(json.dumps(dead.to_dict()))["reason"] == "late_trade"
    assert agg.counters.late_trades == 1


def test_late_trade_for_a_window_that_had_no_trades_within_grace_gives_a_bar() -> None:
    agg = make()
    agg.add(trade("AAPL", at(10), 10.0))
    agg.add(trade("AAPL", at(130), 10.0))  # watermark 125: windows 09:30 done, 09:31 never seen
    out = agg.add(trade("AAPL", at(90), 12.0))  # 09:31 window, 35 s behind, within grace
    (bar,) = out.bars
    assert bar.bar_ts == at(60)
    assert bar.open == 12.0


def test_quiet_timeout_emits_an_illiquid_symbols_bar_and_a_later_trade_corrects_it() -> None:
    clock = FakeClock(1000.0)
    agg = make(clock, quiet_timeout_seconds=10)
    agg.add(trade("ILLQ", at(5), 20.0))
    clock.sleep(9.9)
    assert agg.tick().bars == ()
    clock.sleep(0.2)
    (bar,) = agg.tick().bars
    assert (bar.symbol, bar.open, bar.volume) == ("ILLQ", 20.0, 100)
    assert agg.tick().bars == ()  # emitted once
    agg.add(trade("ILLQ", at(30), 21.0))  # same minute, still open
    (corrected,) = agg.add(trade("ILLQ", at(66), 22.0)).bars  # watermark passes 09:31
    assert corrected.bar_ts == bar.bar_ts
    assert corrected.close == 21.0
    assert corrected.volume == 200
    assert corrected.produced_at > bar.produced_at


def test_watermark_is_per_partition() -> None:
    agg = make()
    agg.add(trade("AAPL", at(10), 10.0), partition=0)
    agg.add(trade("MSFT", at(3600), 50.0), partition=1)  # partition 1 an hour ahead
    out = agg.add(trade("AAPL", at(20), 11.0), partition=0)
    assert not out.dead_letters
    assert not out.bars
    assert agg.watermark(0) == pytest.approx(at(15).timestamp())


def test_dedupe_by_provider_trade_id_but_never_without_id() -> None:
    agg = make()
    for _ in range(2):
        agg.add(trade("AAPL", at(1), 10.0, 100, trade_id="V:1", provider="alpaca"))
    agg.add(trade("AAPL", at(2), 10.0, 50, trade_id="V:2", provider="alpaca"))
    agg.add(trade("MSFT", at(1), 20.0, 100))  # no ids: identical prints are both real
    agg.add(trade("MSFT", at(1), 20.0, 100))
    bars = {b.symbol: b for b in agg.flush().bars}
    assert bars["AAPL"].volume == 150
    assert bars["MSFT"].volume == 200
    assert agg.counters.duplicates == 1


def test_alpaca_conditions_odd_lots_only_add_volume_official_reports_are_ignored() -> None:
    agg = make()
    a = "alpaca"
    agg.add(trade("AAPL", at(1), 10.0, 100, trade_id="1", conditions=("@",), provider=a))
    agg.add(trade("AAPL", at(2), 50.0, 7, trade_id="2", conditions=("@", "I"), provider=a))  # odd lot
    agg.add(trade("AAPL", at(3), 9.0, 100, trade_id="3", conditions=("@", "Z"), provider=a))  # high/low only
    agg.add(trade("AAPL", at(4), 1.0, 5000, trade_id="4", conditions=("M",), provider=a))  # official close
    (bar,) = agg.flush().bars
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (10.0, 10.0, 9.0, 10.0, 207)
    assert agg.counters.volume_only == 1
    assert agg.counters.ignored == 1


def test_window_without_price_setting_trade_is_a_dead_letter_not_a_silent_drop() -> None:
    agg = make()
    agg.add(trade("AAPL", at(-3600), 10.0, 300, trade_id="1", conditions=("T",), provider="alpaca"))
    out = agg.flush()
    assert out.bars == ()
    (dead,) = out.dead_letters
    assert dead.reason == "no_priced_trade"
    assert "300 shares" in dead.detail
    assert agg.counters.no_priced_windows == 1


def test_finnhub_volume_only_codes_from_the_config() -> None:
    agg = make(finnhub_volume_only_conditions=("24",))
    agg.add(trade("AAPL", at(1), 10.0, 100, conditions=("1",)))
    agg.add(trade("AAPL", at(2), 99.0, 3, conditions=("1", "24")))
    (bar,) = agg.flush().bars
    assert (bar.high, bar.close, bar.volume) == (10.0, 10.0, 103)


def test_finnhub_volume_only_codes_reach_the_service_config_from_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stockpipe.settings import Settings
    from stockpipe.sources.live.aggregator_service import aggregator_config

    monkeypatch.setenv("STOCKPIPE_FINNHUB_VOLUME_ONLY_CONDITIONS", '["24", "12"]')
    assert aggregator_config(Settings()).finnhub_volume_only_conditions == ("24", "12")


def test_explicit_rules_per_provider() -> None:
    from stockpipe.sources.live.conditions import finnhub_rules

    agg = Aggregator(AggregatorConfig(), rules={"finnhub": finnhub_rules(["24"])}, wall=WallClock())
    agg.add(trade("AAPL", at(1), 10.0, 100, conditions=("1",)))
    agg.add(trade("AAPL", at(2), 99.0, 3, conditions=("1", "24")))
    (bar,) = agg.flush().bars
    assert (bar.high, bar.close, bar.volume) == (10.0, 10.0, 103)


@pytest.mark.parametrize(
    ("day", "before", "after"),
    [
        ("2024-03-10", timedelta(hours=-5), timedelta(hours=-4)),
        ("2024-11-03", timedelta(hours=-4), timedelta(hours=-5)),
    ],
)
def test_dst_change_day_1min_bars_equal_pandas(day: str, before: timedelta, after: timedelta) -> None:
    # 00:00-06:00 UTC-ish around the 02:00 local switch, trades every few seconds
    start = datetime.fromisoformat(f"{day}T05:00:00+00:00")
    trades = random_trades(["AAPL", "SPY"], start, 3 * 3600, 1, seed=3, jitter=2.0)
    agg = make()
    out = bars_and_dead([agg.add(t) for t in trades] + [agg.flush()])
    assert mismatches(bars_frame(out.bars), pandas_bars(trades)) == 0
    offsets = {b.bar_ts.utcoffset() for b in out.bars}
    assert offsets == {before, after}


def test_dst_fall_back_hour_twice_gives_two_60min_bars() -> None:
    agg = make(interval="60min")
    first = datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = datetime(2024, 11, 3, 6, 30, tzinfo=UTC)  # 01:30 EST
    out = bars_and_dead(
        [agg.add(trade("AAPL", first, 10.0)), agg.add(trade("AAPL", second, 11.0)), agg.flush()]
    )
    bars = sorted(out.bars, key=lambda b: b.bar_ts)
    assert [b.bar_ts.isoformat() for b in bars] == ["2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00"]


def test_1day_window_is_the_exchange_date_stamped_at_the_session_open() -> None:
    agg = make(interval="1day")
    # 2024-03-11 (Monday after the spring change): 04:00 local pre-market .. 19:59 post-market
    outs = [
        agg.add(trade("AAPL", datetime(2024, 3, 11, 4, 0, tzinfo=NY), 10.0)),
        agg.add(trade("AAPL", datetime(2024, 3, 11, 19, 59, tzinfo=NY), 12.0)),
        agg.add(trade("AAPL", datetime(2024, 3, 12, 0, 0, 1, tzinfo=NY), 13.0)),  # next day
        agg.flush(),
    ]
    bars = sorted(bars_and_dead(outs).bars, key=lambda b: b.bar_ts)
    assert [b.bar_ts.isoformat() for b in bars] == ["2024-03-11T09:30:00-04:00", "2024-03-12T09:30:00-04:00"]
    assert (bars[0].open, bars[0].close, bars[0].volume) == (10.0, 12.0, 200)


def test_full_trading_day_compressed_with_fake_clock_equals_pandas() -> None:
    """390 minutes x 4 symbols; processing clock advances 1 s per event second; tick every second."""
    clock = FakeClock(0.0)
    symbols = ["AAPL", "MSFT", "IBM", "ILLQ"]
    trades = random_trades(symbols[:3], T0, 390 * 60, 3, seed=5, jitter=3.0)
    trades += [trade("ILLQ", T0 + timedelta(minutes=m, seconds=17), 5.0 + m / 100) for m in range(0, 390, 37)]
    trades.sort(key=lambda t: t.ts)  # ILLQ interleaved by time (arrival jitter kept for the others)
    agg = make(clock, quiet_timeout_seconds=10)
    outs = []
    last_second = 0
    for t in trades:
        second = int((t.ts - T0.astimezone(UTC)).total_seconds())
        while last_second < second:
            last_second += 1
            clock.now = float(last_second)
            outs.append(agg.tick())
        outs.append(agg.add(t))
    outs.append(agg.flush())
    out = bars_and_dead(outs)
    assert not out.dead_letters
    ours = bars_frame(out.bars)
    assert mismatches(ours, pandas_bars(trades)) == 0
    assert len(ours.loc["ILLQ"]) == len(range(0, 390, 37))
    # bars were emitted during the day, not all at the flush
    assert agg.counters.bars - len(outs[-1].bars) > 1000


def test_snapshot_restore_and_replay_from_committed_offset_is_exact() -> None:
    trades = random_trades(["AAPL", "MSFT"], T0, 900, 20, seed=9, jitter=3.0)
    whole = make()
    expected = bars_frame(
        bars_and_dead([whole.add(t, offset=i) for i, t in enumerate(trades)] + [whole.flush()]).bars
    )

    first = make()
    cut = len(trades) // 2 + 13
    before = [first.add(t, offset=i) for i, t in enumerate(trades[:cut])]
    committed = first.oldest_open_offset(0)
    assert committed is not None
    assert committed < cut
    snapshot = json.loads(json.dumps(first.state()))  # survives JSON (a state file, a commit)
    restored = Aggregator.restore(
        snapshot, AggregatorConfig(), wall=WallClock(), monotonic=FakeClock().monotonic
    )
    after = [restored.add(trades[i], offset=i) for i in range(committed, len(trades))]  # re-read
    assert restored.counters.replayed == cut - committed
    out = bars_and_dead([*before, *after, restored.flush()])
    assert mismatches(bars_frame(out.bars), expected) == 0


def test_restore_refuses_a_snapshot_of_another_interval() -> None:
    state = make().state()
    with pytest.raises(ValueError, match="1min"):
        Aggregator.restore(state, AggregatorConfig(interval="5min"))


def test_config_refuses_unknown_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        AggregatorConfig(interval="2min")
