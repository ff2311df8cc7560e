"""CLI commands for the warehouse stage: ``load``, ``transform``, ``quality`` (thin over the library)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from stockpipe.cli.app import app
from stockpipe.cli.ui import console, grid_table, progress, rate_text, summary_table
from stockpipe.gold.runner import run_docs, run_quality, run_transform
from stockpipe.settings import get_settings
from stockpipe.warehouse.loader import run_load

if TYPE_CHECKING:
    from stockpipe.gold.runner import DbtProgress, DbtResult
    from stockpipe.warehouse.loader import LoadProgress

SelectOpt = Annotated[
    list[str] | None, typer.Option("--select", "-s", help="dbt node selection (repeatable), e.g. marts")
]


@app.command("load")
def load_cmd() -> None:
    """Load the silver partitions that changed since the last load into the warehouse's raw schema.

    Unchanged partitions (same file names and sizes) are skipped; changed ones are replaced in
    one transaction, so re-running or retrying after a crash leaves the same rows.

    Example:  STOCKPIPE_WAREHOUSE_KIND=snowflake stockpipe load
    """

    settings = get_settings()
    with progress() as bar:
        task = bar.add_task("load", total=None, rate="")

        def on_plan(changed: int, skipped: int) -> None:
            bar.update(task, total=changed, description=f"load ({skipped} unchanged)")

        rows = 0

        def on_progress(p: LoadProgress) -> None:
            nonlocal rows
            rows += p.rows
            elapsed = bar.tasks[0].elapsed or 0.0
            bar.update(task, completed=p.done, rate=rate_text(rows, elapsed, "rows"))

        result = run_load(settings, on_progress=on_progress, on_plan=on_plan)
    summary: list[tuple[str, object]] = [
        ("target", result.target),
        ("partitions loaded", result.partitions_loaded),
        ("partitions skipped (unchanged)", result.partitions_skipped),
    ]
    summary += [(f"rows into {table}", n) for table, n in sorted(result.tables.items())]
    summary += [
        ("seconds", f"{result.seconds:.2f}"),
        ("rate", rate_text(result.rows_loaded, result.seconds, "rows")),
    ]
    console.print(summary_table("stockpipe load", summary))
    if result.partitions_loaded == result.partitions_skipped == 0 and not result.history:
        console.print(
            f"[yellow]No silver partitions found under {settings.lake_root}/silver[/] (run stockpipe clean)."
        )


def _run_dbt(title: str, run: Callable[[Callable[[DbtProgress], None]], DbtResult]) -> DbtResult:
    with progress() as bar:
        task = bar.add_task(title, total=None, rate="")

        def on_progress(p: DbtProgress) -> None:
            bar.update(task, completed=p.done, total=p.total, description=f"{title}: {p.name}")

        return run(on_progress)


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0][:120] if lines else ""


def _report(result: DbtResult) -> None:
    counts = result.counts()
    console.print(
        summary_table(
            f"stockpipe {result.invocation}", [*counts.items(), ("seconds", f"{result.seconds:.1f}")]
        )
    )
    if result.note:
        console.print(f"{result.invocation}: {result.note}")
    problems = result.failed + result.warned
    if problems:
        rows = [(n.name, n.resource_type, n.status, _first_line(n.message)) for n in problems]
        console.print(grid_table("problems", ["node", "type", "status", "message"], rows))
    if not result.success:
        console.print(f"[bold red]{result.invocation} failed:[/] {len(result.failed)} node(s) failed.")
        raise typer.Exit(1)


@app.command("transform")
def transform_cmd(
    select: SelectOpt = None,
    full_refresh: Annotated[bool, typer.Option(help="rebuild incremental models from scratch")] = False,
    docs: Annotated[bool, typer.Option(help="also run dbt docs generate (lineage)")] = False,
) -> None:
    """Build the gold models with dbt (dbt build without data tests; fact_stock is incremental).

    Example:  stockpipe transform --select marts --docs
    """

    settings = get_settings()
    result = _run_dbt(
        "transform",
        lambda cb: run_transform(settings, select=select, full_refresh=full_refresh, on_progress=cb),
    )
    _report(result)
    if docs:
        console.print(f"docs generated in {run_docs(settings)}")


@app.command("quality")
def quality_cmd(select: SelectOpt = None) -> None:
    """Run dbt source freshness and every data test; exit 1 when any fails.

    Freshness applies to live bars only (bar_ts within STOCKPIPE_DBT_FRESHNESS_LIVE_WINDOW_HOURS
    of their load): warn/fail after STOCKPIPE_DBT_FRESHNESS_WARN_HOURS / _ERROR_HOURS without a
    new live load. A replayed history or an empty table is not checked; the summary says which.

    Example:  stockpipe quality --select fact_stock
    """

    settings = get_settings()
    result = _run_dbt("quality", lambda cb: run_quality(settings, select=select, on_progress=cb))
    _report(result)
