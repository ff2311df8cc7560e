"""The cleaning job over stockpipe's local Spark Connect server, through the CLI.

One chain on a fresh data folder (``STOCKPIPE_SPARK_MODE=connect``, a free port):

1. ``spark start`` / ``spark status``: the server runs, bound to 127.0.0.1, recorded in the state file;
2. the ingest steps, then the clean step, and the server is SIGKILLed while the job writes its
   staging: the step fails with one clear sentence, silver and the ledger are untouched;
3. the next run starts a new server on demand and completes;
4. ``spark stop`` + ``spark start`` (a restart), then another run: nothing lost or duplicated;
5. gold equals the uninterrupted (classic) run's gold (``embedded_run``).

Plus: SIGTERM to ``stockpipe spark start`` while the server boots leaves no server behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.e2e_helpers import (
    REPO_ROOT,
    RUN_ARGS,
    gold_snapshot,
    run_cli,
    stockpipe_env,
    stop_embedded_broker,
)
from tests.fixtures.spark import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2400)]
INGEST = "Kafka_Producer,Kafka_Consumer,Upload_to_HDFS"
AFTER_CLEAN = "Spark_Cleaning_Job,Upload_to_Snowflake,build_Models,quality_Models_test"


def connect_env(data_dir: Path) -> dict[str, str]:
    return stockpipe_env(
        data_dir, STOCKPIPE_SPARK_MODE="connect", STOCKPIPE_SPARK_CONNECT_PORT=str(free_port())
    )


def server_state(data_dir: Path) -> dict[str, Any]:
    return dict(json.loads((data_dir / "state" / "spark-connect.json").read_text()))


SERVER_MARKS = ("SparkConnectPlugin", "stockpipe.clean.connect_server", "connect_host")
"""In the command lines of the server's JVM, its host program and its supervisor."""


def servers_of(data_dir: Path) -> list[psutil.Process]:
    """Live Spark Connect server JVMs and supervisors started for ``data_dir``."""
    out = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            ours = str(data_dir) in cmd or str(data_dir) in json.dumps(proc.info.get("environ") or {})
            if ours and any(mark in cmd for mark in SERVER_MARKS):
                out.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def silver_files(data_dir: Path) -> list[str]:
    root = data_dir / "lake" / "silver"
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "_staging" not in p.parts
    )


def silver_count(data_dir: Path) -> int:
    import pyarrow.dataset as ds

    return int(ds.dataset(data_dir / "lake" / "silver" / "stock_prices", partitioning="hive").count_rows())


def ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def connect_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("connect-chain")
    env = connect_env(data_dir)
    out: dict[str, Any] = {"data_dir": data_dir, "env": env}
    try:
        out["start"] = run_cli(["spark", "start", "--warm-up", "1"], env, timeout=600)
        out["status"] = run_cli(["spark", "status"], env)
        out["first_state"] = server_state(data_dir)
        ok(run_cli([*RUN_ARGS, "--steps", INGEST], env))
        before = silver_files(data_dir)
        job = subprocess.Popen(
            [sys.executable, "-m", "stockpipe", *RUN_ARGS, "--steps", "Spark_Cleaning_Job"],
            env=env, cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        staging = data_dir / "lake" / "silver" / "_staging"
        deadline = time.monotonic() + 600
        while not any(staging.rglob("*.parquet")) and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        out["killed_while_running"] = job.poll() is None
        os.killpg(out["first_state"]["pid"], signal.SIGKILL)  # the supervisor's group: server JVM too
        stdout, stderr = job.communicate(timeout=600)
        out["killed"] = subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr)
        out["silver_before"], out["silver_after_kill"] = before, silver_files(data_dir)
        out["ledger_after_kill"] = sorted((data_dir / "lake" / "silver" / "_state").glob("ledger-*.json"))
        out["rerun"] = run_cli([*RUN_ARGS, "--steps", AFTER_CLEAN], env)
        out["second_state"] = server_state(data_dir)
        out["rows_after_rerun"] = silver_count(data_dir)
        out["gold_after_rerun"] = gold_snapshot(data_dir / "warehouse.duckdb")
        ok(run_cli(["spark", "stop"], env, timeout=120))
        ok(run_cli(["spark", "start", "--warm-up", "0"], env, timeout=600))
        out["after_restart"] = run_cli([*RUN_ARGS, "--steps", AFTER_CLEAN], env)
        out["rows_after_restart"] = silver_count(data_dir)
        out["gold_after_restart"] = gold_snapshot(data_dir / "warehouse.duckdb")
        out["stop"] = run_cli(["spark", "stop"], env, timeout=120)
        out["left"] = servers_of(data_dir)
        yield out
    finally:
        run_cli(["spark", "stop"], env, timeout=120)
        stop_embedded_broker(env)


def test_spark_start_and_status_show_the_local_server(connect_chain: dict[str, Any]) -> None:
    ok(connect_chain["start"])
    status = connect_chain["status"].stdout
    assert "connect (local)" in status
    assert f"sc://127.0.0.1:{connect_chain['first_state']['port']}" in status
    assert "yes" in status
    # one warm-up clean ran on the new server, through a client session of this command
    assert "warm-up rounds" in connect_chain["start"].stdout
    assert not (connect_chain["data_dir"] / "state" / "spark-warmup").exists()  # scratch removed


def test_killing_the_server_mid_job_is_one_clear_error_and_no_partial_silver(
    connect_chain: dict[str, Any],
) -> None:
    killed = connect_chain["killed"]
    assert connect_chain["killed_while_running"], "the job finished before the server could be killed"
    assert killed.returncode != 0
    assert "Traceback" not in killed.stderr + killed.stdout
    errors = [line for line in killed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, killed.stderr
    assert "Spark_Cleaning_Job" in errors[0]
    assert connect_chain["silver_after_kill"] == connect_chain["silver_before"]
    assert connect_chain["ledger_after_kill"] == []


def test_the_next_run_starts_a_new_server_and_completes(connect_chain: dict[str, Any]) -> None:
    ok(connect_chain["rerun"])
    assert connect_chain["second_state"]["pid"] != connect_chain["first_state"]["pid"]


def test_gold_equals_the_uninterrupted_run(
    connect_chain: dict[str, Any], embedded_run: dict[str, Any]
) -> None:
    assert connect_chain["gold_after_rerun"] == embedded_run["gold_first"]


def test_a_server_restart_between_runs_loses_and_duplicates_nothing(connect_chain: dict[str, Any]) -> None:
    ok(connect_chain["after_restart"])
    assert connect_chain["rows_after_restart"] == connect_chain["rows_after_rerun"] > 0
    assert connect_chain["gold_after_restart"] == connect_chain["gold_after_rerun"]


def test_spark_stop_leaves_no_server_process(connect_chain: dict[str, Any]) -> None:
    ok(connect_chain["stop"])
    assert "stopped" in connect_chain["stop"].stdout
    assert connect_chain["left"] == []


def test_sigterm_to_spark_start_stops_the_server_it_was_starting(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = connect_env(data_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "stockpipe", "spark", "start"],
        env=env, cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log = data_dir / "state" / "spark-connect.log"
    deadline = time.monotonic() + 120
    while not servers_of(data_dir) and time.monotonic() < deadline:  # the supervisor is up
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert servers_of(data_dir), "no server process was started"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    deadline = time.monotonic() + 30
    while servers_of(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert servers_of(data_dir) == [], log.read_text()[-2000:] if log.exists() else ""
    assert not (data_dir / "state" / "spark-connect.json").exists()
