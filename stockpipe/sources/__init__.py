"""Market-data sources: simulator, file replay, live Alpha Vantage, companies reference data.

The factory ``build_source`` is in ``stockpipe.sources.registry``.
"""

from stockpipe.sources.base import Source, SourceOptions

__all__ = ["Source", "SourceOptions"]
