"""What a killed client left running on the Spark Connect server is stopped by the next run.

Over the session's real Connect server (``spark_connect_server``): a client process records its
session as a cleaning run does (``orphans.owned_session``), sends a long job and is SIGKILLed
while the server runs it. The next ``run_clean`` must interrupt that operation and release the
dead client's session before it starts, and leave no record behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from stockpipe.clean.bronze_reader import LakePaths
from stockpipe.clean.job import run_clean
from stockpipe.clean.orphans import RECORD, endpoint, stop_orphans, stop_session, with_session_id
from stockpipe.clean.session import lake_uri
from stockpipe.settings import Settings
from tests.e2e_helpers import REPO_ROOT
from tests.fixtures.spark import CONNECT_LOGS
from tests.helpers_bronze import bar_json, local_path, write_bronze

DEAD_CLIENT = """
import sys
from pyspark.sql.connect.session import SparkSession
from stockpipe.clean.orphans import owned_session
from stockpipe.lake.fs import LakeFS

url, root, state = sys.argv[1:4]
spark = SparkSession.builder.remote(url).create()
if sys.argv[4:] == ["no-reattach"]:
    spark.client.disable_reattachable_execute()
with owned_session(LakeFS(root), state, spark, url):
    print(spark.session_id, flush=True)
    spark.range(0, 10**13, numPartitions=2).selectExpr("sum(hash(id))").collect()
"""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sc://127.0.0.1:15002", "sc://127.0.0.1:15002/;session_id=S"),
        ("sc://h:1/", "sc://h:1/;session_id=S"),
        ("sc://h:1/;token=t;use_ssl=true", "sc://h:1/;token=t;use_ssl=true;session_id=S"),
        ("sc://h:1/;session_id=OLD;token=t", "sc://h:1/;token=t;session_id=S"),
    ],
)
def test_with_session_id_keeps_every_other_parameter(url: str, expected: str) -> None:
    assert with_session_id(url, "S") == expected


def test_the_recorded_endpoint_never_carries_the_token() -> None:
    assert endpoint("sc://db.example:443/;token=secret;use_ssl=true") == "db.example:443"
    assert endpoint("sc://127.0.0.1") == "127.0.0.1:15002"


def _wait_for_job_of(session_id: str, log: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Until the server log shows a task of ``session_id``'s job started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        lines = log.read_text(errors="replace").splitlines()
        if any(session_id in line and "Submitting" in line for line in lines):
            return
        time.sleep(0.1)
    raise AssertionError(f"no job of session {session_id} started on the server")


def _client_with_a_job(
    script: str, url: str, paths: LakePaths, *args: str
) -> tuple[subprocess.Popen[str], str]:
    """A client process running ``script`` on ``url``, once the server runs its job; its session id."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, url, paths.root, paths.state, *args],
        cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ),
    )  # fmt: skip
    assert proc.stdout is not None
    session_id = proc.stdout.readline().strip()
    assert session_id, proc.communicate()
    try:
        _wait_for_job_of(session_id, CONNECT_LOGS[url], proc)
    except BaseException:
        proc.kill()
        stop_session(url, session_id)
        raise
    return proc, session_id


