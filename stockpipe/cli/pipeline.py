"""``stockpipe run`` (the seven seed steps end to end) and ``stockpipe status``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import TaskID

from stockpipe.cli.app import app
from stockpipe.cli.ingest import (
    DateFormatOpt,
    ExchangeOpt,
    LenientOpt,
    MapOpt,
    SymbolOpt,
    parse_column_map,
    source_options,
)
from stockpipe.cli.ui import console, grid_table, parse_date, progress, rate_text, summary_table
from stockpipe.errors import ConfigError, StepFailedError
from stockpipe.ingest.broker import broker_status
from stockpipe.ingest.lag import consumer_lag
from stockpipe.orchestration.pipeline import (
    BUILD_MODELS,
    QUALITY_MODELS_TEST,
    STEP_NAMES,
    RunOptions,
    StepResult,
    run_pipeline,
)
from stockpipe.orchestration.status import layer_counts, read_status, write_status
from stockpipe.orchestration.stream import StreamOptions, StreamRunner
from stockpipe.settings import get_settings
from stockpipe.sources.live.registry import FEED_SOURCES, LIVE_SOURCES
from stockpipe.sources.live.status import STATUS_COLUMNS, read_live_statuses, status_rows


class RichReporter:
    """Renders each step as a progress row with its count, rate and elapsed time."""

    def __init__(self) -> None:
        self.progress = progress()
        self.tasks: dict[str, TaskID] = {}
        self.started: dict[str, float] = {}
        self.done: dict[str, int] = {}

    def start(self, step: str, total: int | None) -> None:
        self.started[step] = time.perf_counter()
        self.done[step] = 0
        self.tasks[step] = self.progress.add_task(step, total=total, rate="")

    def advance(self, step: str, n: int) -> None:
        self.done[step] += n
        seconds = time.perf_counter() - self.started[step]
        self.progress.update(self.tasks[step], advance=n, rate=rate_text(self.done[step], seconds, "rows"))

    def update(self, step: str, done: int, total: int | None, note: str = "") -> None:
        desc = f"{step} [dim]{note}[/]" if note else step
        self.progress.update(self.tasks[step], completed=done, total=total, description=desc)

    def finish(self, step: str, result: StepResult) -> None:
        task = self.tasks.get(step)
        if task is None:
            return
        counts = ", ".join(f"{k}={v:,}" for k, v in result.counts.items())
        total = self.progress.tasks[self.tasks[step]].total
        self.progress.update(
            task, description=f"{step} [dim]{counts}[/]", total=total or 1, completed=total or 1
        )


def _layer_rows(settings: Any, raw_label: str) -> list[tuple[str, Any]]:
    """What each layer holds now, with the quarantine by rule."""
    layers = layer_counts(settings)
    rows: list[tuple[str, Any]] = [
        ("bronze records", layers.bronze_records),
        ("silver rows", layers.silver_rows),
        ("quarantined records", layers.quarantine_rows),
        (raw_label, layers.warehouse_raw_rows),
        ("gold fact_stock rows", layers.gold_fact_rows),
    ]
    rows += [(f"  quarantined: {rule}", n) for rule, n in sorted(layers.quarantine_by_rule.items())]
    return rows


def _summary(results: list[StepResult], settings: Any) -> None:
    console.print(
        grid_table(
            "Steps",
            ["step", "seconds", "counts"],
            [
                (r.step, f"{r.seconds:.1f}", ", ".join(f"{k}={v:,}" for k, v in r.counts.items()))
                for r in results
            ],
        )
    )
    for r in results:
        if r.details.get("note"):
            console.print(f"{r.step}: {r.details['note']}")
    rows = _layer_rows(settings, "warehouse raw.stock_prices rows")
    by_step = {r.step: r for r in results}
    for step in (BUILD_MODELS, QUALITY_MODELS_TEST):
        if step in by_step:
            rows.append((f"dbt {step}: passed", by_step[step].counts.get("passed", 0)))
    where = (
        str(settings.duckdb_path)
        if settings.warehouse.kind == "duckdb"
        else f"snowflake {settings.snowflake.database}"
    )
    rows += [
        ("warehouse", where),
        ("lake", settings.lake_root),
        (
            "dashboard",
            f"stockpipe dashboard -> http://{settings.dashboard.host}:{settings.dashboard.port}",
        ),
    ]
    console.print(summary_table("stockpipe run", rows))


RUN_HELP = f"""Run the whole pipeline: the seed's seven steps, in order, on the configured engines.

{" >> ".join(STEP_NAMES)}. With no Kafka configured it starts the embedded broker. \
Exits non-zero at the first failed step, naming it.

Example:  stockpipe run --symbols AAPL,MSFT,NVDA --start 2024-03-04 --end 2024-03-08

