"""Unavailable or broken dependencies: a clear error, nothing half-done, and the next run completes.

One data folder, one broker at a fixed loopback port, a chain of ``stockpipe`` runs, each meeting
the next fault (and each also the recovery run of the fault before it):

1. the broker is not there yet (``STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS`` = a closed port);
2. the spool's disk is full (``RLIMIT_FSIZE``: no file over 2 KiB can be written, root or not);
3. the lake's disk is full while bronze is written;
4. silver cannot be written (a regular file where the ``silver`` folder must be);
5. another process holds the DuckDB warehouse's write lock during the load;
6. a second ``stockpipe run`` starts while the first holds the data folder;

then, on the completed folder, corrupted state files (load state, clean ledger, bronze manifest
entry) must stop the step that reads them, naming the file. The module fixture records what each
fault left behind; the tests check it, and the end state against the uninterrupted run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from stockpipe.errors import StepFailedError
from stockpipe.ingest.broker import spawn_broker, terminate
from stockpipe.settings import Settings
from tests.e2e_helpers import DAY, REPO_ROOT, RUN_ARGS, SYMBOLS, gold_snapshot, run_cli, stockpipe_env
from tests.fixtures.faults import (
    all_offsets,
    assert_gold_exactly_once,
    bronze_data_files,
    bronze_offsets,
    committed_offsets,
    duckdb_write_lock,
    error_line,
    free_port,
    hidden_files,
    lake_dir,
    manifest_entries,
    output,
    run_limited,
    silver_keys,
    silver_ledger,
    simulated_bar_keys,
    spool_offsets,
    table_exists,
    topic_ends,
    warehouse_rows,
)
from tests.fixtures.kafka import FAST_GROUP_OPTIONS
from tests.fixtures.warehouse import clean_settings

# the whole chain runs in one module fixture, timed with the first test
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

BARS = 3 * 390
FULL_DISK = 2048  # bytes: lock and manifest files fit, no Parquet batch does


@dataclass
class Phase:
    proc: subprocess.CompletedProcess[str]
    seconds: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class ErrorChain:
    data_dir: Path
    env: dict[str, str]
    address: str
    phases: dict[str, Phase]
    gold: dict[str, list[tuple[Any, ...]]]

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def settings(self) -> Settings:
        return clean_settings(
            data_dir=self.data_dir,
            kafka={"bootstrap_servers": self.address, "partitions": 2},
            spark={"master": "local[2]", "shuffle_partitions": 2},
        )


def _timed(fn: Any, *args: Any) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = fn(*args)
    return proc, time.monotonic() - started


@pytest.fixture(scope="module")
def error_chain(
    tmp_path_factory: pytest.TempPathFactory, warm_spark_env: dict[str, str]
) -> Iterator[ErrorChain]:
    root = tmp_path_factory.mktemp("error-chain")
    data = root / "data"
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = stockpipe_env(
        data,
        STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS=address,
        STOCKPIPE_KAFKA_CLIENT_OPTIONS=json.dumps(FAST_GROUP_OPTIONS),
        **warm_spark_env,
    )
    phases: dict[str, Phase] = {}
    broker = None
    try:
        # 1. nothing listens on the configured address yet
        proc, seconds = _timed(run_cli, RUN_ARGS, env)
        state = data / "state"
        phases["unreachable"] = Phase(
            proc,
            seconds,
            {
                "spool": (data / "spool").exists(),
                "lake": lake_dir(data).exists(),
                "warehouse": (data / "warehouse.duckdb").exists(),
                "state": sorted(p.name for p in state.iterdir()) if state.exists() else [],
            },
        )
        # ... and now it is
        broker = spawn_broker(
            root / "broker", cluster_id=f"stockpipe-errors-{uuid.uuid4().hex[:8]}", port=port
        )

        # 2. the spool cannot take a batch file
        proc = run_limited(RUN_ARGS, env, FULL_DISK)
        ends = topic_ends(address)
        phases["spool_full"] = Phase(
            proc,
            facts={
                "topic": ends,
                "spool": spool_offsets(data),
                "spool_temp": hidden_files(data / "spool"),
                "committed": committed_offsets(address, sorted(ends)),
            },
        )

        # 3. the spool is fine again; bronze cannot take a data file
        consumed = run_cli(["run", "--steps", "Kafka_Consumer"], env)
        assert consumed.returncode == 0, output(consumed)[-3000:]
        proc = run_limited(["run", "--steps", "Upload_to_HDFS"], env, FULL_DISK)
        phases["bronze_full"] = Phase(
            proc,
            facts={
                "topic": topic_ends(address),
                "spool": spool_offsets(data),
                "committed": committed_offsets(address, sorted(ends)),
                "bronze_files": bronze_data_files(data),
                "bronze_temp": hidden_files(lake_dir(data)),
                "manifest": manifest_entries(data),
            },
        )

        # 4. bronze works again (the next run publishes); silver cannot be written
        silver = lake_dir(data) / "silver"
        silver.parent.mkdir(parents=True, exist_ok=True)
        silver.write_text("not a folder\n")
        proc = run_cli(["run", "--steps", "Upload_to_HDFS,Spark_Cleaning_Job"], env)
        phases["silver_blocked"] = Phase(
            proc,
            facts={
                "bronze": bronze_offsets(data),
                "spool": spool_offsets(data),
                "silver_is_file": silver.is_file(),
            },
        )
        silver.unlink()

        # 5. silver works again (the next run cleans); the warehouse is locked by another process
        with duckdb_write_lock(data / "warehouse.duckdb"):
            proc, seconds = _timed(run_cli, ["run", "--steps", "Spark_Cleaning_Job,Upload_to_Snowflake"], env)
        phases["warehouse_locked"] = Phase(
            proc,
            seconds,
            facts={
                "silver": silver_keys(data),
                "raw_table": table_exists(data / "warehouse.duckdb", "raw", "stock_prices"),
                "load_state": (state / "warehouse_load_state.json").exists(),
            },
        )

        # 6. two runs at once on the same folder: the second is refused, the first completes
        first = subprocess.Popen(
            [sys.executable, "-m", "stockpipe", *RUN_ARGS],
            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        owner = state / "pipeline.lock.owner"
        deadline = time.monotonic() + 120
        while not owner.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        second, seconds = _timed(run_cli, RUN_ARGS, env)
        out, err = first.communicate(timeout=900)
        phases["concurrent"] = Phase(second, seconds, facts={"first_pid": first.pid})
        phases["first"] = Phase(subprocess.CompletedProcess(first.args, first.returncode, out, err))
        gold = gold_snapshot(data / "warehouse.duckdb") if first.returncode == 0 else {}
        yield ErrorChain(data, env, address, phases, gold)
    finally:
        if broker is not None:
            terminate(broker.pid)


def _failed(chain: ErrorChain, name: str) -> Phase:
    """The phase's run failed with exit 1 and a one-sentence ``error:`` line, no traceback
    (engine tracebacks go to ``<data>/state/logs/stockpipe.log``)."""
    phase = chain.phases[name]
    assert phase.proc.returncode == 1, f"{name}: exit {phase.proc.returncode}\n{output(phase.proc)[-3000:]}"
    assert error_line(phase.proc), phase.proc.stderr[-3000:]
    assert "Traceback" not in phase.proc.stderr, phase.proc.stderr[-3000:]
    return phase


def test_unreachable_broker_fails_fast_naming_the_address_and_leaves_nothing(error_chain: ErrorChain) -> None:
    phase = _failed(error_chain, "unreachable")
    line = error_line(phase.proc)
    assert "Step Kafka_Producer failed" in line
    assert error_chain.address in line
    assert "Connection refused" in line  # the real reason, not just "transport failure"
    assert phase.seconds < 45  # bounded retries (10 s), never a hang
    assert phase.facts["spool"] is False
    assert phase.facts["lake"] is False
    assert phase.facts["warehouse"] is False
    assert set(phase.facts["state"]) <= {"pipeline.lock", "logs"}  # no broker, offsets or load state


def test_when_the_broker_is_back_the_next_run_proceeds(error_chain: ErrorChain) -> None:
    topic = error_chain.phases["spool_full"].facts["topic"]
    assert sum(topic.values()) == BARS  # the producer step of the next run went through


def test_full_disk_while_writing_the_spool_commits_no_offset(error_chain: ErrorChain) -> None:
    phase = _failed(error_chain, "spool_full")
    line = error_line(phase.proc)
    assert "Step Kafka_Consumer failed: Cannot write the spool file" in line
    assert "File too large" in line
    assert str(error_chain.data_dir / "spool") in line
    assert phase.facts["spool"] == []
    assert phase.facts["spool_temp"] == []  # the half-written temp file was removed
    assert all(offset < 0 for offset in phase.facts["committed"].values()), phase.facts["committed"]


def test_full_disk_while_writing_bronze_leaves_no_partial_file(error_chain: ErrorChain) -> None:
    phase = _failed(error_chain, "bronze_full")
    line = error_line(phase.proc)
    assert "Step Upload_to_HDFS failed: Cannot write file://" in line
    assert "/lake/bronze/stock-prices/ingest_date=" in line
    assert "File too large" in line
    facts = phase.facts
    assert facts["bronze_files"] == []
    assert facts["bronze_temp"] == []
    assert facts["manifest"] == []
    # the spool still holds everything, and that is what the committed offsets stand for
    assert facts["spool"] == all_offsets(facts["topic"])
    assert facts["committed"] == facts["topic"]


def test_unwritable_silver_fails_clearly_and_the_next_run_completes(error_chain: ErrorChain) -> None:
    phase = _failed(error_chain, "silver_blocked")
    line = error_line(phase.proc)
    assert "Step Spark_Cleaning_Job failed:" in line
    # over Connect (the chain's mode) the run's first lake write is the record of its Spark
    # session (silver/_state/spark-session.json, clean.orphans), before any Spark job
    assert "NotADirectoryError" in line
    assert str(lake_dir(error_chain.data_dir) / "silver" / "_state") in line
    log = (error_chain.data_dir / "state" / "logs" / "stockpipe.log").read_text()
    assert "Traceback" in log  # the full trace is kept for later
    assert "NotADirectoryError" in log
    topic = error_chain.phases["spool_full"].facts["topic"]
    assert phase.facts["bronze"] == all_offsets(topic)  # the upload of this run recovered bronze
    assert phase.facts["spool"] == []
    # the next run cleaned every bar exactly once
    silver = error_chain.phases["warehouse_locked"].facts["silver"]
    assert len(silver) == len(set(silver)) == BARS


def test_locked_warehouse_fails_clearly_and_loads_nothing(error_chain: ErrorChain) -> None:
    phase = _failed(error_chain, "warehouse_locked")
    line = error_line(phase.proc)
    assert "Step Upload_to_Snowflake failed:" in line
    assert "is locked by another process" in line
    assert str(error_chain.duckdb_path) in line
    assert phase.facts["raw_table"] is False  # nothing half-loaded
    assert phase.facts["load_state"] is False


def test_a_second_concurrent_run_is_refused_and_the_first_completes(error_chain: ErrorChain) -> None:
    phase = _failed(error_chain, "concurrent")
    line = error_line(phase.proc)
    assert f"is in use by stockpipe run (pid {phase.facts['first_pid']}" in line
    assert "Kafka_Producer" not in phase.proc.stdout  # it did not start a single step
    assert phase.seconds < 20
    first = error_chain.phases["first"].proc
    assert first.returncode == 0, output(first)[-4000:]


def test_after_every_error_gold_equals_the_uninterrupted_run(
    error_chain: ErrorChain, embedded_run: dict[str, Any]
) -> None:
    assert error_chain.gold, "the completing run failed"
    assert error_chain.gold == embedded_run["gold_first"]
    assert_gold_exactly_once(
        error_chain.duckdb_path, simulated_bar_keys(tuple(SYMBOLS.split(",")), date.fromisoformat(DAY))
    )
    topic = topic_ends(error_chain.address)
    assert sum(topic.values()) == 2 * BARS  # the refused run produced nothing
    assert bronze_offsets(error_chain.data_dir) == all_offsets(topic)


# ---- corrupted state files (on the completed folder; each test restores what it broke) ----
def _raw_count(chain: ErrorChain) -> int:
    return int(warehouse_rows(chain.duckdb_path, "select count(*) from raw.stock_prices")[0][0])


@pytest.mark.parametrize(
    "corrupt",
    [lambda text: text[: len(text) // 2], lambda _text: '{"version": 1, "targets": []}', lambda _text: ""],
    ids=["truncated", "wrong-shape", "empty"],
)
def test_corrupt_load_state_stops_the_load_naming_the_file(error_chain: ErrorChain, corrupt: Any) -> None:
    path = error_chain.data_dir / "state" / "warehouse_load_state.json"
    good = path.read_text()
    rows = _raw_count(error_chain)
    history = warehouse_rows(error_chain.duckdb_path, "select count(*) from raw.load_history")
    try:
        path.write_text(corrupt(good))
        proc = run_cli(["run", "--steps", "Upload_to_Snowflake"], error_chain.env)
        assert proc.returncode == 1, output(proc)[-2000:]
        line = error_line(proc)
        assert f"The load state file {path} is corrupt" in line
        assert "Traceback" not in proc.stderr
        assert _raw_count(error_chain) == rows  # nothing reloaded behind our back
        assert warehouse_rows(error_chain.duckdb_path, "select count(*) from raw.load_history") == history
    finally:
        path.write_text(good)
    if len(corrupt(good)) > 0 and corrupt(good) in good:  # once (truncated): the restored file works
        again = run_cli(["run", "--steps", "Upload_to_Snowflake"], error_chain.env)
        assert again.returncode == 0, output(again)[-2000:]
        assert "rows_loaded=0," in again.stdout  # the restored state: nothing changed, nothing to load


def _silver_files(chain: ErrorChain) -> list[tuple[str, int]]:
    """The silver data files (names and sizes; Spark writes new names on every rewrite)."""
    root = lake_dir(chain.data_dir) / "silver"
    files = [p for p in root.rglob("*") if p.is_file() and "_state" not in p.relative_to(root).parts]
    assert files
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in files)


def test_corrupt_clean_ledger_stops_the_clean_naming_the_file(error_chain: ErrorChain, spark: Any) -> None:
    from stockpipe.orchestration.pipeline import run_step

    (ledger,) = silver_ledger(error_chain.data_dir)
    good = ledger.read_bytes()
    before = _silver_files(error_chain)
    try:
        ledger.write_bytes(good[: len(good) // 2])
        with pytest.raises(StepFailedError) as failed:
            run_step("Spark_Cleaning_Job", error_chain.settings)
        message = str(failed.value)
        assert "The clean ledger" in message
        assert ledger.name in message
        assert "corrupt" in message
        assert _silver_files(error_chain) == before  # nothing re-cleaned, nothing skipped
    finally:
        ledger.write_bytes(good)


def test_corrupt_manifest_entry_stops_the_clean_and_status_naming_it(
    error_chain: ErrorChain, spark: Any
) -> None:
    """An entry the clean still has to read (its file not in the ledger) is corrupt: the clean
    stops; `stockpipe status`, which reads every entry, names it too."""
    from stockpipe.orchestration.pipeline import run_step

    entry = manifest_entries(error_chain.data_dir)[0]
    (ledger,) = silver_ledger(error_chain.data_dir)
    good_entry, good_ledger = entry.read_bytes(), ledger.read_bytes()
    before = _silver_files(error_chain)
    doc = json.loads(good_ledger)
    doc["files"].pop(entry.name[: -len(".json")])
    try:
        ledger.write_text(json.dumps(doc))  # valid: this bronze file is now "not cleaned yet"
        entry.write_bytes(good_entry[: len(good_entry) // 3])
        with pytest.raises(StepFailedError) as failed:
            run_step("Spark_Cleaning_Job", error_chain.settings)
        assert "The bronze manifest entry" in str(failed.value)
        assert entry.name in str(failed.value)
        assert _silver_files(error_chain) == before
        status = run_cli(["status"], error_chain.env, timeout=120)
        assert status.returncode == 1
        assert entry.name in error_line(status)
        assert "corrupt" in error_line(status)
    finally:
        entry.write_bytes(good_entry)
        ledger.write_bytes(good_ledger)
