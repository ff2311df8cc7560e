"""Market-data sources: simulator, file replay, live Alpha Vantage, companies reference data."""

from stockpipe.sources.base import Source, SourceOptions, build_source

__all__ = ["Source", "SourceOptions", "build_source"]