Example:  stockpipe run --source replay --file prices.csv --symbol SHEL --exchange XLON
"""


@app.command("run", help=RUN_HELP)
def run_cmd(
    source: Annotated[str, typer.Option(help="simulator | replay | alphavantage")] = "simulator",
    symbols: Annotated[str | None, typer.Option(help="comma-separated symbols")] = None,
    n_symbols: Annotated[int, typer.Option(help="simulator: how many default symbols")] = 20,
    start: Annotated[str | None, typer.Option(help="first trading day YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="last trading day YYYY-MM-DD")] = None,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 42,
    file: Annotated[list[str] | None, typer.Option(help="replay: input file (repeatable)")] = None,
    steps: Annotated[str | None, typer.Option(help="comma-separated subset of the seven step ids")] = None,
    interval: Annotated[
        str, typer.Option(help="bar interval (replay: when the file does not tell)")
    ] = "1min",
    symbol: SymbolOpt = None,
    map_: MapOpt = None,
    date_format: DateFormatOpt = None,
    exchange: ExchangeOpt = "XNYS",
    lenient: LenientOpt = True,
) -> None:
    """Run the whole pipeline (help text: ``RUN_HELP``, built from the step ids)."""
    settings = get_settings()
    options = RunOptions(
        source=source,
        symbols=tuple(s.strip().upper() for s in symbols.split(",")) if symbols else (),
        n_symbols=n_symbols,
        start=parse_date(start, "--start"),
        end=parse_date(end, "--end"),
        seed=seed,
        paths=tuple(file or ()),
        interval=interval,
        symbol=symbol.strip().upper() if symbol else None,
        column_map=parse_column_map(map_ or []),
        date_format=date_format or None,
        exchange=exchange,
        lenient=lenient,
    )
    chosen = STEP_NAMES
    if steps:
        chosen = tuple(s.strip() for s in steps.split(","))
        unknown = sorted(set(chosen) - set(STEP_NAMES))
        if unknown:
            raise typer.BadParameter(f"unknown step(s) {unknown}; the steps are {list(STEP_NAMES)}")
    reporter = RichReporter()
    started = time.perf_counter()
    try:
        with reporter.progress:
            results = run_pipeline(settings, options, reporter, steps=chosen)
    except StepFailedError:
        console.print(f"[red]stopped after {time.perf_counter() - started:.1f}s[/]")
        raise
    _summary(results, settings)

    write_status(settings, "run", {"steps": {r.step: r.counts for r in results}})
    console.print(f"[green]pipeline finished in {time.perf_counter() - started:.1f}s[/]")


@app.command("status")
def status_cmd() -> None:
    """Show rows per layer, quarantine by rule, consumer lag, the last run and stream cycle.

    Example:  stockpipe status
    """

    settings = get_settings()
    rows = _layer_rows(settings, "warehouse raw rows")
    run = read_status(settings, "run")
    rows.append(("last successful run", run["finished_at"] if run else "never"))
    stream = read_status(settings, "stream")
    if stream:
        fresh = stream.get("freshness", {})
        rows.append(("last stream cycle", f"#{stream.get('cycle')} at {stream.get('finished_at')}"))
        rows.append(
            (
                "  freshness p50 / p95 / max (s)",
                f"{fresh.get('p50')} / {fresh.get('p95')} / {fresh.get('max')}",
            )
        )
    console.print(summary_table("stockpipe status", rows))
    _print_live(settings)
    _print_lag(settings)


def _print_live(settings: Any) -> None:
    """One row per live process (polling source, websocket feed, aggregator) from its status file."""
    statuses = read_live_statuses(settings)
    if statuses:
        console.print(grid_table("live sources", list(STATUS_COLUMNS), status_rows(statuses)))


def _print_lag(settings: Any) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    if not bootstrap:
        info = broker_status(settings)
        if not info.get("running"):
            console.print("consumer lag: the embedded broker is not running")
            return
        bootstrap = info["bootstrap"]
    lags = consumer_lag(settings, bootstrap, timeout=5.0)
    console.print(
        grid_table(
            f"consumer lag ({settings.kafka.group_id} on {settings.kafka.topic})",
            ["partition", "committed", "end offset", "lag"],
            [
                (
                    lag.partition,
                    lag.committed if lag.committed is not None else "-",
                    lag.high_watermark,
                    lag.lag if lag.lag is not None else "unknown (broker reports no end offset)",
                )
                for lag in lags
            ],
        )
    )


def _stream_view(state: Any, started: float, lag: int | None) -> Any:
    from rich.table import Table

    table = Table(title="stockpipe stream", show_header=True, header_style="bold")
    for col in ("cycle", "seconds", "bronze", "loaded", "fresh p50", "fresh p95", "fresh max"):
        table.add_column(col, justify="right")
    for c in state.cycles[-8:]:
        f = c.freshness
        table.add_row(
            str(c.number),
            f"{c.seconds:.1f}",
            f"{c.bronze_records:,}",
            f"{c.rows_loaded:,}",
            *(f"{v:.1f}s" if v is not None else "-" for v in (f.p50, f.p95, f.max)),
        )
    elapsed = max(time.monotonic() - started, 1e-9)
    table.caption = (
        f"produced {state.produced:,} ({state.produced / elapsed:,.0f}/s) · "
        f"consumed {state.consumed:,} ({state.consumed / elapsed:,.0f}/s) · "
        f"lag {'-' if lag is None else f'{lag:,}'} · elapsed {elapsed:,.0f}s · Ctrl-C stops cleanly"
    )
    return table


@app.command("stream")
def stream_cmd(
    symbols: Annotated[str | None, typer.Option(help="comma-separated symbols")] = None,
    start: Annotated[str | None, typer.Option(help="first simulated trading day")] = None,
    end: Annotated[str | None, typer.Option(help="last simulated trading day")] = None,
    speed: Annotated[float | None, typer.Option(help="simulated seconds per wall second")] = None,
    cycle: Annotated[float | None, typer.Option(help="seconds between micro-batches")] = None,
    duration: Annotated[float | None, typer.Option(help="stop by itself after N seconds")] = None,
    drain: Annotated[bool, typer.Option(help="stop when the source is exhausted")] = False,
    produce: Annotated[bool, typer.Option(help="run the producer too")] = True,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 42,
    source: Annotated[
        str,
        typer.Option(help="simulator, replay (files, sent at once), or live: alphavantage, finnhub, alpaca"),
    ] = "simulator",
    file: Annotated[list[Path] | None, typer.Option(help="replay: input file (repeatable)")] = None,
    interval: Annotated[str, typer.Option(help="replay: bar interval when the file does not tell")] = "1min",
    symbol: SymbolOpt = None,
    map_: MapOpt = None,
    date_format: DateFormatOpt = None,
    exchange: ExchangeOpt = "XNYS",
    lenient: LenientOpt = True,
) -> None:
    """Run continuously: real-time producer, following consumer, a micro-batch cycle every N s.

    --source finnhub|alpaca streams real trades from the provider's websocket into stock-trades and
    aggregates them into bars (Alpaca's own bars go straight to the bars topic); --source
    alphavantage polls under the request quotas; the default simulator streams simulated prices.

    SIGINT/SIGTERM finish the current cycle, flush, commit and exit cleanly. Freshness
    (produced_at -> visible in gold.fact_stock) is logged per cycle and kept in raw.freshness.

    Example:  stockpipe stream --symbols AAPL,MSFT --speed 120 --cycle 5 --duration 300

    Example:  stockpipe stream --source replay --file history.csv --symbol SAP --exchange XETR --drain

    Example:  STOCKPIPE_FINNHUB_API_KEY=... stockpipe stream --source finnhub --symbols AAPL,MSFT
    """
    import signal

    from rich.live import Live

    settings = get_settings()
    replay = None
    if source == "replay":
        replay = source_options(
            symbols=symbols, start=None, end=None, days=None, interval=interval, seed=seed, realtime=False,
            speed=1.0, files=list(file or []), symbol=symbol, maps=map_ or [], limit=None,
            date_format=date_format, exchange=exchange, lenient=lenient,
        )  # fmt: skip
    options = StreamOptions(
        replay=replay,
        symbols=tuple(s.strip().upper() for s in symbols.split(",")) if symbols else (),
        start=parse_date(start, "--start"),
        end=parse_date(end, "--end"),
        seed=seed,
        speed=speed or settings.stream.speed,
        cycle_seconds=cycle or settings.stream.cycle_seconds,
        duration=duration,
        drain=drain,
        produce=produce,
        source=source,
    )
    if source not in ("simulator", "replay") and source not in {*LIVE_SOURCES, *FEED_SOURCES}:
        choices = ", ".join(sorted({*LIVE_SOURCES, *FEED_SOURCES}))
        raise ConfigError(f"Unknown stream source {source!r}: choose simulator, replay or {choices}.")
    runner = StreamRunner(settings, options)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.request_stop())
    started = time.monotonic()
    with Live(_stream_view(runner.state, started, None), console=console, refresh_per_second=2) as live:

        def on_cycle(_stats: Any, state: Any) -> None:
            live.update(_stream_view(state, started, max(0, state.produced - state.consumed)))

        state = runner.run(on_cycle)
    fresh = [c.freshness.p95 for c in state.cycles if c.freshness.p95 is not None]
    console.print(
        summary_table(
            "stockpipe stream",
            [
                ("bars produced", state.produced),
                ("records consumed", state.consumed),
                ("cycles", len(state.cycles)),
                *([("unparsable (quarantined: unparsable_row)", runner.unparsable)] if replay else []),
                ("worst cycle freshness p95", f"{max(fresh):.1f}s" if fresh else "-"),
            ],
        )
    )
