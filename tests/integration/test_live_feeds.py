"""Finnhub and Alpaca websocket feeds against loopback servers speaking each protocol."""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stockpipe.contract import Bar
from stockpipe.sources.live.aggregate import Aggregator, AggregatorConfig, bars_and_dead
from stockpipe.sources.live.alpaca import AlpacaFeed
from stockpipe.sources.live.errors import FeedProtocolError, FeedRefusedError
from stockpipe.sources.live.feed import FeedOptions, WebsocketFeed, backoff_seconds
from stockpipe.sources.live.finnhub import FinnhubFeed
from stockpipe.sources.live.trades import Trade
from tests.live_helpers import bars_frame, mismatches, pandas_bars, random_trades, trade
from tests.live_servers import (
    AlpacaServer,
    Close,
    FinnhubServer,
    FreezingProxy,
    Send,
    Sleep,
    alpaca_trade_messages,
    finnhub_trade_messages,
)

pytestmark = pytest.mark.integration

FAST = FeedOptions(reconnect_initial_seconds=0.02, reconnect_max_seconds=0.2, recv_poll_seconds=0.05)
T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
TOKEN = "fh-secret-token-1234"


def collect(feed: WebsocketFeed, done: Callable[[list[Any]], bool], timeout: float = 20) -> list[Any]:
    """Events until ``done(events)`` or ``timeout`` (then the feed is stopped)."""
    timer = threading.Timer(timeout, feed.stop)
    timer.start()
    got: list[Any] = []
    try:
        for event in feed.events():
            got.append(event)
            if done(got):
                break
    finally:
        timer.cancel()
    return got


def finnhub(server: FinnhubServer, symbols: list[str], **kw: Any) -> FinnhubFeed:
    return FinnhubFeed(server.url, TOKEN, symbols, options=kw.pop("options", FAST), **kw)


def aggregate(trades: list[Trade]) -> list[Bar]:
    agg = Aggregator(AggregatorConfig())
    return list(bars_and_dead([*(agg.add(t) for t in trades), agg.flush()]).bars)


# ---------------- Finnhub ----------------


def test_finnhub_subscribes_each_symbol_reads_batches_and_pings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    trades = random_trades(["AAPL", "MSFT"], T0, 120, 10, seed=1)
    steps = [Send({"type": "ping"}), *finnhub_trade_messages(trades, batch=40), Send({"type": "ping"})]
    with FinnhubServer(scripts=[steps], token=TOKEN, subscribe_wait=2) as server:
        feed = finnhub(server, ["AAPL", "MSFT"])
        got = collect(feed, lambda g: len(g) == len(trades))
    assert server.subscribed == ["AAPL", "MSFT"]
    assert [(t.symbol, t.ts, t.price, t.size) for t in got] == [
        (t.symbol, t.ts, t.price, t.size) for t in trades
    ]
    assert all(t.provider == "finnhub" and t.trade_id is None for t in got)
    status = feed.status.as_dict()
    assert status["trades"] == len(trades)
    assert status["messages"] == len(steps) - 1  # stopped before the last ping
    assert status["connection_attempts"] == 1
    assert status["reconnects"] == 0
    assert status["last_message_at"] is not None
    assert status["messages_per_second"] > 0
    assert "token=***" in status["url"]
    assert TOKEN not in str(status)
    client_logs = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server")
    )
    assert "GET /?token=***" in client_logs  # the websockets client's request line, redacted
    assert TOKEN not in client_logs


def test_finnhub_server_closes_mid_minute_reconnect_counts_no_volume_twice() -> None:
    trades = random_trades(["AAPL"], T0, 180, 5, seed=2)  # 900 trades over 3 minutes
    cut = 400  # mid-minute
    before = finnhub_trade_messages(trades[:cut], batch=50)
    # after the reconnect the server repeats the last 120 trades sent before the drop, then goes on
    again = finnhub_trade_messages(trades[cut - 120 :], batch=50)
    with FinnhubServer(scripts=[[*before, Close()], again], token=TOKEN, subscribe_wait=1) as server:
        feed = finnhub(server, ["AAPL"])
        got = collect(feed, lambda g: len(g) == len(trades), timeout=20)
    assert server.connections == 2
    assert server.subscribed == ["AAPL", "AAPL"]  # resubscribed
    assert feed.status.reconnects == 1
    assert feed.status.duplicates == 120
    assert len(got) == len(trades)
    assert sum(t.size for t in got) == sum(t.size for t in trades)
    assert mismatches(bars_frame(aggregate(got)), pandas_bars(trades)) == 0


