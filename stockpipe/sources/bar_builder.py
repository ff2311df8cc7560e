"""Lenient number parsing and validated ``Bar`` construction shared by replay and Alpha Vantage."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from stockpipe.contract import Bar

MISSING = frozenset({"", "null", "none", "nan", "n/a", "na", "-", "--"})


def is_missing(value: Any) -> bool:
    """True for ``None``, NaN and the empty/placeholder strings exports use (``null``, ``-``)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in MISSING


DECIMAL_COMMA_RE = re.compile(r"^-?\d{1,3}(\.\d{3})*,\d+$|^-?\d+,\d+$")


def decimal_comma_text(value: str) -> str:
    """A number written with a decimal comma in Python's form: ``189,30`` -> ``189.30``,
    ``1.234,50`` -> ``1234.50``, ``1.254.300`` and ``987.650`` -> whole numbers (the dot groups
    thousands)."""
    return value.strip().replace(".", "").replace(",", ".")


def parse_number(value: Any, what: str, *, decimal_comma: bool = False) -> float:
    """A finite float from a number or text like ``1,234.50`` or ``$189.30`` (with
    ``decimal_comma``: ``1.234,50``)."""
    if isinstance(value, str) and decimal_comma:
        value = decimal_comma_text(value)
    if isinstance(value, str):
        try:
            number = float(value)  # fast path: plain numbers
        except ValueError:
            text = value.strip()
            if text.lower() in MISSING:
                raise ValueError(f"missing {what}") from None
            try:
                number = float(text.replace(",", "").removeprefix("$"))
            except ValueError:
                raise ValueError(f"cannot parse {what} {value!r}") from None
    elif value is None:
        raise ValueError(f"missing {what}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"cannot parse {what} {value!r}")
    if math.isnan(number):
        raise ValueError(f"missing {what}")
    if math.isinf(number):
        raise ValueError(f"cannot parse {what} {value!r}")
    return number


def parse_volume(value: Any, *, decimal_comma: bool = False) -> int:
    """A whole share count from ``1234``, ``1,234,567`` or ``1234.0``."""
    number = parse_number(value, "volume", decimal_comma=decimal_comma)
    if not number.is_integer():
        raise ValueError(f"volume {value!r} is not a whole number")
    return int(number)


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error as a short phrase (``open: ...``)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def make_bar(
    *,
    symbol: str,
    interval: str,
    bar_ts: datetime,
    open: float,
    high: float,
    low: float,
    close: float,
    volume: int,
    source: str,
    produced_at: datetime,
) -> Bar:
    """A validated ``Bar``; contract violations become ``ValueError`` with a short reason."""
    try:
        return Bar(
            symbol=symbol,
            interval=interval,
            bar_ts=bar_ts,
            open=open,
            high=high,
            low=low,
            close=close,
            volume=volume,
            source=source,
            produced_at=produced_at,
        )
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None
