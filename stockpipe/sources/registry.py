"""Source name -> factory ``(settings, options) -> Source`` (used by ``build_source``).

Each factory imports its module lazily, so importing the registry stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stockpipe.settings import Settings
    from stockpipe.sources.base import Source, SourceOptions

SourceFactory = Callable[["Settings", "SourceOptions"], "Source"]


def _simulator(settings: Settings, options: SourceOptions) -> Source:
    from stockpipe.sources.simulator import build

    return build(settings, options)


def _replay(settings: Settings, options: SourceOptions) -> Source:
    from stockpipe.sources.replay import build

    return build(settings, options)


def _alphavantage(settings: Settings, options: SourceOptions) -> Source:
    from stockpipe.sources.alphavantage import build

    return build(settings, options)


SOURCES: dict[str, SourceFactory] = {
    "simulator": _simulator,
    "replay": _replay,
    "alphavantage": _alphavantage,
}
