"""``stockpipe dashboard`` starts a real Streamlit server on the requested loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stockpipe.cli import app
from stockpipe.errors import StockpipeError
from tests.helpers_gold import GoldSpec, build_gold_warehouse

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dashboard_command_serves_on_the_given_port_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "data"
    build_gold_warehouse(data / "warehouse.duckdb", GoldSpec(days=2, bars_per_day=10))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env.update({"STOCKPIPE_DATA_DIR": str(data), "STOCKPIPE_CONFIG": str(tmp_path / "none.toml")})
    env["COLUMNS"] = "250"  # one line per summary row
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stockpipe.cli import main; main()", "dashboard", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while status != 200:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "dashboard did not answer in 60 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    status = r.status
            except OSError:
                time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output
    assert str(data / "warehouse.duckdb") in output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_dashboard_command_alone_stops_its_streamlit_server(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Only `stockpipe dashboard` gets the signal (as from a process manager), not its group."""
    import psutil

    data = tmp_path / "data"
    build_gold_warehouse(data / "warehouse.duckdb", GoldSpec(days=2, bars_per_day=10))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKPIPE_")}
    env.update({"STOCKPIPE_DATA_DIR": str(data), "STOCKPIPE_CONFIG": str(tmp_path / "none.toml")})
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stockpipe.cli import main; main()", "dashboard", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        children: list[psutil.Process] = []
        while not children:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "streamlit did not start in 60 s"
            children = psutil.Process(proc.pid).children(recursive=True)
            time.sleep(0.2)
        proc.send_signal(sig)
        proc.communicate(timeout=30)
        _gone, alive = psutil.wait_procs(children, timeout=15)
        assert alive == [], f"streamlit left running after {sig.name}: {alive}"
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_dashboard_command_refuses_a_busy_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["dashboard", "--port", str(port)])
    assert isinstance(result.exception, StockpipeError)
    assert f"Port {port} on 127.0.0.1 is not available" in str(result.exception)
