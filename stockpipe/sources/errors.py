"""Errors raised by the market-data sources (each message is one complete sentence)."""

from __future__ import annotations

from stockpipe.errors import StockpipeError


class SourceError(StockpipeError):
    """A source could not deliver bars (remote error reply, exhausted retries, quota)."""


class ReplayParseError(SourceError):
    """A row of a replay file could not be turned into a bar.

    ``file`` is the file name, ``line`` the 1-based line (CSV, JSON) or row (Parquet) number,
    ``reason`` what was wrong, ``raw`` the row as it stood in the file (CSV: the line's text;
    Parquet: the row as JSON), kept for the quarantine.
    """

    def __init__(
        self, file: str, line: int | None, reason: str, *, unit: str = "line", raw: str | None = None
    ) -> None:
        where = f"{file} {unit} {line}" if line is not None else file
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason
        self.raw = raw
