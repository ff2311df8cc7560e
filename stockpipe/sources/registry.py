"""The source factory: source name -> builder ``(settings, options) -> Source``."""

from __future__ import annotations

from collections.abc import Callable

from stockpipe.errors import ConfigError
from stockpipe.settings import Settings
from stockpipe.sources import alphavantage, replay, simulator
from stockpipe.sources.base import Source, SourceOptions

SourceFactory = Callable[[Settings, SourceOptions], Source]

SOURCES: dict[str, SourceFactory] = {
    "simulator": simulator.build,
    "replay": replay.build,
    "alphavantage": alphavantage.build,
}


def build_source(name: str, settings: Settings, options: SourceOptions) -> Source:
    """The factory: ``simulator`` (default), ``replay`` or ``alphavantage``."""
    try:
        factory = SOURCES[name]
    except KeyError:
        raise ConfigError(f"Unknown source {name!r}: choose one of {', '.join(sorted(SOURCES))}.") from None
    return factory(settings, options)
