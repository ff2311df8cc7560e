"""Live source name -> factory ``(settings, options) -> LiveSource``; modules imported lazily."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stockpipe.errors import ConfigError
from stockpipe.sources.companies import default_symbols
from stockpipe.sources.live import alpaca, finnhub
from stockpipe.sources.live.alphavantage_poll import build

if TYPE_CHECKING:
    from stockpipe.settings import Settings
    from stockpipe.sources.base import SourceOptions
    from stockpipe.sources.live.base import LiveSource
    from stockpipe.sources.live.feed import WebsocketFeed

LiveFactory = Callable[["Settings", "SourceOptions"], "LiveSource"]


def _alphavantage(settings: Settings, options: SourceOptions) -> LiveSource:

    return build(settings, options)


LIVE_SOURCES: dict[str, LiveFactory] = {"alphavantage": _alphavantage}
FEED_SOURCES: frozenset[str] = frozenset({"finnhub", "alpaca"})  # websockets: trades -> aggregator
POLLING_SOURCES: frozenset[str] = frozenset({"alphavantage"})  # a scheduled `run` polls once


def build_feed(name: str, settings: Settings, symbols: tuple[str, ...]) -> WebsocketFeed:
    """The websocket feed ``name`` for ``symbols`` (default: the first five shipped companies)."""

    symbols = symbols or default_symbols(5)
    if name == "finnhub":
        return finnhub.build_feed(settings, symbols)
    if name == "alpaca":
        return alpaca.build_feed(settings, symbols)
    raise ConfigError(
        f"Source {name!r} is not a websocket feed: choose one of {', '.join(sorted(FEED_SOURCES))}."
    )


def build_live_source(name: str, settings: Settings, options: SourceOptions) -> LiveSource:
    """The live source ``name`` (``ConfigError`` naming the choices otherwise)."""
    try:
        factory = LIVE_SOURCES[name]
    except KeyError:
        raise ConfigError(
            f"Source {name!r} has no follow mode: choose one of "
            f"{', '.join(sorted({*LIVE_SOURCES, *FEED_SOURCES}))}."
        ) from None
    return factory(settings, options)
