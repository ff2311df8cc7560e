"""Live source name -> factory ``(settings, options) -> LiveSource``; modules imported lazily."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stockpipe.errors import ConfigError

if TYPE_CHECKING:
    from stockpipe.settings import Settings
    from stockpipe.sources.base import SourceOptions
    from stockpipe.sources.live.base import LiveSource

LiveFactory = Callable[["Settings", "SourceOptions"], "LiveSource"]


def _alphavantage(settings: Settings, options: SourceOptions) -> LiveSource:
    from stockpipe.sources.live.alphavantage_poll import build

    return build(settings, options)


LIVE_SOURCES: dict[str, LiveFactory] = {"alphavantage": _alphavantage}
POLLING_SOURCES: frozenset[str] = frozenset({"alphavantage"})  # a scheduled `run` polls once


def build_live_source(name: str, settings: Settings, options: SourceOptions) -> LiveSource:
    """The live source ``name`` (``ConfigError`` naming the choices otherwise)."""
    try:
        factory = LIVE_SOURCES[name]
    except KeyError:
        raise ConfigError(
            f"Source {name!r} has no follow mode: choose one of {', '.join(sorted(LIVE_SOURCES))}."
        ) from None
    return factory(settings, options)
