"""``Trade``: one provider trade print, as it travels on the ``stock-trades`` topic.

A plain slotted dataclass (not pydantic): the aggregator touches millions of them, and
parsing from the wire (``from_json``) does the validation once. JSON layout::

    {"symbol": "AAPL", "price": 189.3, "size": 100, "ts": "2024-03-04T14:30:00.123000+00:00",
     "trade_id": "V:52983525029461", "conditions": ["@"], "provider": "alpaca",
     "received_at": "2024-03-04T14:30:00.140000+00:00"}

``ts`` is the event (trade) time, ``received_at`` when stockpipe read it off the socket; both
are timezone-aware UTC. ``trade_id`` is the provider's id where it has one (Alpaca ``i``,
prefixed with the exchange code ``x``), else ``None`` (Finnhub).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stockpipe.contract.bar import SYMBOL_RE


class TradeFormatError(ValueError):
    """A trade record that does not follow the layout above."""


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    price: float
    size: float
    ts: datetime
    trade_id: str | None
    conditions: tuple[str, ...]
    provider: str
    received_at: datetime

    def key(self) -> bytes:
        """Kafka key: the symbol, so one symbol's trades stay in order in one partition."""
        return self.symbol.encode()

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "price": self.price,
            "size": self.size,
            "ts": self.ts.isoformat(),
            "trade_id": self.trade_id,
            "conditions": list(self.conditions),
            "provider": self.provider,
            "received_at": self.received_at.isoformat(),
        }

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: Any) -> Trade:
        """A validated trade from its JSON object; ``TradeFormatError`` names the first problem."""
        if not isinstance(data, dict):
            raise TradeFormatError("trade is not a JSON object")
        try:
            return make_trade(
                symbol=data["symbol"],
                price=data["price"],
                size=data["size"],
                ts=_parse_ts(data["ts"], "ts"),
                trade_id=data.get("trade_id"),
                conditions=tuple(data.get("conditions") or ()),
                provider=data["provider"],
                received_at=_parse_ts(data["received_at"], "received_at"),
            )
        except KeyError as exc:
            raise TradeFormatError(f"trade has no {exc.args[0]!r} field") from None

    @classmethod
    def from_json_bytes(cls, raw: bytes | str) -> Trade:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TradeFormatError(f"trade is not valid JSON ({exc})") from None
        return cls.from_dict(data)


def _parse_ts(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise TradeFormatError(f"{what} {value!r} is not an ISO-8601 string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise TradeFormatError(f"{what} {value!r} is not an ISO-8601 timestamp") from None
    return ts


def make_trade(
    *,
    symbol: Any,
    price: Any,
    size: Any,
    ts: datetime,
    trade_id: Any,
    conditions: tuple[Any, ...],
    provider: Any,
    received_at: datetime,
) -> Trade:
    """Validate the fields (what a provider adapter parsed) into a ``Trade``."""
    if not isinstance(symbol, str) or not SYMBOL_RE.fullmatch(symbol):
        raise TradeFormatError(f"symbol {symbol!r} is not a ticker symbol")
    if (
        isinstance(price, bool)
        or not isinstance(price, int | float)
        or not math.isfinite(price)
        or price <= 0
    ):
        raise TradeFormatError(f"price {price!r} is not a positive number")
    if isinstance(size, bool) or not isinstance(size, int | float) or not math.isfinite(size) or size < 0:
        raise TradeFormatError(f"size {size!r} is not a non-negative number")
    for name, value in (("ts", ts), ("received_at", received_at)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TradeFormatError(f"{name} {value.isoformat()} has no UTC offset")
    if trade_id is not None and not isinstance(trade_id, str):
        raise TradeFormatError(f"trade_id {trade_id!r} is not a string")
    if not all(isinstance(c, str) for c in conditions):
        raise TradeFormatError(f"conditions {list(conditions)!r} are not strings")
    if not isinstance(provider, str) or not provider:
        raise TradeFormatError("provider is empty")
    return Trade(
        symbol=symbol,
        price=float(price),
        size=float(size),
        ts=ts.astimezone(UTC),
        trade_id=trade_id,
        conditions=tuple(conditions),
        provider=provider,
        received_at=received_at.astimezone(UTC),
    )