def test_finnhub_identical_trades_are_kept_outside_a_reconnect_overlap() -> None:
    same = [trade("AAPL", T0, 10.0, 100)] * 5
    with FinnhubServer(scripts=[finnhub_trade_messages(same, batch=2)], token=TOKEN) as server:
        feed = finnhub(server, ["AAPL"])
        got = collect(feed, lambda g: len(g) == 5, timeout=10)
    assert len(got) == 5
    assert feed.status.duplicates == 0


def test_finnhub_malformed_json_is_counted_and_the_connection_continues() -> None:
    good = random_trades(["AAPL"], T0, 10, 3, seed=4)
    bad_entry = {"type": "trade", "data": [{"s": "AAPL", "p": "n/a", "t": 1, "v": 1}, *_fh(good[:1])]}
    steps = [Send("{not json"), Send(bad_entry), *finnhub_trade_messages(good[1:])]
    with FinnhubServer(scripts=[steps], token=TOKEN) as server:
        feed = finnhub(server, ["AAPL"])
        got = collect(feed, lambda g: len(g) == len(good))
    assert len(got) == len(good)  # the good entry of the half-bad batch too
    assert feed.status.malformed == 2
    assert feed.status.reconnects == 0


def _fh(trades: list[Trade]) -> list[dict[str, Any]]:
    return [{"s": t.symbol, "p": t.price, "t": round(t.ts.timestamp() * 1000), "v": t.size} for t in trades]


def test_finnhub_garbage_in_a_row_stops_with_a_protocol_error() -> None:
    options = FeedOptions(max_malformed_in_a_row=5, recv_poll_seconds=0.05)
    with FinnhubServer(scripts=[[Send("<html>")] * 6], token=TOKEN) as server:
        feed = finnhub(server, ["AAPL"], options=options)
        with pytest.raises(FeedProtocolError, match="5 malformed messages in a row"):
            collect(feed, lambda g: False, timeout=10)


def test_finnhub_refused_token_is_one_clear_error_without_retries() -> None:
    with FinnhubServer(token="the-right-one") as server:
        feed = finnhub(server, ["AAPL"])
        with pytest.raises(FeedRefusedError) as info:
            collect(feed, lambda g: False, timeout=10)
    message = str(info.value)
    assert "Finnhub refused the credentials (HTTP 401)" in message
    assert "not retrying" in message
    assert TOKEN not in message
    assert server.attempts == 1  # no retry storm
    assert feed.status.connection_attempts == 1


def test_finnhub_subscription_error_stops_the_feed() -> None:
    steps = [Send({"type": "error", "msg": "Subscribing to too many symbols"})]
    with FinnhubServer(scripts=[steps], token=TOKEN) as server:
        feed = finnhub(server, ["AAPL"])
        with pytest.raises(FeedRefusedError, match="too many symbols"):
            collect(feed, lambda g: False, timeout=10)
    assert server.attempts == 1


def test_finnhub_burst_of_50000_trades_arrives_complete() -> None:
    rng = random.Random(50)
    burst = [
        trade("AAPL", T0 + timedelta(milliseconds=i), round(100 + rng.random(), 2), i % 500 + 1)
        for i in range(50_000)
    ]
    with FinnhubServer(scripts=[finnhub_trade_messages(burst, batch=500)], token=TOKEN) as server:
        feed = finnhub(server, ["AAPL"])
        started = time.perf_counter()
        got = collect(feed, lambda g: len(g) == len(burst), timeout=60)
        elapsed = time.perf_counter() - started
    assert len(got) == 50_000
    assert sum(t.size for t in got) == sum(t.size for t in burst)
    assert feed.status.duplicates == 0
    print(f"50,000-trade burst read in {elapsed:.2f} s ({50_000 / elapsed:,.0f} trades/s)")


