"""CLI commands for the ingest stage: ``broker start|stop|status``, ``produce``, ``consume``, ``upload``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
from stockpipe.lake.unparsable import quarantine_unparsable
from stockpipe.orchestration.pipeline import resolve_kafka
from stockpipe.settings import get_settings
from stockpipe.sources.base import SourceOptions
from stockpipe.sources.live.feed_runner import run_feed
from stockpipe.sources.live.registry import FEED_SOURCES, build_feed, build_live_source
from stockpipe.sources.live.runtime import run_live
from stockpipe.sources.registry import build_source
from stockpipe.sources.replay import ReplaySource

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


# Replay options, shared by every command that chooses a source (produce, run).
SymbolOpt = Annotated[str | None, typer.Option(help="replay: symbol for files without a symbol column")]
MapOpt = Annotated[
    list[str] | None, typer.Option("--map", help="replay: column=field, e.g. Px=close (repeatable)")
]
DateFormatOpt = Annotated[
    str | None, typer.Option(help="replay: strftime format of the date column, e.g. %Y%m%d")
]
ExchangeOpt = Annotated[
    str, typer.Option(help="replay: exchange_calendars code (XNYS, XLON, XAMS, XSHG...): zone and sessions")
]
LenientOpt = Annotated[
    bool,
    typer.Option(
        "--lenient/--strict",
        help="replay: quarantine unparsable rows (unparsable_row) and send the rest, or abort before sending",
    ),
]


def parse_column_map(pairs: list[str]) -> dict[str, str]:
    """``--map`` pairs (``column=field`` or ``field=column``) as contract field -> file column."""
    return ui.parse_column_map(pairs, FIELD_NAMES, "bar field")


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
    date_format: str | None = None,
    exchange: str = "XNYS",
    lenient: bool = True,
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
        column_map=parse_column_map(maps),
        limit=limit,
        date_format=date_format or None,
        exchange=exchange,
        on_error="skip-and-report" if lenient else "raise",
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
    source: str = typer.Option(
        "simulator", help="simulator, replay, alphavantage; with --follow also finnhub, alpaca"
    ),
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
    symbol: SymbolOpt = None,
    map_: MapOpt = None,
    limit: int | None = typer.Option(None, help="stop after this many bars"),
    date_format: DateFormatOpt = None,
    exchange: ExchangeOpt = "XNYS",
    lenient: LenientOpt = True,
    follow: bool = typer.Option(
        False, "--follow", help="live sources: run until stopped (SIGINT/SIGTERM flush and exit)"
    ),
) -> None:
    """Send bars from a source to the Kafka topic (idempotent producer, acks=all).

    A replay reads every file first: unparsable rows are quarantined (rule unparsable_row, with
    file and line) and counted, or with --strict the command stops before sending anything.
    With --follow a live source (alphavantage, finnhub, alpaca) runs until stopped, sending only
    bars newer than its checkpoint (written after each flush).

    Example:  stockpipe produce --source simulator --symbols AAPL,MSFT --start 2024-01-02 --days 5

    Example:  stockpipe produce --source replay --file ASML.csv --symbol ASML --exchange XAMS

    Example:  STOCKPIPE_ALPHAVANTAGE_API_KEY=... stockpipe produce --source alphavantage --follow
    """

    settings = get_settings()
    opts = source_options(
        symbols=symbols, start=start, end=end, days=days, interval=interval, seed=seed, realtime=realtime,
        speed=speed, files=file, symbol=symbol, maps=map_ or [], limit=limit, date_format=date_format,
        exchange=exchange, lenient=lenient,
    )  # fmt: skip
    if follow:
        _produce_follow(settings, source, opts)
        return
    src = build_source(source, settings, opts)
    unparsable = quarantine_unparsable(settings, src)
    replayed = sorted({b.symbol for b in src.load()}) if isinstance(src, ReplaySource) else []
    warn_unknown_symbols(settings, replayed or list(opts.symbols), opts.exchange)
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
    if isinstance(src, ReplaySource):
        rows += [("rows read", src.rows_read), ("unparsable (quarantined: unparsable_row)", unparsable)]
    if result.first_error:
        rows.append(("first error", result.first_error))
    ui.console.print(ui.summary_table("produce", rows))
    if result.failed:
        total = result.sent + result.failed
        raise StockpipeError(f"{result.failed:,} of {total:,} messages failed delivery: {result.first_error}")


def _produce_follow(settings: Any, source: str, opts: SourceOptions) -> None:
    """``produce --follow``: a live source into the producer until SIGINT/SIGTERM."""
    import signal
    import threading

    if source in FEED_SOURCES:
        _produce_feed(settings, source, opts)
        return
    live = build_live_source(source, settings, opts)
    warn_unknown_symbols(settings, opts.symbols)
    info = ensure_topic(settings)
    for line in live.describe():
        ui.console.print(line)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ui.console.print(f"following {source} -> {info.topic} (Ctrl-C or SIGTERM stops after a flush)")

    def on_batch(batch: Any) -> None:
        if batch.note:
            ui.console.print(f"  {batch.note}")

    result = run_live(settings, live, stop=stop, on_batch=on_batch)
    rows = [
        ("topic", info.topic),
        ("bootstrap", info.bootstrap),
        ("batches", result.batches),
        ("sent", result.sent),
        ("seconds", f"{result.seconds:.2f}"),
    ]
    ui.console.print(ui.summary_table("produce --follow", rows))


def _produce_feed(settings: Any, source: str, opts: SourceOptions) -> None:
    """``produce --source finnhub|alpaca --follow``: the websocket into stock-trades (and bars)."""
    import signal
    import threading

    settings = resolve_kafka(settings)
    feed = build_feed(source, settings, opts.symbols)
    warn_unknown_symbols(settings, feed.symbols)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ui.console.print(
        f"following {source} ({feed.redacted_url}) -> {settings.kafka.trades_topic}; run `stockpipe "
        "aggregate` for the bars (Ctrl-C or SIGTERM stops after a flush)"
    )
    result = run_feed(settings, feed, stop=stop)
    rows = [
        ("trades topic", settings.kafka.trades_topic),
        ("trades", result.trades),
        ("provider bars", result.bars),
        ("reconnects", feed.status.reconnects),
        ("seconds", f"{result.seconds:.1f}"),
    ]
    ui.console.print(ui.summary_table("produce --follow", rows))


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
