"""Alpaca market-data websocket (``wss://stream.data.alpaca.markets/v2/iex``), JSON protocol.

Handshake: the server greets ``[{"T":"success","msg":"connected"}]``; the client sends
``{"action":"auth","key":...,"secret":...}`` and gets ``[{"T":"success","msg":"authenticated"}]``
or ``[{"T":"error","code":402,"msg":"auth failed"}]``; then ``{"action":"subscribe","bars":[...],
"updatedBars":[...],"trades":[...]}`` answered by ``[{"T":"subscription",...}]``. Data messages
are JSON arrays of ``{"T":"b"|"u"|"t", ...}``: bars ``S,o,h,l,c,v,t`` (RFC 3339 start time),
``u`` a corrected bar (sent as a newer version of the same key: same ``bar_ts``, newer
``produced_at``), trades ``S,i,x,p,s,c,t,z`` (id ``i`` unique per exchange ``x``).

Error codes that stop the feed with one sentence (retrying cannot help): 400 invalid syntax,
401 not authenticated, 402 auth failed, 403 already authenticated, 405 symbol limit exceeded,
406 connection limit exceeded, 409 insufficient subscription, 410 invalid subscribe action.
Others (404 auth timeout, 407 slow client, 500 internal error) drop the connection and reconnect.

Why not alpaca-py's ``StockDataStream``: its ``url_override`` does reach a local server, but its
run loop reconnects immediately (``asyncio.sleep(0)``) after every error except "insufficient
subscription", so a refused key becomes a retry storm; it has no backoff or trade dedupe, speaks
msgpack only and passes ``extra_headers`` (the legacy websockets API). So this adapter uses
``websockets`` directly through the shared ``feed.WebsocketFeed``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from websockets.sync.client import ClientConnection

from stockpipe.errors import ConfigError
from stockpipe.sources.bar_builder import make_bar
from stockpipe.sources.live.aggregate import exchange_time
from stockpipe.sources.live.errors import FeedProtocolError, FeedRefusedError
from stockpipe.sources.live.feed import Event, FeedOptions, MalformedMessageError, WebsocketFeed, loads
from stockpipe.sources.live.trades import TradeFormatError, make_trade

PROVIDER = "alpaca"
FATAL_CODES = {
    400: "rejected a message as invalid syntax",
    401: "says the connection is not authenticated",
    402: "refused the API key (auth failed)",
    403: "says the connection is already authenticated",
    405: "refused the subscription: symbol limit exceeded for this plan",
    406: "refused the connection: connection limit exceeded (another client is using this key)",
    409: "refused the subscription: insufficient subscription (this feed is not in the plan)",
    410: "refused an invalid subscribe action",
}
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")


def parse_rfc3339(text: Any) -> datetime:
    """An aware datetime from Alpaca's RFC 3339 (nanosecond digits truncated to microseconds)."""
    if not isinstance(text, str):
        raise MalformedMessageError(f"timestamp {text!r} is not a string")
    try:
        ts = datetime.fromisoformat(_FRACTION_RE.sub(r"\1", text))
    except ValueError:
        raise MalformedMessageError(f"timestamp {text!r} is not RFC 3339") from None
    if ts.tzinfo is None:
        raise MalformedMessageError(f"timestamp {text!r} has no offset")
    return ts