def test_finnhub_out_of_order_trades_aggregate_to_the_pandas_bars() -> None:
    trades = random_trades(["AAPL", "MSFT", "IBM"], T0, 300, 20, seed=6, jitter=3.0)
    with FinnhubServer(scripts=[finnhub_trade_messages(trades, batch=25)], token=TOKEN) as server:
        feed = finnhub(server, ["AAPL", "MSFT", "IBM"])
        got = collect(feed, lambda g: len(g) == len(trades))
    assert any(b.ts < a.ts for a, b in itertools.pairwise(got))  # really out of order
    assert mismatches(bars_frame(aggregate(got)), pandas_bars(trades)) == 0


def test_silent_dead_socket_is_detected_by_ping_timeout_and_reconnected() -> None:
    trades = random_trades(["AAPL"], T0, 20, 5, seed=8)
    first, second = trades[:50], trades[50:]
    scripts = [[*finnhub_trade_messages(first), Sleep(30)], finnhub_trade_messages(second)]
    options = FeedOptions(
        ping_interval_seconds=0.2,
        ping_timeout_seconds=0.3,
        reconnect_initial_seconds=0.02,
        recv_poll_seconds=0.05,
    )
    with FinnhubServer(scripts=scripts, token=TOKEN) as server, FreezingProxy(server.port) as proxy:
        feed = FinnhubFeed(proxy.url, TOKEN, ["AAPL"], options=options)

        def done(got: list[Any]) -> bool:
            if len(got) == len(first):
                proxy.freeze()  # the socket stays open but nothing crosses, pongs neither
            return len(got) == len(trades)

        got = collect(feed, done, timeout=20)
    assert len(got) == len(trades)
    assert feed.status.reconnects == 1
    assert server.connections == 2


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_seconds(a, 1.0, 60.0, rng) for a in range(10)]
    for attempt, d in enumerate(delays):
        full = min(60.0, 2.0**attempt)
        assert full / 2 <= d <= full
    assert max(delays) <= 60.0


def test_unreachable_server_is_retried_with_backoff_until_it_is_up() -> None:
    with FinnhubServer(token=TOKEN) as server:
        port = server.port
    # the port is closed now: connection refused, retried
    feed = FinnhubFeed(f"ws://127.0.0.1:{port}", TOKEN, ["AAPL"], options=FAST)
    got = collect(feed, lambda g: False, timeout=1.0)
    assert got == []
    assert feed.status.connection_attempts >= 3
    assert feed.status.connected is False
    assert feed.status.last_error is not None


# ---------------- Alpaca ----------------


def alpaca(server: AlpacaServer, symbols: list[str], **kw: Any) -> AlpacaFeed:
    return AlpacaFeed(server.url, server.key, server.secret, symbols, options=kw.pop("options", FAST), **kw)


