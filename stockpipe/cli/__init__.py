"""stockpipe command line: a thin layer over the library (one module per stage)."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from stockpipe.cli import (  # noqa: F401  (importing registers the commands)
    clean,
    companies,
    config_cmd,
    dashboard,
    ingest,
    live,
    pipeline,
    quarantine,
    spark,
    warehouse,
)
from stockpipe.cli.app import app
from stockpipe.cli.ui import err_console
from stockpipe.errors import StockpipeError
from stockpipe.settings import get_settings

__all__ = ["app", "main"]


class _NoTraceback(logging.Formatter):
    """Terminal log lines without tracebacks: those go to the log file only."""

    def formatException(self, ei: object) -> str:
        return ""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = ""
        return super().format(record).rstrip()


class _StateLog(logging.FileHandler):
    """The state log file. If writing it fails (a full disk), it goes quiet instead of printing a
    logging traceback over the one-sentence error the command is about to show."""

    broken = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.broken:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        self.broken = True


def _configure_logging() -> None:
    """Warnings (one line) on stderr; everything from INFO, with tracebacks, in the state log."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    terminal = logging.StreamHandler()
    terminal.setLevel(logging.WARNING)
    terminal.setFormatter(_NoTraceback("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(terminal)
    try:
        logs = get_settings().state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        file = _StateLog(logs / "stockpipe.log", encoding="utf-8")
    except (OSError, ValidationError):
        return  # no usable data folder yet: the command itself will say why
    file.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file)
    for noisy in ("py4j", "urllib3", "snowflake", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> None:
    """Console-script entry point: run the app, turn known errors into one sentence."""
    _configure_logging()
    try:
        app()
    except StockpipeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        logging.getLogger("stockpipe").info("failed: %s", exc, exc_info=True)
        sys.exit(1)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err_console.print(f"[bold red]error:[/] setting {where}: {first['msg']}.")
        sys.exit(2)
