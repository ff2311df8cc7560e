"""stockpipe command line: a thin layer over the library (one module per stage)."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from stockpipe.cli import (  # noqa: F401  (importing registers the commands)
    clean,
    config_cmd,
    dashboard,
    ingest,
    pipeline,
    warehouse,
)
from stockpipe.cli.app import app
from stockpipe.cli.ui import err_console
from stockpipe.errors import StockpipeError

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: run the app, turn known errors into one sentence."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except StockpipeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err_console.print(f"[bold red]error:[/] setting {where}: {first['msg']}.")
        sys.exit(2)
