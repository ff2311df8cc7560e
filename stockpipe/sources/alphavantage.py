"""``AlphaVantageSource``: live bars from the Alpha Vantage REST API.

``TIME_SERIES_INTRADAY`` (``interval`` from the options, ``outputsize=full``) or, for
``1day``, ``TIME_SERIES_DAILY`` (``outputsize=compact``: the last 100 sessions; ``full`` is
a premium feature). Requests are paced by ``RateLimiter`` (``requests_per_minute``,
``requests_per_day``). A reply carrying ``Note``/``Information``/``Error Message`` is an
error, never data: a rate-limit notice is retried with exponential backoff (base: the
request spacing) up to ``max_retries`` times, any other such reply fails at once naming
the symbol; HTTP 429/5xx and network errors are retried with backoff from 1 s. The API key
never appears in messages or logs: URLs are shown with ``apikey=***`` and a filter
redacts it from httpx's own log lines.

Symbols default to the first 5 shipped companies (one minute of free-tier budget). Bars
are yielded per symbol, oldest first, filtered to ``options.start``..``end``
(exchange-local dates); ``produced_at`` is the UTC time each bar is yielded.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from stockpipe.contract import INTERVALS
from stockpipe.contract.bar import SYMBOL_RE
from stockpipe.errors import ConfigError
from stockpipe.sources import alphavantage_json
from stockpipe.sources.base import Source, SourceOptions
from stockpipe.sources.calendar import EXCHANGE_TZ
from stockpipe.sources.companies import default_symbols
from stockpipe.sources.errors import SourceError
from stockpipe.sources.ratelimit import RateLimiter

if TYPE_CHECKING:
    import httpx

    from stockpipe.contract import Bar
    from stockpipe.settings import AlphaVantageSettings, Settings

log = logging.getLogger(__name__)
DEFAULT_SYMBOL_COUNT = 5
NETWORK_BACKOFF = 1.0
MAX_BACKOFF = 300.0
_APIKEY_RE = re.compile(r"(apikey=)[^&\s\"']*", re.IGNORECASE)


def redact(text: str, key: str | None = None) -> str:
    """``text`` with any ``apikey=...`` value (and the literal key, if given) masked."""
    text = _APIKEY_RE.sub(r"\1***", text)
    return text.replace(key, "***") if key else text


class _RedactFilter(logging.Filter):
    """Masks ``apikey=...`` in records of the HTTP client loggers (httpx logs full URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apikey=" in message.lower():
            record.msg, record.args = redact(message), None
        return True


_FILTER = _RedactFilter()


def _install_log_redaction() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class AlphaVantageSource(Source):
    """Bars fetched live from Alpha Vantage (see the module docstring)."""

    name = "alphavantage"

    def __init__(
        self,
        settings: AlphaVantageSettings,
        options: SourceOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        key = settings.api_key.get_secret_value().strip() if settings.api_key else ""
        if not key:
            raise ConfigError("The alphavantage source needs an API key: set STOCKPIPE_ALPHAVANTAGE_API_KEY.")
        if options.interval not in INTERVALS:
            raise ConfigError(f"Unknown interval {options.interval!r}: choose one of {', '.join(INTERVALS)}.")
        if options.realtime:
            raise ConfigError("The alphavantage source has no real-time mode; use the simulator to stream.")
        symbols = tuple(dict.fromkeys(s.strip().upper() for s in options.symbols))
        bad = [s for s in symbols if not SYMBOL_RE.fullmatch(s)]
        if bad:
            raise ConfigError(f"Invalid symbol(s) for Alpha Vantage: {', '.join(bad)}.")
        if not symbols:
            symbols = default_symbols(DEFAULT_SYMBOL_COUNT)
        self.settings = settings
        self.options = options
        self.symbols = symbols
        self._key = key
        self._sleep = sleep
        self._transport = transport
        self._timeout = timeout
        self.limiter = RateLimiter(
            settings.requests_per_minute, settings.requests_per_day, clock=clock, sleep=sleep
        )
        _install_log_redaction()

    def params(self, symbol: str, outputsize: str | None = None) -> dict[str, str]:
        """Query parameters of the request for ``symbol`` (including the key).

        ``outputsize`` defaults to ``full`` intraday (about 30 days) and ``compact`` daily (100
        sessions; ``full`` daily is premium); the incremental poller asks for ``compact`` (the
        last 100 bars) once it has a high-water mark.
        """
        if self.options.interval == "1day":
            query = {"function": "TIME_SERIES_DAILY", "symbol": symbol, "outputsize": outputsize or "compact"}
        else:
            query = {
                "function": "TIME_SERIES_INTRADAY",
                "symbol": symbol,
                "interval": self.options.interval,
                "outputsize": outputsize or "full",
                "extended_hours": "true" if self.settings.extended_hours else "false",
            }
        if self.settings.entitlement:
            query["entitlement"] = self.settings.entitlement
        return {**query, "datatype": "json", "apikey": self._key}

    def redacted_url(self, symbol: str, outputsize: str | None = None) -> str:
        """The request URL with the key masked: safe for messages and logs."""
        return redact(f"{self.settings.base_url}?{urlencode(self.params(symbol, outputsize))}", self._key)

    def _backoff(self, attempt: int, rate_limited: bool) -> float:
        base = self.limiter.spacing if rate_limited else NETWORK_BACKOFF
        return float(min(base * 2**attempt, MAX_BACKOFF))

    def fetch(self, client: httpx.Client, symbol: str, outputsize: str | None = None) -> list[Bar]:
        """All bars of one symbol, oldest first (retrying as described in the module docstring)."""
        import httpx

        attempt = 0
        while True:
            self.limiter.acquire()
            rate_limited = False
            try:
                resp = client.get(self.settings.base_url, params=self.params(symbol, outputsize))
            except httpx.TransportError as exc:  # timeouts, refused connections, protocol errors
                problem = f"network error ({type(exc).__name__})"
            else:
                if resp.status_code == 429 or resp.status_code >= 500:
                    problem = f"HTTP {resp.status_code}"
                elif resp.status_code >= 400:
                    raise SourceError(
                        f"Alpha Vantage answered HTTP {resp.status_code} for {symbol} "
                        f"({self.redacted_url(symbol, outputsize)})."
                    )
                else:
                    try:
                        payload = resp.json()
                    except ValueError:
                        raise SourceError(
                            f"Alpha Vantage sent a reply for {symbol} that is not JSON."
                        ) from None
                    try:
                        return alphavantage_json.parse_time_series(
                            payload, source="alphavantage", produced_at=_now, symbol=symbol
                        )
                    except alphavantage_json.AlphaVantageErrorReply as err:
                        if not err.is_rate_limit:
                            raise SourceError(
                                f"Alpha Vantage refused the request for {symbol}: "
                                f"{err.kind}: {redact(err.message, self._key)}"
                            ) from None
                        rate_limited = True
                        problem = f"rate limited ({err.kind}: {redact(err.message, self._key)})"
                    except alphavantage_json.AlphaVantageFormatError as err:
                        detail = redact(str(err), self._key)
                        raise SourceError(
                            f"Alpha Vantage sent an unusable reply for {symbol}: {detail}."
                        ) from None
            if attempt >= self.settings.max_retries:
                raise SourceError(
                    f"Alpha Vantage request for {symbol} failed after {attempt + 1} attempt(s): {problem} "
                    f"({self.redacted_url(symbol, outputsize)})."
                )
            delay = self._backoff(attempt, rate_limited)
            log.warning("Alpha Vantage %s for %s; retrying in %.0f s", problem, symbol, delay)
            self._sleep(delay)
            attempt += 1

    def bars(self) -> Iterator[Bar]:
        """Fetch each symbol in turn and yield its bars (filtered, limited)."""
        import httpx

        opts = self.options
        limit = opts.limit
        sent = 0
        if limit is not None and limit <= 0:
            return
        headers = {"User-Agent": "stockpipe"}
        with httpx.Client(timeout=self._timeout, transport=self._transport, headers=headers) as client:
            for symbol in self.symbols:
                for bar in self.fetch(client, symbol):
                    day = bar.bar_ts.astimezone(EXCHANGE_TZ).date()
                    if (opts.start and day < opts.start) or (opts.end and day > opts.end):
                        continue
                    yield bar.model_copy(update={"produced_at": _now()})
                    sent += 1
                    if limit is not None and sent >= limit:
                        return


def _now() -> datetime:
    return datetime.now(UTC)


def build(settings: Settings, options: SourceOptions) -> AlphaVantageSource:
    """Registry factory."""
    return AlphaVantageSource(settings.alphavantage, options)