def test_the_next_run_stops_what_a_killed_client_left_running(
    spark_connect: Any, spark_connect_server: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark.sql.connect.client import SparkConnectClient
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")  # pyspark's functions build Connect columns
    url = spark_connect_server
    spark_settings = settings.spark.model_copy(update={"remote": SecretStr(url)})
    remote = settings.model_copy(update={"spark": spark_settings})
    paths = LakePaths(lake_uri(remote), remote.kafka.topic)
    record = local_path(paths.state) / RECORD
    dead, orphan = _client_with_a_job(DEAD_CLIENT, url, paths)
    try:
        assert record.exists()
        dead.send_signal(signal.SIGKILL)
        dead.wait(timeout=30)

        write_bronze(remote.lake_root, [bar_json()])
        active = ConnectSession.getActiveSession()
        now = datetime(2024, 3, 10, tzinfo=UTC)
        result = run_clean(remote, spark=spark_connect, now=now, with_companies=False)
    finally:
        if dead.poll() is None:
            dead.kill()
        stop_session(url, orphan)  # whatever happened, the shared server must not keep the job

    assert result.orphans_stopped == 1
    assert ("Spark operations of a killed run stopped", 1) in result.summary()
    assert result.silver_rows_written == 1
    assert not record.exists()
    assert ConnectSession.getActiveSession() is active  # the process's session is left alone
    released = SparkConnectClient(connection=with_session_id(url, orphan))
    try:
        with pytest.raises(Exception, match="SESSION_CLOSED"):
            released.interrupt_all()
    finally:
        released.close()


STOPPED_CLIENT = (
    """
import signal
from airflow.sdk.exceptions import AirflowTaskTerminated

def on_term(signum, frame):  # what Airflow's task runner does on SIGTERM
    raise AirflowTaskTerminated("Task received SIGTERM signal")

signal.signal(signal.SIGTERM, on_term)
"""
    + DEAD_CLIENT
)


@pytest.mark.parametrize(
    ("sig", "raised", "reattach"),
    [
        (signal.SIGINT, "KeyboardInterrupt", "reattach"),
        (signal.SIGTERM, "AirflowTaskTerminated", "reattach"),
        (signal.SIGTERM, "AirflowTaskTerminated", "no-reattach"),
    ],
    ids=["ctrl-c", "airflow-sigterm", "airflow-sigterm-not-reattachable"],
)
def test_a_client_stopped_from_outside_interrupts_its_own_job(
    spark_connect_server: str, settings: Settings, sig: signal.Signals, raised: str, reattach: str
) -> None:
    """The stopped client deletes its record, so nothing else could stop its job later.

    pyspark stops the operation it waits on by itself for ``KeyboardInterrupt`` and, over a
    reattachable execution (its default), when the exception closes the response iterator.
    A non-reattachable execution stopped by Airflow's ``AirflowTaskTerminated`` (a
    ``BaseException``) runs on unless ``owned_session`` interrupts it.
    """
    from pyspark.sql.connect.client import SparkConnectClient

    url = spark_connect_server
    paths = LakePaths(lake_uri(settings), settings.kafka.topic)
    client, session_id = _client_with_a_job(STOPPED_CLIENT, url, paths, reattach)
    try:
        client.send_signal(sig)
        _, err = client.communicate(timeout=60)
        assert raised in err
        assert not (local_path(paths.state) / RECORD).exists()
        probe = SparkConnectClient(connection=with_session_id(url, session_id))
        try:
            still_running = probe.interrupt_all()  # what would still run of that session
        finally:
            probe.close()
        assert still_running == []
    finally:
        if client.poll() is None:
            client.kill()
        stop_session(url, session_id)


def _record(tmp_path: Path, **doc: Any) -> tuple[Any, str, Path]:
    import json

    from stockpipe.lake.fs import LakeFS

    state = tmp_path / "silver" / "_state"
    state.mkdir(parents=True)
    (state / RECORD).write_text(json.dumps({"version": 1, "endpoint": "127.0.0.1:1", **doc}))
    return LakeFS(tmp_path.as_uri()), f"{tmp_path.as_uri()}/silver/_state", state / RECORD


def test_a_record_of_a_live_process_here_stops_the_run_with_a_clear_error(tmp_path: Path) -> None:
    """A second data folder's run cleaning the lake while another run does: refuse, touch nothing."""
    import psutil

    from stockpipe.errors import StockpipeError

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = psutil.Process(live.pid).create_time()
        fs, state, record = _record(
            tmp_path, session_id="s-live", host=socket.gethostname(), pid=live.pid, process_started=started
        )
        with pytest.raises(StockpipeError, match=f"being cleaned by process {live.pid} on this machine"):
            stop_orphans(fs, state, "sc://127.0.0.1:1", "s-mine")
        assert record.exists()
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize("owner", ["dead", "recycled pid", "other host"])
def test_a_record_of_a_dead_or_unknown_process_is_taken_over(tmp_path: Path, owner: str) -> None:
    """A dead owner (or a pid now used by another process, or another machine's) does not block."""
    import psutil

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid, host, started = gone.pid, socket.gethostname(), 0.0
        if owner != "dead":  # a live process, but not the one that wrote the record
            pid, started = live.pid, psutil.Process(live.pid).create_time()
        if owner == "recycled pid":
            started -= 100  # the recorded owner started earlier: it was another process
        if owner == "other host":
            host = "another-worker"
        fs, state, record = _record(tmp_path, session_id="s-old", host=host, pid=pid, process_started=started)
        # the record's server (127.0.0.1:1) is not this run's: nothing to open, the record is dropped
        assert stop_orphans(fs, state, "sc://127.0.0.1:2", "s-mine") == 0
        assert not record.exists()
    finally:
        live.kill()
        live.wait()
