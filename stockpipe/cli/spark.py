"""CLI commands for the warm Spark: ``spark start|stop|status`` (the local Spark Connect server)."""

from __future__ import annotations

from typing import Any

import typer

from stockpipe.clean.connect_server import server_status, stop_server
from stockpipe.clean.session import local_server
from stockpipe.cli import ui
from stockpipe.cli.app import app
from stockpipe.settings import Settings, get_settings

spark_app = typer.Typer(
    help=(
        "The local Spark Connect server on 127.0.0.1 that keeps Spark warm between commands."
        "\n\nExample:  stockpipe spark status"
    ),
    no_args_is_help=True,
)
app.add_typer(spark_app, name="spark")


def _rows(status: dict[str, Any]) -> list[tuple[str, Any]]:
    keys = ("mode", "url", "master", "running", "pid", "port", "idle_minutes", "idle_timeout_minutes")
    shown = {**status, "pid": str(status.get("pid")), "port": str(status.get("port"))}
    if isinstance(status.get("running"), bool):
        shown["running"] = "yes" if status["running"] else "no"
    rows = [(k.replace("_", " "), shown[k]) for k in keys if status.get(k) is not None]
    rows += [
        (k.replace("_", " "), status[k]) for k in ("started_at", "log_file", "state_file") if k in status
    ]
    return rows


WARM_UP_ROUNDS = 6


@spark_app.command("start")
def spark_start(
    warm_up_rounds: int = typer.Option(
        WARM_UP_ROUNDS,
        "--warm-up",
        min=0,
        help=(
            "cleans of a synthetic batch run on a server this command starts, fewer once one is "
            "fast: every later command finds Spark's JIT warm (0: none)"
        ),
    ),
) -> None:
    """Start the local Spark Connect server and warm it up (or report the running one); it stops when idle.

    Example:  stockpipe spark start --warm-up 6
    """

    settings = get_settings()
    rounds: list[float] = []
    if settings.spark.remote is not None or settings.spark.mode == "classic":
        ui.console.print("Spark is remote or classic in these settings: stockpipe runs no server of its own.")
    else:
        fresh = not server_status(settings)["running"]
        local_server(settings)
        if fresh and warm_up_rounds:
            rounds = _warm_up(settings, warm_up_rounds)
    rows = _rows(server_status(settings))
    if rounds:
        rows.append(("warm-up rounds (s)", " ".join(f"{s:.1f}" for s in rounds)))
    ui.console.print(ui.summary_table("spark", rows))


def _warm_up(settings: Settings, rounds: int) -> list[float]:
    from stockpipe.clean.session import get_spark
    from stockpipe.clean.warmup import warm_up

    with ui.progress() as bar:
        task = bar.add_task("warming Spark up (cleans of a synthetic batch)", total=rounds, rate="")

        def on_round(done: int, seconds: float) -> None:
            bar.update(task, completed=done, rate=f"last {seconds:.1f} s")

        return warm_up(settings, get_spark(settings), rounds, on_round=on_round)


@spark_app.command("stop")
def spark_stop() -> None:
    """Stop the local Spark Connect server recorded in the state file.

    Example:  stockpipe spark stop
    """

    stopped = stop_server(get_settings())
    ui.console.print("Spark Connect server stopped." if stopped else "No Spark Connect server was running.")


@spark_app.command("status")
def spark_status() -> None:
    """Show which Spark stockpipe uses: remote URL (masked), classic master, or the local server.

    Example:  stockpipe spark status
    """

    ui.console.print(ui.summary_table("spark", _rows(server_status(get_settings()))))
