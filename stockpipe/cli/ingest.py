"""CLI commands for the ingest stage: ``broker start|stop|status``, ``produce``, ``consume``, ``upload``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from stockpipe.clean.companies import warn_unknown_symbols
from stockpipe.cli import ui
from stockpipe.cli.app import app
from stockpipe.contract.bar import FIELD_NAMES, INTERVALS
from stockpipe.errors import ConfigError, StockpipeError
from stockpipe.ingest.broker import broker_status, ensure_bootstrap, stop_broker
from stockpipe.ingest.consumer import consume_to_spool
from stockpipe.ingest.producer import produce_bars
from stockpipe.ingest.topics import ensure_topic
from stockpipe.lake.bronze import pending_spool_files, upload_spool
from stockpipe.settings import get_settings
from stockpipe.sources.base import SourceOptions
from stockpipe.sources.registry import build_source

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from stockpipe.sources.base import SourceOptions

broker_app = typer.Typer(
    help="The embedded Kafka-compatible broker (tansu) on 127.0.0.1.\n\nExample:  stockpipe broker status",
    no_args_is_help=True,
)
app.add_typer(broker_app, name="broker")


def _status_rows(status: dict[str, Any]) -> list[tuple[str, Any]]:
    keys = (
        "mode",
        "running",
        "bootstrap",
        "pid",
        "cluster_id",
        "storage",
        "started_at",
        "log_file",
        "state_file",
    )
    rows: list[tuple[str, Any]] = []
    for key in keys:
        value = status.get(key)
        if value is None:
            continue
        rows.append((key, ("yes" if value else "no") if isinstance(value, bool) else str(value)))
    return rows


@broker_app.command("start")
def broker_start() -> None:
    """Start the embedded broker (or report the running one) and create the topic.

    Example:  stockpipe broker start
    """

    settings = get_settings()
    ensure_bootstrap(settings)
    info = ensure_topic(settings)
    rows = _status_rows(broker_status(settings))
    rows += [("topic", info.topic), ("partitions", info.partitions)]
    ui.console.print(ui.summary_table("broker", rows))


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the embedded broker recorded in the state file (an in-memory broker loses its data).

    Example:  stockpipe broker stop
    """

    settings = get_settings()
    if settings.kafka.bootstrap_servers:
        ui.console.print("Bootstrap servers are configured: stockpipe runs no broker of its own.")
        return
    stopped = stop_broker(settings)
    ui.console.print("Embedded broker stopped." if stopped else "No embedded broker was running.")


@broker_app.command("status")
def broker_status_cmd() -> None:
    """Show the broker stockpipe uses: external address, or the embedded broker's state.

    Example:  stockpipe broker status
    """

    ui.console.print(ui.summary_table("broker", _status_rows(broker_status(get_settings()))))


def _column_map(pairs: list[str]) -> dict[str, str]:
    """``--map`` pairs (``column=field`` or ``field=column``) as contract field -> file column."""

    out: dict[str, str] = {}
    for pair in pairs:
        left, sep, right = pair.partition("=")
        if not sep or not left or not right:
            raise ConfigError(f"--map {pair!r} is not in the form column=field.")
        if right in FIELD_NAMES:
            out[right] = left
        elif left in FIELD_NAMES:
            out[left] = right
        else:
            raise ConfigError(f"--map {pair!r} names no bar field ({', '.join(FIELD_NAMES)}).")
    return out


def source_options(
    *,
    symbols: str | None,
    start: str | None,
    end: str | None,
    days: int | None,
    interval: str,
    seed: int,
    realtime: bool,
    speed: float,
    files: list[Path],
    symbol: str | None,
    maps: list[str],
    limit: int | None,
) -> SourceOptions:
    """Build ``SourceOptions`` from the produce options (``--days`` counts calendar days)."""

    first, last = ui.parse_date(start, "--start"), ui.parse_date(end, "--end")
    if days is not None:
        if days < 1:
            raise ConfigError("--days must be at least 1.")
        if first is not None and last is None:
            last = first + timedelta(days=days - 1)
        elif first is None:
            last = last or datetime.now(UTC).date()
            first = last - timedelta(days=days - 1)
    syms = tuple(s.strip().upper() for s in (symbols or "").split(",") if s.strip())
    return SourceOptions(
        symbols=syms,
        start=first,
        end=last,
        interval=interval,
        seed=seed,
        realtime=realtime,
        speed=speed,
        paths=tuple(files),
        symbol=symbol.upper() if symbol else None,
        column_map=_column_map(maps),
        limit=limit,
    )


def _advance(bar: Progress, task: TaskID, started: datetime, unit: str = "msg") -> Any:
    """A progress callback that advances ``task`` and shows the rate since ``started``."""
    done = [0]

    def on_progress(n: int) -> None:
        done[0] += n
        secs = (datetime.now(UTC) - started).total_seconds()
        bar.update(task, advance=n, rate=ui.rate_text(done[0], secs, unit))

    return on_progress


