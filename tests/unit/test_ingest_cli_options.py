"""Produce options -> SourceOptions."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from stockpipe.cli.ingest import source_options
from stockpipe.errors import ConfigError

BASE: dict[str, object] = dict(
    symbols=None, start=None, end=None, days=None, interval="1min", seed=42, realtime=False, speed=1.0,
    files=[], symbol=None, maps=[], limit=None,
)  # fmt: skip


def _opts(**kw: object):
    return source_options(**{**BASE, **kw})  # type: ignore[arg-type]


def test_days_from_start_and_from_end() -> None:
    o = _opts(start="2024-01-02", days=3)
    assert (o.start, o.end) == (date(2024, 1, 2), date(2024, 1, 4))
    o = _opts(end="2024-01-10", days=10)
    assert (o.start, o.end) == (date(2024, 1, 1), date(2024, 1, 10))


def test_symbols_files_map_and_limit() -> None:
    o = _opts(
        symbols="aapl, msft,,", files=[Path("a.csv")], symbol="ibm", maps=["Ts=bar_ts", "close=Px"], limit=5
    )
    assert o.symbols == ("AAPL", "MSFT")
    assert o.paths == (Path("a.csv"),)
    assert o.symbol == "IBM"
    assert o.column_map == {"bar_ts": "Ts", "close": "Px"}
    assert o.limit == 5


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"start": "02/01/2024"}, "--start"),
        ({"days": 0}, "--days"),
        ({"maps": ["nofield"]}, "column=field"),
        ({"maps": ["a=b"]}, "names no bar field"),
    ],
)
def test_bad_options_are_one_clear_error(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        _opts(**kw)