class AlpacaFeed(WebsocketFeed):
    provider = PROVIDER
    display_name = "Alpaca"

    def __init__(
        self,
        url: str,
        key_id: str,
        secret: str,
        symbols: Sequence[str],
        *,
        trades: bool = False,
        bars: bool = True,
        options: FeedOptions | None = None,
        **kw: Any,
    ) -> None:
        self._key_id = key_id
        self._secret = secret
        self.subscribe_trades = trades
        self.subscribe_bars = bars
        super().__init__(url, symbols, options=options, secrets=(key_id, secret), **kw)

    # ---- handshake ----
    def handshake(self, ws: ClientConnection) -> None:
        self._expect(ws, "connected")
        ws.send(json.dumps({"action": "auth", "key": self._key_id, "secret": self._secret}))
        self._expect(ws, "authenticated")
        sub: dict[str, Any] = {"action": "subscribe"}
        if self.subscribe_bars:
            sub["bars"] = list(self.symbols)
            sub["updatedBars"] = list(self.symbols)
        if self.subscribe_trades:
            sub["trades"] = list(self.symbols)
        ws.send(json.dumps(sub))
        self._expect(ws, "subscription")

    def _expect(self, ws: ClientConnection, what: str) -> None:
        """Read control messages until ``what`` (success msg or subscription ack) arrives."""
        raw = ws.recv(timeout=self.options.open_timeout_seconds)
        try:
            msgs = loads(raw)
        except MalformedMessageError:
            msgs = None
        if not isinstance(msgs, list):
            raise FeedProtocolError(
                f"Alpaca at {self.redacted_url} answered the handshake with {self.redact(str(raw)[:80])!r}."
            )
        for msg in msgs:
            if not isinstance(msg, dict):
                continue
            kind = msg.get("T")
            if kind == "error":
                self._error(msg)
            if (kind == "success" and msg.get("msg") == what) or (
                kind == "subscription" and what == "subscription"
            ):
                return
        raise FeedProtocolError(
            f"Alpaca at {self.redacted_url} did not confirm {what!r} (got {self.redact(str(raw)[:80])!r})."
        )

    def _error(self, msg: dict[str, Any]) -> None:
        code = msg.get("code")
        text = self.redact(str(msg.get("msg", "")))
        if isinstance(code, int) and code in FATAL_CODES:
            raise FeedRefusedError(
                f"Alpaca {FATAL_CODES[code]} ({code} {text}) at {self.redacted_url}; "
                "check the settings, not retrying."
            )
        raise ConnectionError(f"Alpaca error {code} {text}")  # reconnect with backoff

    # ---- data ----
    def parse(self, raw: str | bytes) -> list[Event]:
        msgs = loads(raw)
        if not isinstance(msgs, list):
            raise MalformedMessageError("not a JSON array")
        out: list[Event] = []
        received = self._wall()
        for msg in msgs:
            if not isinstance(msg, dict):
                self.skip_entry(MalformedMessageError("entry is not an object"), msg)
                continue
            kind = msg.get("T")
            try:
                if kind == "t":
                    out.append(self._trade(msg, received))
                elif kind in ("b", "u"):
                    out.append(self._bar(msg, received))
                elif kind == "error":
                    self._error(msg)
                elif kind in ("success", "subscription"):
                    continue
                else:
                    raise MalformedMessageError(f"unknown message type {kind!r}")
            except MalformedMessageError as exc:
                self.skip_entry(exc, msg)
        return out

    def _trade(self, msg: dict[str, Any], received: datetime) -> Event:
        try:
            trade_id = msg["i"]
            if isinstance(trade_id, bool) or not isinstance(trade_id, int | str):
                raise MalformedMessageError(f"trade id {trade_id!r} is not a number")
            return make_trade(
                symbol=msg["S"],
                price=msg["p"],
                size=msg["s"],
                ts=parse_rfc3339(msg["t"]),
                trade_id=f"{msg.get('x', '')}:{trade_id}",
                conditions=tuple(msg.get("c") or ()),
                provider=PROVIDER,
                received_at=received,
            )
        except KeyError as exc:
            raise MalformedMessageError(f"trade has no {exc.args[0]!r}") from None
        except TradeFormatError as exc:
            raise MalformedMessageError(str(exc)) from None

    def _bar(self, msg: dict[str, Any], received: datetime) -> Event:
        try:
            return make_bar(
                symbol=msg["S"],
                interval="1min",
                bar_ts=exchange_time(parse_rfc3339(msg["t"])),
                open=msg["o"],
                high=msg["h"],
                low=msg["l"],
                close=msg["c"],
                volume=msg["v"],
                source=PROVIDER,
                produced_at=received,
            )
        except KeyError as exc:
            raise MalformedMessageError(f"bar has no {exc.args[0]!r}") from None
        except ValueError as exc:
            if isinstance(exc, MalformedMessageError):
                raise
            raise MalformedMessageError(f"bar {exc}") from None


def build_feed(settings: Any, symbols: Sequence[str], **kw: Any) -> AlpacaFeed:
    """A feed from ``Settings`` (``alpaca`` and ``live`` groups); missing keys are a ConfigError."""

    a = settings.alpaca
    if a.api_key_id is None or a.api_secret_key is None:
        raise ConfigError("Alpaca needs STOCKPIPE_ALPACA_API_KEY_ID and STOCKPIPE_ALPACA_API_SECRET_KEY.")
    kw.setdefault("trades", a.trades)
    kw.setdefault("bars", not kw["trades"])  # both would write the same bar keys: one or the other
    return AlpacaFeed(
        a.data_url,
        a.api_key_id.get_secret_value(),
        a.api_secret_key.get_secret_value(),
        symbols,
        options=FeedOptions.from_settings(settings.live),
        **kw,
    )
