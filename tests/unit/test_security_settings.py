"""Identifier injection is refused through the CLI; the dashboard listens on 127.0.0.1 by default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stockpipe.ingest.broker import free_port
from stockpipe.settings import DashboardSettings, InvalidIdentifierError, quote_identifier

INJECTION = 'x"; drop table y; --'
REPO = Path(__file__).resolve().parents[2]


def _main(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    from stockpipe.cli import main

    monkeypatch.setattr("stockpipe.cli._configure_logging", lambda: None)  # no handlers left behind
    monkeypatch.setattr(sys, "argv", ["stockpipe", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    code = exit_info.value.code
    return int(code) if isinstance(code, int) else 1


@pytest.mark.parametrize(
    ("variable", "setting", "what"),
    [
        ("STOCKPIPE_SNOWFLAKE_DATABASE", "snowflake.database", "not a plain identifier"),
        ("STOCKPIPE_SNOWFLAKE_RAW_SCHEMA", "snowflake.raw_schema", "not a plain identifier"),
        ("STOCKPIPE_SNOWFLAKE_ROLE", "snowflake.role", "not a plain identifier"),
        ("STOCKPIPE_WAREHOUSE_RAW_SCHEMA", "warehouse.raw_schema", "not a plain identifier"),
        ("STOCKPIPE_WAREHOUSE_GOLD_SCHEMA", "warehouse.gold_schema", "not a plain identifier"),
        ("STOCKPIPE_KAFKA_TOPIC", "kafka.topic", "not a valid Kafka topic name"),
    ],
)
def test_injected_identifier_is_refused_by_the_cli(
    variable: str,
    setting: str,
    what: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, INJECTION)
    code = _main(["config"], monkeypatch)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert f"error: setting {setting}:" in err
    assert what in err
    assert "Traceback" not in err


def test_injected_schema_never_reaches_the_warehouse(tmp_path: Path) -> None:
    """The real command, in its own process: refused before any file is created."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env.update(
        STOCKPIPE_DATA_DIR=str(tmp_path / "data"),
        STOCKPIPE_CONFIG=str(tmp_path / "none.toml"),
        STOCKPIPE_WAREHOUSE_RAW_SCHEMA=INJECTION,
        COLUMNS="300",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "stockpipe", "load"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "setting warehouse.raw_schema" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("name", [INJECTION, "a b", "stock-prices", "1abc", "", "x" * 256, "ok;"])
def test_table_and_schema_names_are_validated_before_quoting(name: str, tmp_path: Path) -> None:
    from stockpipe.warehouse.duckdb import DuckDBWarehouse

    with pytest.raises(InvalidIdentifierError):
        quote_identifier(name)
    with DuckDBWarehouse.open(tmp_path / "w.duckdb", "raw", "gold") as wh:
        with pytest.raises(InvalidIdentifierError):
            wh.qualified(name)
        if name:  # an empty schema means "the configured raw schema"
            with pytest.raises(InvalidIdentifierError):
                wh.qualified("stock_prices", name)
        assert wh.qualified("stock_prices") == '"raw"."stock_prices"'


def test_dashboard_listens_on_loopback_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`stockpipe dashboard` with no options: Streamlit is told --server.address 127.0.0.1."""
    from stockpipe.dashboard import server

    assert DashboardSettings().host == "127.0.0.1"
    started: list[list[str]] = []

    class FakeStreamlit:
        def __init__(self, cmd: list[str], **_: Any) -> None:
            started.append(cmd)

        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(server.subprocess, "Popen", FakeStreamlit)
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STOCKPIPE_DASHBOARD_PORT", str(free_port()))
    from stockpipe.cli import main

    monkeypatch.setattr("stockpipe.cli._configure_logging", lambda: None)
    monkeypatch.setattr(sys, "argv", ["stockpipe", "dashboard"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0  # the fake Streamlit exited cleanly
    (cmd,) = started
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert "0.0.0.0" not in cmd