@app.command("produce")
def produce_cmd(
    source: str = typer.Option("simulator", help="simulator, replay or alphavantage"),
    symbols: str | None = typer.Option(None, help="comma-separated symbols (default: the source's list)"),
    start: str | None = typer.Option(None, help="first day, YYYY-MM-DD"),
    end: str | None = typer.Option(None, help="last day, YYYY-MM-DD (inclusive)"),
    days: int | None = typer.Option(
        None, help="number of calendar days (from --start, or ending at --end/today)"
    ),
    interval: str = typer.Option("1min", help=f"bar interval: {', '.join(INTERVALS)}"),
    seed: int = typer.Option(42, help="simulator seed"),
    realtime: bool = typer.Option(False, "--realtime/--backfill", help="pace bars in simulated real time"),
    speed: float = typer.Option(1.0, help="with --realtime: simulated seconds per wall-clock second"),
    file: list[Path] = typer.Option([], "--file", help="replay input file (repeatable)"),
    symbol: str | None = typer.Option(None, help="replay: symbol for files without a symbol column"),
    map_: list[str] = typer.Option([], "--map", help="replay generic CSV: column=field (repeatable)"),
    limit: int | None = typer.Option(None, help="stop after this many bars"),
) -> None:
    """Send bars from a source to the Kafka topic (idempotent producer, acks=all).

    Example:  stockpipe produce --source simulator --symbols AAPL,MSFT --start 2024-01-02 --days 5
    """

    settings = get_settings()
    opts = source_options(
        symbols=symbols, start=start, end=end, days=days, interval=interval, seed=seed, realtime=realtime,
        speed=speed, files=file, symbol=symbol, maps=map_, limit=limit,
    )  # fmt: skip
    src = build_source(source, settings, opts)
    warn_unknown_symbols(settings, opts.symbols)
    info = ensure_topic(settings)
    started = datetime.now(UTC)
    with ui.progress() as bar:
        task = bar.add_task(f"produce {source} -> {info.topic}", total=src.estimated_count(), rate="")
        result = produce_bars(settings, src.bars(), on_progress=_advance(bar, task, started))
    rows = [
        ("topic", info.topic),
        ("bootstrap", info.bootstrap),
        ("sent", result.sent),
        ("failed", result.failed),
        ("seconds", f"{result.seconds:.2f}"),
        ("rate", ui.rate_text(result.sent, result.seconds)),
    ]
    if result.first_error:
        rows.append(("first error", result.first_error))
    ui.console.print(ui.summary_table("produce", rows))
    if result.failed:
        total = result.sent + result.failed
        raise StockpipeError(f"{result.failed:,} of {total:,} messages failed delivery: {result.first_error}")


@app.command("consume")
def consume_cmd(
    max_messages: int | None = typer.Option(None, help="stop after this many messages"),
    timeout: float = typer.Option(10.0, help="batch mode: stop after this many seconds without a message"),
    follow: bool = typer.Option(
        False, "--follow", help="keep running (Ctrl-C to stop), flush on size or time"
    ),
) -> None:
    """Consume the topic into spool files (committed only after each file is durable).

    Example:  stockpipe consume --max-messages 100000
    """

    settings = get_settings()
    info = ensure_topic(settings)
    started = datetime.now(UTC)
    with ui.progress() as bar:
        task = bar.add_task(f"consume {info.topic} -> spool", total=max_messages, rate="")
        result = consume_to_spool(
            settings, max_messages=max_messages, timeout=timeout, follow=follow,
            on_progress=_advance(bar, task, started),
        )  # fmt: skip
    rows: list[tuple[str, Any]] = [
        ("topic", info.topic),
        ("records", result.records),
        ("files", result.files),
        ("seconds", f"{result.seconds:.2f}"),
        ("rate", ui.rate_text(result.records, result.seconds)),
        ("spool", str(settings.spool_dir)),
    ]
    rows += [(f"partition {p} last offset", off) for p, off in sorted(result.last_offsets.items())]
    ui.console.print(ui.summary_table("consume", rows))


@app.command("upload")
def upload_cmd() -> None:
    """Publish spool files to the lake's bronze zone and record them in the bronze manifest.

    Example:  STOCKPIPE_LAKE_ROOT=s3://my-bucket/lake stockpipe upload
    """

    settings = get_settings()
    started = datetime.now(UTC)
    with ui.progress() as bar:
        task = bar.add_task("upload spool -> bronze", total=pending_spool_files(settings), rate="")
        result = upload_spool(settings, on_progress=_advance(bar, task, started, "files"))
    rows = [
        ("files published", result.files),
        ("records", result.records),
        ("already in bronze", result.skipped_existing),
        ("bytes", result.bytes),
        ("seconds", f"{result.seconds:.2f}"),
        ("lake", settings.lake_root),
    ]
    ui.console.print(ui.summary_table("upload", rows))
