"""Finnhub trades websocket (``wss://ws.finnhub.io?token=...``).

Protocol: the token is a query parameter of the URL (so the URL is only ever shown redacted);
after connecting the client sends ``{"type":"subscribe","symbol":"AAPL"}`` once per symbol (no
acknowledgement). The server sends ``{"type":"trade","data":[{"s":"AAPL","p":189.3,
"t":1709562600123,"v":100,"c":["1","12"]}, ...]}`` (``t`` in Unix milliseconds, ``c`` the trade
conditions, possibly null), ``{"type":"ping"}`` to keep the connection alive, and
``{"type":"error","msg":"..."}`` for a refused subscription (too many symbols, no access):
the latter stops the feed with one sentence. A refused token is an HTTP 401/403 on the upgrade.

Finnhub trades carry no id: repeats after a reconnect are handled as documented in ``dedupe``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.sync.client import ClientConnection

from stockpipe.errors import ConfigError
from stockpipe.sources.live.errors import FeedRefusedError
from stockpipe.sources.live.feed import Event, FeedOptions, MalformedMessageError, WebsocketFeed, loads
from stockpipe.sources.live.trades import TradeFormatError, make_trade

PROVIDER = "finnhub"


class FinnhubFeed(WebsocketFeed):
    provider = PROVIDER
    display_name = "Finnhub"

    def __init__(
        self, url: str, token: str, symbols: Sequence[str], *, options: FeedOptions | None = None, **kw: Any
    ):
        self._token = token
        super().__init__(url, symbols, options=options, secrets=(token,), **kw)

    def connect_url(self) -> str:
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"] + [("token", self._token)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def handshake(self, ws: ClientConnection) -> None:
        for symbol in self.symbols:
            ws.send(json.dumps({"type": "subscribe", "symbol": symbol}))

    def parse(self, raw: str | bytes) -> list[Event]:
        msg = loads(raw)
        if not isinstance(msg, dict):
            raise MalformedMessageError("not a JSON object")
        kind = msg.get("type")
        if kind == "ping":
            return []
        if kind == "error":
            raise FeedRefusedError(
                f"Finnhub refused the subscription at {self.redacted_url}: "
                f"{self.redact(str(msg.get('msg', 'no reason given')))}; not retrying."
            )
        if kind != "trade":
            raise MalformedMessageError(f"unknown message type {kind!r}")
        data = msg.get("data")
        if not isinstance(data, list):
            raise MalformedMessageError("trade message without a 'data' list")
        received = self._wall()
        out: list[Event] = []
        for item in data:
            try:
                out.append(self._trade(item, received))
            except MalformedMessageError as exc:
                self.skip_entry(exc, item)  # the rest of the batch is still good
        return out

    def _trade(self, item: Any, received: datetime) -> Event:
        if not isinstance(item, dict):
            raise MalformedMessageError("trade entry is not an object")
        try:
            t = item["t"]
            if isinstance(t, bool) or not isinstance(t, int | float):
                raise MalformedMessageError(f"trade time {t!r} is not Unix milliseconds")
            return make_trade(
                symbol=item["s"],
                price=item["p"],
                size=item["v"],
                ts=datetime.fromtimestamp(t / 1000, UTC),
                trade_id=None,
                conditions=tuple(item.get("c") or ()),
                provider=PROVIDER,
                received_at=received,
            )
        except KeyError as exc:
            raise MalformedMessageError(f"trade entry has no {exc.args[0]!r}") from None
        except (TradeFormatError, OverflowError, ValueError) as exc:
            if isinstance(exc, MalformedMessageError):
                raise
            raise MalformedMessageError(str(exc)) from None


def build_feed(settings: Any, symbols: Sequence[str], **kw: Any) -> FinnhubFeed:
    """A feed from ``Settings`` (``finnhub`` and ``live`` groups); a missing token is a ConfigError."""

    key = settings.finnhub.api_key
    if key is None or not key.get_secret_value():
        raise ConfigError("Finnhub needs an API token: set STOCKPIPE_FINNHUB_API_KEY.")
    return FinnhubFeed(
        settings.finnhub.url,
        key.get_secret_value(),
        symbols,
        options=FeedOptions.from_settings(settings.live),
        **kw,
    )
