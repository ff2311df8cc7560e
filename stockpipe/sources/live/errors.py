"""Feed errors the CLI turns into one sentence and a non-zero exit (all ``StockpipeError``)."""

from __future__ import annotations

from stockpipe.errors import StockpipeError


class FeedRefusedError(StockpipeError):
    """The provider refused us for a reason a retry cannot fix: a bad key, a subscription the
    plan does not include, a connection or symbol limit. Never retried."""


class FeedProtocolError(StockpipeError):
    """The server does not speak the provider's protocol (too many malformed messages in a row,
    an unexpected handshake reply)."""
