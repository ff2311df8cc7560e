"""AlphaVantageSource against a loopback HTTP server replaying recorded responses."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import SecretStr

from stockpipe.settings import AlphaVantageSettings, Settings
from stockpipe.sources import SourceOptions
from stockpipe.sources.alphavantage import AlphaVantageSource
from stockpipe.sources.errors import SourceError
from stockpipe.sources.registry import build_source
from tests.helpers_clock import FakeClock

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "sources" / "alphavantage"
KEY = "LOOPBACK-SECRET-42"


class Recorded:
    """Per symbol, a queue of replies: (status, fixture file name or raw text, delay seconds)."""

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, str, float]]] = {}
        self.queries: list[dict[str, str]] = []


@pytest.fixture
def av_server() -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
            recorded.queries.append(query)
            status, body, delay = recorded.script[query["symbol"]].pop(0)
            time.sleep(delay)
            data = (FIXTURES / body).read_bytes() if body.endswith(".json") else body.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and went away

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/query", recorded
    finally:
        server.shutdown()
        server.server_close()


def _source(url: str, clock: FakeClock, *, timeout: float = 5.0, **opts: object) -> AlphaVantageSource:
    settings = AlphaVantageSettings(api_key=SecretStr(KEY), base_url=url, max_retries=3)
    options = SourceOptions(**opts)  # type: ignore[arg-type]
    return AlphaVantageSource(settings, options, clock=clock.monotonic, sleep=clock.sleep, timeout=timeout)


def test_recorded_intraday_and_daily_replies(av_server: tuple[str, Recorded]) -> None:
    url, rec = av_server
    rec.script["IBM"] = [(200, "intraday_ibm_1min.json", 0.0)]
    clock = FakeClock(0.0)
    bars = list(_source(url, clock, symbols=("IBM",)).bars())
    assert [b.bar_ts.isoformat() for b in bars][:2] == [
        "2024-03-08T09:30:00-05:00",
        "2024-03-08T15:59:00-05:00",
    ]
    assert rec.queries[0]["function"] == "TIME_SERIES_INTRADAY"
    assert rec.queries[0]["apikey"] == KEY

    rec.script["IBM"] = [(200, "daily_ibm.json", 0.0)]
    daily = list(_source(url, clock, symbols=("IBM",), interval="1day").bars())
    assert len(daily) == 5
    assert daily[0].interval == "1day"


def test_note_then_success_is_retried(av_server: tuple[str, Recorded]) -> None:
    url, rec = av_server
    rec.script["IBM"] = [(200, "note_rate_limit.json", 0.0), (200, "intraday_ibm_1min.json", 0.0)]
    clock = FakeClock(0.0)
    bars = list(_source(url, clock, symbols=("IBM",)).bars())
    assert len(bars) == 7
    assert len(rec.queries) == 2
    assert clock.sleeps == [12.0]  # one backoff of the 12 s spacing; no data from the Note


def test_rate_limiter_spaces_requests_across_symbols(av_server: tuple[str, Recorded]) -> None:
    url, rec = av_server
    for sym in ("IBM", "AAPL", "MSFT"):
        rec.script[sym] = [(200, "intraday_ibm_1min.json", 0.0)]
    clock = FakeClock(0.0)
    bars = list(_source(url, clock, symbols=("IBM", "AAPL", "MSFT")).bars())
    assert [q["symbol"] for q in rec.queries] == ["IBM", "AAPL", "MSFT"]
    assert [b.symbol for b in bars] == ["IBM"] * 7 + ["AAPL"] * 7 + ["MSFT"] * 7
    assert clock.sleeps == [12.0, 12.0]


def test_error_message_fails_naming_the_symbol(av_server: tuple[str, Recorded]) -> None:
    url, rec = av_server
    rec.script["NOPE"] = [(200, "error_message.json", 0.0)]
    with pytest.raises(SourceError, match="for NOPE: Error Message: Invalid API call"):
        list(_source(url, FakeClock(0.0), symbols=("NOPE",)).bars())
    assert len(rec.queries) == 1


def test_timeout_and_5xx_retried_and_key_never_leaks(
    av_server: tuple[str, Recorded], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url, rec = av_server
    rec.script["IBM"] = [
        (200, "intraday_ibm_1min.json", 1.0),  # slower than the client's timeout
        (502, "bad gateway", 0.0),
        (200, "intraday_ibm_1min.json", 0.0),
    ]
    bars = list(_source(url, FakeClock(0.0), timeout=0.3, symbols=("IBM",)).bars())
    assert len(bars) == 7
    assert len(rec.queries) == 3

    rec.script["IBM"] = [(503, "down", 0.0)] * 4
    with pytest.raises(SourceError) as info:
        list(_source(url, FakeClock(0.0), symbols=("IBM",)).bars())
    message = str(info.value)
    assert "failed after 4 attempt(s): HTTP 503" in message
    assert KEY not in message
    assert "apikey=***" in message
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_built_through_the_registry_from_settings(
    av_server: tuple[str, Recorded], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, rec = av_server
    rec.script["IBM"] = [(200, "intraday_ibm_1min.json", 0.0)]
    monkeypatch.setenv("STOCKPIPE_ALPHAVANTAGE_API_KEY", KEY)
    monkeypatch.setenv("STOCKPIPE_ALPHAVANTAGE_BASE_URL", url)
    settings = Settings(_env_file=None)
    src = build_source("alphavantage", settings, SourceOptions(symbols=("IBM",), limit=2))
    assert isinstance(src, AlphaVantageSource)
    assert len(list(src.bars())) == 2
