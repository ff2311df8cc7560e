"""Shared terminal UI: one console, progress bars with rates, summary tables, clean errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from stockpipe.errors import ConfigError

console = Console()
err_console = Console(stderr=True)


def parse_date(value: str | None, option: str) -> date | None:
    """A ``YYYY-MM-DD`` option value (None when not given); a bad one is a one-sentence ``ConfigError``."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date in the form YYYY-MM-DD.") from None


def progress(*, transient: bool = False) -> Progress:
    """A progress display with count, percent, rate and elapsed time."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}", justify="right"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def rate_text(count: float, seconds: float, unit: str = "msg") -> str:
    return f"{count / seconds:,.0f} {unit}/s" if seconds > 0 else ""


def summary_table(title: str, rows: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Table:
    """A two-column summary table (what, value)."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("value", justify="right")
    items = rows.items() if isinstance(rows, Mapping) else rows
    for key, value in items:
        table.add_row(str(key), f"{value:,}" if isinstance(value, int) else str(value))
    return table


def grid_table(title: str, columns: list[str], rows: Iterable[Iterable[Any]]) -> Table:
    table = Table(title=title, header_style="bold")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    return table


def parse_column_map(pairs: list[str], names: Sequence[str], what: str) -> dict[str, str]:
    """``--map`` pairs (``file column=name`` or ``name=file column``) as name -> file column."""
    out: dict[str, str] = {}
    for pair in pairs:
        left, sep, right = pair.partition("=")
        if not sep or not left or not right:
            raise ConfigError(f"--map {pair!r} is not in the form column=field.")
        if right in names:
            out[right] = left
        elif left in names:
            out[left] = right
        else:
            raise ConfigError(f"--map {pair!r} names no {what} ({', '.join(names)}).")
    return out
