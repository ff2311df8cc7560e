"""CLI commands for the warm Spark: ``spark start|stop|status`` (the local Spark Connect server)."""

from __future__ import annotations

from typing import Any

import typer

from stockpipe.clean.connect_server import server_status, stop_server
from stockpipe.clean.session import local_server
from stockpipe.cli import ui
from stockpipe.cli.app import app
from stockpipe.settings import get_settings

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


@spark_app.command("start")
def spark_start() -> None:
    """Start the local Spark Connect server (or report the running one); it stops itself when idle.

    Example:  stockpipe spark start
    """

    settings = get_settings()
    if settings.spark.remote is not None or settings.spark.mode == "classic":
        ui.console.print("Spark is remote or classic in these settings: stockpipe runs no server of its own.")
    else:
        local_server(settings)
    ui.console.print(ui.summary_table("spark", _rows(server_status(settings))))


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
