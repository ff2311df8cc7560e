"""How ``stockpipe dashboard`` starts Streamlit: the command line and the environment (pure).

The page (``app.py``) runs in a Streamlit child process and rebuilds ``Settings`` from the
environment, so every setting it reads is passed explicitly as ``STOCKPIPE_*`` variables
(absolute paths, secrets unwrapped only into the child's environment).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, SecretStr

from stockpipe.daemon import on_signals
from stockpipe.settings import Settings

STOP_GRACE = 10.0  # seconds Streamlit gets to exit after SIGTERM
PASSED_GROUPS = ("warehouse", "duckdb", "snowflake", "dashboard")


def app_path() -> Path:
    """The Streamlit script."""
    return Path(__file__).with_name("app.py")


def streamlit_command(host: str, port: int, python: str = sys.executable) -> list[str]:
    """``python -m streamlit run app.py`` with a headless, quiet, no-file-watcher server."""
    return [
        python,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``STOCKPIPE_*`` variables that rebuild the reporting-relevant part of ``settings``."""
    env = {
        "STOCKPIPE_DATA_DIR": str(settings.data_path),
        "STOCKPIPE_DUCKDB_PATH": str(settings.duckdb_path),
    }
    for group in PASSED_GROUPS:
        model = getattr(settings, group)
        assert isinstance(model, BaseModel)
        for name in type(model).model_fields:
            value = getattr(model, name)
            if value is None or (group == "duckdb" and name == "path"):
                continue
            env[f"STOCKPIPE_{group.upper()}_{name.upper()}"] = _env_value(value)
    return env


def child_env(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (usually ``os.environ``) plus ``settings_env`` on top."""
    env = dict(base)
    env.update(settings_env(settings))
    return env


def run_dashboard(settings: Settings, host: str, port: int, base_env: Mapping[str, str]) -> int:
    """Run Streamlit in the foreground until it exits, Ctrl-C or SIGTERM; return its exit code."""
    proc = subprocess.Popen(streamlit_command(host, port), env=child_env(settings, base_env))
    asked: list[float] = []

    def stop(_signum: int) -> None:  # SIGTERM/SIGINT to us: stop Streamlit, never leave it running
        asked.append(time.monotonic())
        proc.terminate()

    with on_signals(stop):
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if asked and time.monotonic() - asked[0] > STOP_GRACE:
                    proc.kill()
    return 0 if asked else code
