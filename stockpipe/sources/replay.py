"""``ReplaySource``: bars from files: CSV, Parquet and saved Alpha Vantage JSON replies.

* ``*.json`` (optionally ``.gz``): a saved ``TIME_SERIES_INTRADAY`` / ``TIME_SERIES_DAILY``
  reply (see ``alphavantage_json``), bar times in the reply's ``Time Zone`` (US/Eastern);
* ``*.parquet`` / ``*.pq``: columns as for CSV;
* anything else (``*.csv``, ``*.csv.gz``, ``*.txt``): CSV, delimiter ``,`` ``;`` tab or ``|``.
  The Yahoo Finance export (``Date,Open,High,Low,Close,Adj Close,Volume``, or ``Datetime``
  with an offset for intraday) works as is; other layouts via ``options.column_map``.

Daily bars (bare dates) are stamped at the session open of ``options.exchange`` (an
``exchange_calendars`` code, default XNYS: 09:30 America/New_York; XLON: 08:00
Europe/London), so a daily bar's ``bar_ts`` is the start of the period it covers, like
intraday bars; naive date-times are in that exchange's zone. ``options.date_format`` forces one
strftime format. A row that cannot be parsed raises ``ReplayParseError`` naming file and line
(Parquet: row) before any bar is yielded; with ``on_error="skip-and-report"`` (lenient) such
rows are skipped and collected in ``errors`` (with their raw text; ``rows_read`` counts the
data rows of each file, so ``rows_read == bars + len(errors)``). Output
is sorted by ``bar_ts`` (then symbol) across all files; ``options.symbols`` (when given)
filters by symbol; ``options.start``/``end`` are ignored (a file is replayed whole, as the
``SourceOptions`` contract says); ``produced_at`` is the UTC time each bar is yielded.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stockpipe.errors import ConfigError
from stockpipe.sources import alphavantage_json, calendar, tabular
from stockpipe.sources.base import Source, SourceOptions
from stockpipe.sources.errors import ReplayParseError
from stockpipe.sources.tabular import Parsing

if TYPE_CHECKING:
    from stockpipe.contract import Bar
    from stockpipe.settings import Settings

OnError = Literal["raise", "skip-and-report"]
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig")


def _kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".json"):
        return "alphavantage"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "csv"


def read_alphavantage_json(path: Path, text: str, produced_at: Callable[[], datetime]) -> list[Bar]:
    """Bars of a saved Alpha Vantage reply; an error reply or bad entry -> ``ReplayParseError``."""

    file = str(path)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReplayParseError(file, exc.lineno, f"invalid JSON: {exc.msg}") from None
    try:
        return alphavantage_json.parse_time_series(payload, source="replay", produced_at=produced_at)
    except alphavantage_json.AlphaVantageErrorReply as err:
        raise ReplayParseError(file, None, f"holds an Alpha Vantage error reply, not data ({err})") from None
    except alphavantage_json.AlphaVantageFormatError as err:
        line = alphavantage_json.line_of_key(text, err.key) if err.key else None
        raise ReplayParseError(file, line, str(err)) from None


class ReplaySource(Source):
    """Replays bars from ``options.paths`` (see the module docstring for formats and rules)."""

    name = "replay"

    def __init__(self, options: SourceOptions, *, on_error: OnError | None = None) -> None:
        if not options.paths:
            raise ConfigError("Replay needs at least one input file (--path).")
        missing = [str(p) for p in options.paths if not Path(p).is_file()]
        if missing:
            raise ConfigError(f"Replay input file(s) not found: {', '.join(missing)}.")
        mode = on_error or options.on_error
        if mode not in ("raise", "skip-and-report"):
            raise ConfigError(f"Unknown on_error mode {mode!r}: choose raise or skip-and-report.")
        self.options = options
        self.on_error: OnError = "skip-and-report" if mode == "skip-and-report" else "raise"
        self.errors: list[ReplayParseError] = []
        self.exchange = calendar.resolve_exchange(options.exchange)
        self.parsing = Parsing(
            zone=calendar.exchange_zone(self.exchange),
            open_at=lambda day: calendar.session_open(day, self.exchange),
            date_format=options.date_format or None,
        )
        self._bars: list[Bar] | None = None
        self.rows_read = 0  # data rows of all files (bars parsed + unparsable), set by load()

    def _read(self, path: Path) -> list[Bar]:
        opts = self.options
        stamp = _placeholder_now
        sink = self.errors.append if self.on_error == "skip-and-report" else None
        kind = _kind(path)
        if kind == "alphavantage":
            try:
                return read_alphavantage_json(path, _read_text(path), stamp)
            except ReplayParseError as err:
                if sink is None:
                    raise
                sink(err)
                return []

        common: dict[str, Any] = dict(
            column_map=dict(opts.column_map),
            default_symbol=opts.symbol.strip().upper() if opts.symbol else None,
            fallback_interval=opts.interval,
            produced_at=stamp,
            on_error=sink,
            parsing=self.parsing,
        )
        if kind == "parquet":
            return tabular.read_parquet(path, **common)
        try:
            text = _read_text(path)
        except (UnicodeDecodeError, OSError) as exc:
            raise ReplayParseError(str(path), None, f"cannot be read as UTF-8 text ({exc})") from None
        return tabular.read_csv(path, text, **common)

    def load(self) -> list[Bar]:
        """Parse every file once; filtered and sorted bars (cached)."""
        if self._bars is None:
            opts = self.options
            wanted = {s.strip().upper() for s in opts.symbols}
            bars: list[Bar] = []
            for path in opts.paths:
                bars.extend(self._read(Path(path)))
            self.rows_read = len(bars) + len(self.errors)
            if wanted:
                bars = [b for b in bars if b.symbol in wanted]
            bars.sort(key=lambda b: (b.bar_ts.timestamp(), b.symbol))
            self._bars = bars if opts.limit is None else bars[: max(opts.limit, 0)]
        return self._bars

    def estimated_count(self) -> int | None:
        return len(self.load())

    def bars(self) -> Iterator[Bar]:
        for bar in self.load():
            yield bar.model_copy(update={"produced_at": datetime.now(UTC)})


def _placeholder_now() -> datetime:
    return datetime.now(UTC)


def build(settings: Settings, options: SourceOptions) -> ReplaySource:
    """Registry factory."""
    return ReplaySource(options)