def _bar(
    symbol: str, minute: int, o: float, h: float, lo: float, c: float, v: int, kind: str = "b"
) -> dict[str, Any]:
    t = (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
    return {"T": kind, "S": symbol, "o": o, "h": h, "l": lo, "c": c, "v": v, "t": t, "n": 10, "vw": o}


def test_alpaca_handshake_bars_and_corrections_become_contract_bars() -> None:
    steps = [Send([_bar("AAPL", 0, 10, 11, 9, 10.5, 1000), _bar("MSFT", 0, 20, 21, 19, 20.5, 500)]),
             Send([_bar("AAPL", 0, 10, 11.5, 9, 10.6, 1200, kind="u")])]  # fmt: skip
    with AlpacaServer(scripts=[steps]) as server:
        feed = alpaca(server, ["AAPL", "MSFT"])
        got = collect(feed, lambda g: len(g) == 3)
    auth, sub = server.received[0], server.received[1]
    assert auth == {"action": "auth", "key": "key-id", "secret": "secret-key"}
    assert sub == {"action": "subscribe", "bars": ["AAPL", "MSFT"], "updatedBars": ["AAPL", "MSFT"]}
    first, _msft, corrected = got
    assert isinstance(first, Bar)
    assert isinstance(corrected, Bar)
    assert first.bar_ts.isoformat() == "2024-03-04T09:30:00-05:00"
    assert (corrected.symbol, corrected.bar_ts) == (first.symbol, first.bar_ts)
    assert corrected.produced_at >= first.produced_at
    assert (corrected.high, corrected.volume, corrected.source) == (11.5, 1200, "alpaca")
    assert feed.status.bars == 3


def test_alpaca_refused_key_is_one_clear_error_without_retries() -> None:
    with AlpacaServer(scripts=[[]], secret="other") as server:
        feed = AlpacaFeed(server.url, "key-id", "wrong-secret", ["AAPL"], options=FAST)
        with pytest.raises(FeedRefusedError) as info:
            collect(feed, lambda g: False, timeout=10)
    assert "Alpaca refused the API key (auth failed) (402 auth failed)" in str(info.value)
    assert "wrong-secret" not in str(info.value)
    assert server.attempts == 1


def test_alpaca_connection_limit_exceeded_stops_without_retries() -> None:
    with AlpacaServer(connection_limit=True) as server:
        feed = alpaca(server, ["AAPL"])
        with pytest.raises(FeedRefusedError, match="connection limit exceeded"):
            collect(feed, lambda g: False, timeout=10)
    assert server.attempts == 1


def test_alpaca_symbol_limit_on_subscribe_stops_without_retries() -> None:
    with AlpacaServer(symbol_limit=2) as server:
        feed = alpaca(server, ["AAPL", "MSFT", "IBM"], trades=True)
        with pytest.raises(FeedRefusedError, match="symbol limit exceeded"):
            collect(feed, lambda g: False, timeout=10)
    assert server.attempts == 1


def test_alpaca_trades_repeated_after_a_reconnect_are_deduped_by_id() -> None:
    trades = random_trades(["AAPL", "MSFT"], T0, 180, 5, seed=12, jitter=1.0)
    ids = list(range(1000, 1000 + len(trades)))
    cut = 450
    scripts = [
        [*alpaca_trade_messages(trades[:cut], ids[:cut]), Close()],
        alpaca_trade_messages(trades[cut - 200 :], ids[cut - 200 :]),  # 200 repeats, then new
    ]
    with AlpacaServer(scripts=scripts) as server:
        feed = alpaca(server, ["AAPL", "MSFT"], trades=True, bars=False)
        got = collect(feed, lambda g: len(g) == len(trades))
    assert server.received[1] == {"action": "subscribe", "trades": ["AAPL", "MSFT"]}
    assert server.received[-1] == {"action": "subscribe", "trades": ["AAPL", "MSFT"]}  # resubscribed
    assert feed.status.reconnects == 1
    assert feed.status.duplicates == 200
    assert [t.trade_id for t in got] == [f"V:{i}" for i in ids]
    assert mismatches(bars_frame(aggregate(got)), pandas_bars(trades)) == 0


def test_alpaca_malformed_messages_are_counted_and_skipped() -> None:
    good = random_trades(["AAPL"], T0, 10, 2, seed=13)
    steps = [
        Send("]]"),
        Send([{"T": "t", "S": "AAPL", "i": 1, "x": "V", "p": 10.0, "s": 5, "t": "yesterday"}]),
        Send([{"T": "zz"}]),
        *alpaca_trade_messages(good, list(range(10, 10 + len(good)))),
    ]
    with AlpacaServer(scripts=[steps]) as server:
        feed = alpaca(server, ["AAPL"], trades=True)
        got = collect(feed, lambda g: len(g) == len(good))
    assert len(got) == len(good)
    assert feed.status.malformed == 3


def test_alpaca_url_that_is_not_alpaca_gives_a_protocol_error() -> None:
    with FinnhubServer(scripts=[[Send("<html>hello</html>")]], token=TOKEN) as server:
        feed = AlpacaFeed(f"{server.url}/?token={TOKEN}", "key-id", "secret-key", ["AAPL"], options=FAST)
        with pytest.raises(FeedProtocolError, match="answered the handshake with '<html>hello</html>'"):
            collect(feed, lambda g: False, timeout=10)
