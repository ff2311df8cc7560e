"""CLI commands for the clean stage: ``stockpipe clean`` (bronze → silver with Spark)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from stockpipe.clean.job import run_clean
from stockpipe.cli import ui
from stockpipe.cli.app import app
from stockpipe.errors import StockpipeError
from stockpipe.orchestration.lock import pipeline_lock
from stockpipe.orchestration.pipeline import one_line
from stockpipe.settings import get_settings

_PHASES: dict[str, str] = {
    "recover": "finish interrupted run",
    "manifest": "read bronze manifest",
    "clean": "parse + validate records",
    "write": "write staging",
    "swap": "swap partitions in",
    "companies": "companies",
}


@app.command("clean")
def clean_cmd(
    master: Annotated[
        str | None,
        typer.Option(help="Spark master for an in-process (classic) session, e.g. spark://host:7077"),
    ] = None,
    companies_csv: Annotated[
        Path | None,
        typer.Option(help="companies CSV to convert and check symbols against (default: settings/packaged)"),
    ] = None,
) -> None:
    """Clean new bronze files into silver with Spark: typed, validated, deduplicated, quarantined.

    Only bronze files not cleaned before are read; re-running changes nothing. Bad records go to
    silver/quarantine with the names of the rules they failed.

    Example:  STOCKPIPE_SPARK_MASTER=spark://127.0.0.1:7077 stockpipe clean
    """

    settings = get_settings()
    if master:  # a master names a classic session (the Connect server has its own); a copy, not a mutation
        spark = settings.spark.model_copy(update={"master": master, "mode": "classic"})
        settings = settings.model_copy(update={"spark": spark})
    started: dict[str, float] = {}
    # one writer of silver at a time: not while `stockpipe run`, `stream` or a replay cleans
    with pipeline_lock(settings, what="clean"), ui.progress() as bar:
        tasks = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                started[phase] = time.perf_counter()
                tasks[phase] = bar.add_task(_PHASES.get(phase, phase), total=max(total, 1), rate="")
            unit = "rec" if phase == "clean" else "items"
            rate = ui.rate_text(done, time.perf_counter() - started[phase], unit) if phase == "clean" else ""
            bar.update(tasks[phase], completed=done, total=max(total, 1), rate=rate)

        try:
            result = run_clean(settings, on_progress=on_progress, companies_csv=companies_csv)
        except StockpipeError:
            raise
        except Exception as exc:  # Spark (classic or Connect) errors: one sentence, trace in the log
            logging.getLogger(__name__).exception("clean failed")
            raise StockpipeError(f"The Spark cleaning job failed: {one_line(exc)}") from exc
    ui.console.print(ui.summary_table("clean", result.summary()))
