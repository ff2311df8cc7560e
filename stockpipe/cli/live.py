"""CLI for live data: ``aggregate`` (the trades -> bars service)."""

from __future__ import annotations

import signal
import threading

import typer

from stockpipe.cli import ui
from stockpipe.cli.app import app
from stockpipe.orchestration.pipeline import resolve_kafka
from stockpipe.settings import get_settings
from stockpipe.sources.live.aggregator_service import AggregatorService, dead_letter_path


@app.command("aggregate")
def aggregate_cmd(
    idle_exit: float | None = typer.Option(
        None, help="stop by itself after this many seconds without a trade (default: run until stopped)"
    ),
) -> None:
    """Aggregate the trades topic into bars on the bars topic (a consumer group; kill -9 safe).

    Bars are emitted when the watermark passes a window's end (or after the quiet timeout);
    late trades go to <data>/dead_letters/. SIGINT/SIGTERM emit the open windows, flush and exit.

    Example:  stockpipe aggregate
    """

    settings = resolve_kafka(get_settings())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service = AggregatorService(settings, stop=stop)
    ui.console.print(
        f"aggregating {settings.kafka.trades_topic} -> {settings.kafka.topic} "
        f"({service.config.interval} bars; Ctrl-C or SIGTERM stops after a flush)"
    )
    result = service.run(idle_exit=idle_exit)
    rows = [
        ("trades", result.trades),
        ("bars emitted", result.bars),
        ("late trades", result.late_trades),
        ("dead letters", result.dead_letters),
        ("dead-letter file", str(dead_letter_path(settings))),
        ("seconds", f"{result.seconds:.1f}"),
    ]
    ui.console.print(ui.summary_table("aggregate", rows))
