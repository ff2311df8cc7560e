"""CLI commands for the quarantine: ``quarantine list`` and ``quarantine replay`` (thin over the library)."""

from __future__ import annotations

from typing import Annotated

import typer

from stockpipe.clean.quarantine import list_quarantine, run_replay
from stockpipe.cli.app import app
from stockpipe.cli.ui import console, grid_table, summary_table
from stockpipe.orchestration.lock import pipeline_lock
from stockpipe.settings import get_settings

quarantine_app = typer.Typer(
    help=(
        "Quarantined records: why they were rejected, and re-admitting them once fixed."
        "\n\nExample:  stockpipe quarantine list --rule unknown_symbol"
    ),
    no_args_is_help=True,
)
app.add_typer(quarantine_app, name="quarantine")

RuleOpt = Annotated[str | None, typer.Option("--rule", "-r", help="only records that failed this rule")]
PAYLOAD_CHARS = 100


@quarantine_app.command("list")
def list_cmd(
    rule: RuleOpt = None,
    limit: Annotated[int, typer.Option(min=0, help="samples shown per rule")] = 5,
) -> None:
    """Counts by rule, and samples with the raw payload and where it came from.

    The origin is topic/partition/offset for records from Kafka, file:line for rows a lenient
    replay could not parse (unparsable_row).

    Example:  stockpipe quarantine list --rule unknown_symbol --limit 3
    """

    listing = list_quarantine(get_settings(), rule=rule, limit=limit)
    if listing.samples:
        rows = [
            (
                s.rule,
                s.origin,
                s.ingest_date,
                ", ".join(s.failed_rules),
                _short(s.raw_payload) + (f"  ({s.detail})" if s.detail else ""),
            )
            for s in listing.samples
        ]
        console.print(grid_table("samples", ["rule", "origin", "ingest date", "failed rules", "raw"], rows))
    summary: list[tuple[str, object]] = [
        ("quarantined records" + (f" ({rule})" if rule else ""), listing.records)
    ]
    summary += [(f"  {r}", n) for r, n in listing.by_rule.items()]
    console.print(summary_table("stockpipe quarantine list", summary))


@quarantine_app.command("replay")
def replay_cmd(rule: RuleOpt = None) -> None:
    """Re-run quarantined records through the current rules; admitted ones move to silver.

    Use it after fixing the cause, e.g. `stockpipe companies add` for unknown_symbol. Admitted
    records reach silver once (then `stockpipe load` and `transform` take them to gold); the rest
    stay quarantined with their current reasons. Safe to interrupt and run again.

    Example:  stockpipe quarantine replay --rule unknown_symbol
    """

    settings = get_settings()
    # one writer of silver at a time: not while `stockpipe run` or `stream` cleans
    with (
        pipeline_lock(settings, what="quarantine replay"),
        console.status("replaying quarantined records through the current rules"),
    ):
        result = run_replay(settings, rule=rule)
    console.print(summary_table("stockpipe quarantine replay", result.summary()))
    if rule and result.considered == 0:
        console.print(f"[yellow]No quarantined Kafka record failed the rule {rule}.[/]")
    if result.admitted:
        console.print(
            f"{result.admitted} record(s) moved to silver: run stockpipe load and stockpipe transform."
        )


def _short(text: str | None) -> str:
    if text is None:
        return "(null)"
    flat = " ".join(text.split())
    return flat if len(flat) <= PAYLOAD_CHARS else flat[: PAYLOAD_CHARS - 1] + "…"
