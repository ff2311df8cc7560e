"""Rows of CSV and Parquet files -> bars, with column aliases and an explicit column map.

Columns are found by (case-insensitive) alias unless ``column_map`` (contract field -> file
column) names them: ``bar_ts`` from ``Datetime``, ``Date``, ``Timestamp``, ``Time``...;
separate ``Date`` and ``Time`` columns are joined;
``open``/``high``/``low``/``close``/``volume`` by name (``Close/Last`` too); ``symbol`` from
``symbol``/``ticker``; ``interval`` from ``interval``. ``Adj Close`` and other columns are
ignored. The symbol comes from the row's symbol column when there is one, else from
``options.symbol``.

Interval: a row's ``interval`` column when present; else ``1day`` if every timestamp of the
file is a bare date (stamped at the exchange's session open, ``open_at``); else the smallest
gap between consecutive bars of a symbol when that is a contract interval; else
``options.interval``.

Dates: see ``timeparse`` (``zone`` for naive times, ``date_format`` to force one strftime
format). A semicolon-separated CSV whose numbers are written with a decimal comma
(``189,30``; ``1.234,50``, the convention of the spreadsheets that write ``;``) is read so:
commas are decimal points and dots group thousands.

Every bad row (bad number, ``null``, missing column, bad date, contract violation) raises
``ReplayParseError`` with the row's raw text, or goes to ``on_error`` (lenient replay).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from stockpipe.contract import Bar
from stockpipe.contract.bar import INTERVAL_MINUTES, INTRADAY_INTERVALS
from stockpipe.sources.bar_builder import DECIMAL_COMMA_RE, is_missing, make_bar, parse_number, parse_volume
from stockpipe.sources.errors import ReplayParseError
from stockpipe.sources.timeparse import EXCHANGE_TZ, OpenAt, coerce_timestamp

ALIASES: dict[str, tuple[str, ...]] = {
    "bar_ts": ("bar_ts", "datetime", "timestamp", "date", "time", "date_time", "ts"),
    "open": ("open", "open_price"),
    "high": ("high", "high_price"),
    "low": ("low", "low_price"),
    "close": ("close", "close_price", "close/last", "last"),
    "volume": ("volume", "vol"),
    "symbol": ("symbol", "ticker"),
    "interval": ("interval",),
}
REQUIRED = ("bar_ts", "open", "high", "low", "close", "volume")
SPLIT_TIME = "bar_ts:time"
# gap between a symbol's bars in seconds -> intraday interval (daily files are told by date-only times)
GAP_INTERVALS = {INTERVAL_MINUTES[i] * 60: i for i in INTRADAY_INTERVALS}

ErrorSink = Callable[[ReplayParseError], None]
Record = tuple[int, Mapping[str, Any], str]  # (line or row number, values by column, raw text)


@dataclass(frozen=True)
class Parsing:
    """How one file's values are read: zone of naive times, session open of bare dates,
    an explicit strftime date format, decimal commas."""

    zone: tzinfo = EXCHANGE_TZ
    open_at: OpenAt | None = None
    date_format: str | None = None
    decimal_comma: bool = False


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def resolve_columns(header: Iterable[str], column_map: Mapping[str, str], file: str) -> dict[str, str]:
    """Contract field -> file column for the fields this file provides."""
    header = [h for h in header if h is not None]
    unknown = sorted(set(column_map) - set(ALIASES))
    if unknown:
        raise ReplayParseError(file, None, f"column map names unknown field(s) {', '.join(unknown)}")
    by_norm = {_norm(h): h for h in header}
    resolved: dict[str, str] = {}
    for field, aliases in ALIASES.items():
        if field in column_map:
            wanted = column_map[field]
            if wanted not in header:
                raise ReplayParseError(file, 1, f"column {wanted!r} (for {field}) is not in the header")
            resolved[field] = wanted
            continue
        for alias in aliases:
            if alias in by_norm:
                resolved[field] = by_norm[alias]
                break
    if "bar_ts" not in column_map and _norm(resolved.get("bar_ts", "")) == "date" and "time" in by_norm:
        resolved[SPLIT_TIME] = by_norm["time"]  # separate Date and Time columns
    missing = [f for f in REQUIRED if f not in resolved]
    if missing:
        raise ReplayParseError(
            file, 1, f"no column for {', '.join(missing)} (header: {', '.join(header)}); pass a column map"
        )
    return resolved


@dataclass(frozen=True)
class _Row:
    line: int
    symbol: str
    ts: datetime
    date_only: bool
    interval: str | None
    prices: tuple[float, float, float, float]
    volume: int
    text: str


def _parse_row(
    record: Record, cols: dict[str, str], default_symbol: str | None, file: str, unit: str, how: Parsing
) -> _Row:
    line, raw, text = record
    try:
        stamp = raw.get(cols["bar_ts"])
        if SPLIT_TIME in cols and not is_missing(raw.get(cols[SPLIT_TIME])):
            stamp = f"{stamp} {raw.get(cols[SPLIT_TIME])}"
        if is_missing(stamp):
            raise ValueError("missing date")
        ts, date_only = coerce_timestamp(stamp, how.zone, date_format=how.date_format, open_at=how.open_at)
        symbol_value = raw.get(cols["symbol"]) if "symbol" in cols else None
        symbol = default_symbol if is_missing(symbol_value) else str(symbol_value)
        if not symbol:
            raise ValueError("no symbol: the row's symbol is empty and no symbol option was given")
        interval_value = raw.get(cols["interval"]) if "interval" in cols else None
        comma = how.decimal_comma
        prices = tuple(
            parse_number(raw.get(cols[f]), f, decimal_comma=comma) for f in ("open", "high", "low", "close")
        )
        return _Row(
            line=line,
            symbol=symbol.strip().upper(),
            ts=ts,
            date_only=date_only,
            interval=None if is_missing(interval_value) else str(interval_value).strip(),
            prices=prices,  # type: ignore[arg-type]  # four floats
            volume=parse_volume(raw.get(cols["volume"]), decimal_comma=comma),
            text=text,
        )
    except ValueError as exc:
        raise ReplayParseError(file, line, str(exc), unit=unit, raw=text) from None


def infer_interval(rows: list[_Row], fallback: str) -> str:
    """The bar length of a file without an interval column (see the module docstring)."""
    if rows and all(r.date_only for r in rows):
        return "1day"
    gaps: set[float] = set()
    last: dict[str, datetime] = {}
    for row in sorted(rows, key=lambda r: (r.symbol, r.ts.timestamp())):
        prev = last.get(row.symbol)
        if prev is not None and row.ts > prev:
            gaps.add((row.ts - prev).total_seconds())
        last[row.symbol] = row.ts
    smallest = min(gaps, default=None)
    return GAP_INTERVALS.get(int(smallest), fallback) if smallest is not None else fallback


def rows_to_bars(
    records: Iterator[Record],
    header: list[str],
    *,
    file: str,
    unit: str,
    column_map: Mapping[str, str],
    default_symbol: str | None,
    fallback_interval: str,
    produced_at: Callable[[], datetime],
    on_error: ErrorSink | None,
    parsing: Parsing | None = None,
) -> list[Bar]:
    """Validated bars of one file; each bad row raises (or goes to ``on_error``)."""
    cols = resolve_columns(header, column_map, file)
    if "symbol" not in cols and not default_symbol:
        raise ReplayParseError(file, None, "has no symbol column; pass the symbol option (--symbol AAPL)")
    how = parsing or Parsing()
    rows: list[_Row] = []
    for record in records:
        try:
            rows.append(_parse_row(record, cols, default_symbol, file, unit, how))
        except ReplayParseError as err:
            if on_error is None:
                raise
            on_error(err)
    interval = infer_interval(rows, fallback_interval)
    bars: list[Bar] = []
    for row in rows:
        o, h, lo, c = row.prices
        try:
            bars.append(
                make_bar(
                    symbol=row.symbol,
                    interval=row.interval or interval,
                    bar_ts=row.ts,
                    open=o,
                    high=h,
                    low=lo,
                    close=c,
                    volume=row.volume,
                    source="replay",
                    produced_at=produced_at(),
                )
            )
        except ValueError as exc:
            invalid = ReplayParseError(file, row.line, str(exc), unit=unit, raw=row.text)
            if on_error is None:
                raise invalid from None
            on_error(invalid)
    return bars


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _uses_decimal_comma(sample: list[str], delimiter: str) -> bool:
    """True when a semicolon file writes numbers with a decimal comma (``1.011,20``, ``189,30``)."""
    return any(
        DECIMAL_COMMA_RE.match(cell.strip())
        for row in csv.reader(sample, delimiter=delimiter)
        for cell in row
    )


def read_csv(path: Path, text: str, **kwargs: Any) -> list[Bar]:
    """Bars of a CSV text (``path`` names it in errors); the header is line 1."""
    file = str(path)
    lines = text.splitlines()
    if not lines:
        raise ReplayParseError(file, None, "is empty")
    delimiter = _delimiter(lines[0])
    reader = csv.reader(lines, delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    parsing: Parsing = kwargs.pop("parsing", None) or Parsing()
    if delimiter == ";" and _uses_decimal_comma(lines[1:51], delimiter):
        parsing = Parsing(parsing.zone, parsing.open_at, parsing.date_format, decimal_comma=True)

    def records() -> Iterator[Record]:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue  # blank line
            line = reader.line_num
            text = lines[line - 1] if 0 < line <= len(lines) else delimiter.join(cells)
            if len(cells) != len(header):
                problem = f"has {len(cells)} fields, header has {len(header)}"
                bad = ReplayParseError(file, line, problem, raw=text)
                if kwargs.get("on_error") is None:
                    raise bad
                kwargs["on_error"](bad)
                continue
            yield line, dict(zip(header, cells, strict=True)), text

    return rows_to_bars(records(), header, file=file, unit="line", parsing=parsing, **kwargs)


def read_parquet(path: Path, **kwargs: Any) -> list[Bar]:
    """Bars of a Parquet file; errors name the 1-based row."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ReplayParseError(str(path), None, f"is not a readable Parquet file ({exc})") from None
    header = list(table.column_names)
    records = ((n, row, json.dumps(row, default=str)) for n, row in enumerate(table.to_pylist(), start=1))
    return rows_to_bars(records, header, file=str(path), unit="row", **kwargs)
