from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from stockpipe.errors import ConfigError
from stockpipe.settings import AlphaVantageSettings
from stockpipe.sources import SourceOptions
from stockpipe.sources.alphavantage import AlphaVantageSource, redact
from stockpipe.sources.errors import SourceError
from stockpipe.sources.ratelimit import RateLimiter
from tests.helpers_clock import FakeClock

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "sources" / "alphavantage"
KEY = "SECRETKEY123"


def fixture(name: str) -> dict[str, object]:
    return json.loads((FIXTURES / name).read_text())


class Server:
    """A scripted MockTransport: each request pops the next (status, body) reply."""

    def __init__(self, *replies: tuple[int, object]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.replies.pop(0)
        if isinstance(body, Exception):
            raise body
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)


def make(
    server: Server, clock: FakeClock | None = None, *, max_retries: int = 4, **opts: object
) -> AlphaVantageSource:
    clock = clock or FakeClock(1000.0)
    settings = AlphaVantageSettings(
        api_key=SecretStr(KEY), base_url="http://av.test/query", max_retries=max_retries
    )
    options = SourceOptions(**{"symbols": ("IBM",), **opts})  # type: ignore[arg-type]
    return AlphaVantageSource(
        settings, options, clock=clock.monotonic, sleep=clock.sleep, transport=httpx.MockTransport(server)
    )


def test_success_requests_intraday_full_and_parses_bars() -> None:
    server = Server((200, fixture("intraday_ibm_1min.json")))
    bars = list(make(server).bars())
    assert len(bars) == 7
    assert bars[0].bar_ts.isoformat() == "2024-03-08T09:30:00-05:00"
    assert {b.source for b in bars} == {"alphavantage"}
    params = dict(server.requests[0].url.params)
    assert params == {
        "function": "TIME_SERIES_INTRADAY",
        "symbol": "IBM",
        "interval": "1min",
        "outputsize": "full",
        "extended_hours": "true",
        "datatype": "json",
        "apikey": KEY,
    }


def test_daily_uses_time_series_daily_and_filters_dates() -> None:
    from datetime import date

    server = Server((200, fixture("daily_ibm.json")))
    bars = list(make(server, interval="1day", start=date(2024, 3, 5), end=date(2024, 3, 7)).bars())
    assert [b.bar_ts.day for b in bars] == [5, 6, 7]
    assert dict(server.requests[0].url.params)["function"] == "TIME_SERIES_DAILY"


@pytest.mark.parametrize("notice", ["note_rate_limit.json", "information_rate_limit.json"])
def test_rate_limit_notice_is_retried_with_backoff_then_succeeds(notice: str) -> None:
    clock = FakeClock(1000.0)
    server = Server((200, fixture(notice)), (200, fixture(notice)), (200, fixture("intraday_ibm_1min.json")))
    bars = list(make(server, clock).bars())
    assert len(bars) == 7
    assert len(server.requests) == 3
    # backoff 12 s then 24 s (base: the 12 s spacing of 5 requests/minute); the limiter's
    # own spacing is already satisfied by the backoff, so it adds no sleeps
    assert clock.sleeps == [12.0, 24.0]


def test_rate_limit_exhausting_retries_is_a_source_error() -> None:
    server = Server(*[(200, fixture("note_rate_limit.json"))] * 3)
    with pytest.raises(SourceError, match=r"IBM failed after 3 attempt\(s\): rate limited \(Note: ") as info:
        list(make(server, max_retries=2).bars())
    assert len(server.requests) == 3
    assert KEY not in str(info.value)
    assert "apikey=***" in str(info.value)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("error_message.json", r"refused the request for IBM: Error Message: Invalid API call"),
        ("information_premium.json", r"refused the request for IBM: Information: .*premium endpoint"),
    ],
)
def test_error_replies_fail_at_once_never_as_data(name: str, pattern: str) -> None:
    server = Server((200, fixture(name)))
    with pytest.raises(SourceError, match=pattern):
        list(make(server).bars())
    assert len(server.requests) == 1  # no retry


def test_server_errors_and_timeouts_are_retried() -> None:
    clock = FakeClock(1000.0)
    server = Server(
        (503, "busy"),
        (200, httpx.ReadTimeout("timed out")),
        (200, fixture("intraday_ibm_1min.json")),
    )
    assert len(list(make(server, clock).bars())) == 7
    assert len(server.requests) == 3
    # backoff 1 s, then 2 s; the limiter tops each wait up to its 12 s spacing
    assert clock.sleeps == [1.0, 11.0, 2.0, 10.0]


def test_client_error_and_non_json_fail_without_retry() -> None:
    with pytest.raises(SourceError, match="HTTP 401 for IBM"):
        list(make(Server((401, "no"))).bars())
    with pytest.raises(SourceError, match="not JSON"):
        list(make(Server((200, "<html>oops</html>"))).bars())


def test_missing_key_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="STOCKPIPE_ALPHAVANTAGE_API_KEY"):
        AlphaVantageSource(AlphaVantageSettings(), SourceOptions())
    with pytest.raises(ConfigError, match="STOCKPIPE_ALPHAVANTAGE_API_KEY"):
        AlphaVantageSource(AlphaVantageSettings(api_key=SecretStr("  ")), SourceOptions())


def test_key_never_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"Error Message": f"Invalid API key {KEY}. Please retry."}
    server = Server((500, "x"), (200, echo))
    with pytest.raises(SourceError) as info:
        list(make(server).bars())
    assert KEY not in str(info.value)
    assert "***" in str(info.value)
    assert caplog.records, "expected retry and HTTP log lines"
    assert any("apikey=***" in r.getMessage() for r in caplog.records)  # httpx's request line, redacted
    assert all(KEY not in r.getMessage() for r in caplog.records)
    assert redact(f"http://x/q?symbol=A&apikey={KEY}&x=1") == "http://x/q?symbol=A&apikey=***&x=1"


def test_limit_and_default_symbols() -> None:
    server = Server((200, fixture("intraday_ibm_1min.json")))
    assert len(list(make(server, limit=3).bars())) == 3
    src = AlphaVantageSource(AlphaVantageSettings(api_key=SecretStr(KEY)), SourceOptions())
    assert src.symbols == ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL")
    with pytest.raises(ConfigError, match="no real-time mode"):
        AlphaVantageSource(AlphaVantageSettings(api_key=SecretStr(KEY)), SourceOptions(realtime=True))


def test_rate_limiter_spacing_on_an_injected_clock() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(5, 25, clock=clock.monotonic, sleep=clock.sleep)
    starts = []
    for _ in range(4):
        limiter.acquire()
        starts.append(clock.now)
    assert [b - a for a, b in itertools.pairwise(starts)] == [12.0, 12.0, 12.0]
    clock.now += 100.0  # idle time counts: no wait after a long pause
    assert limiter.acquire() == 0.0


def test_rate_limiter_daily_budget() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(60, 3, clock=clock.monotonic, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()
    with pytest.raises(SourceError, match="budget of 3 requests per day is used up"):
        limiter.acquire()
    clock.now += 86_400.0  # a day later the window has rolled
    limiter.acquire()
