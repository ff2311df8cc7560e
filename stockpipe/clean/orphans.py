"""Stopping what a killed client left running on a Spark Connect server.

A Spark Connect server keeps running an operation whose client process died: the server only
notices when it has results to send. Measured on the local server, a job whose client was
SIGKILLed kept both cores busy for 30 s and more; a killed ``stockpipe run`` of a large batch
would leave its write running on the server, competing with the rerun, and its cached batch
would stay on the server until the session expires.

Silver is safe without this module: every attempt writes to a staging folder of its own
(``commit.attempt_staging``), and only the folder its journal names is swapped in. This module
frees the server:

* ``owned_session`` records the client session of a cleaning run in
  ``silver/_state/spark-session.json`` (its session id and the server's ``host:port``, never the
  URL, which may carry a token) before the run's first job, and deletes the record when the run
  ends. A run stopped from outside (``KeyboardInterrupt``, ``SystemExit``, Airflow's
  ``AirflowTaskTerminated`` and ``AirflowTaskTimeout``: any exception that is not an
  ``Exception``) first interrupts its own operations.
* A record found at the start of a run names the session of a client that died mid-run: runs on
  one data folder hold the pipeline lock and Airflow runs one task of the DAG at a time. Should
  the record name a process that is still alive on this machine (same pid and start time: the
  run of another data folder that cleans the same lake), the run stops with a clear error instead.
  Otherwise ``owned_session`` opens that session, interrupts every operation in it and releases
  it (its cache with it), then deletes the record.

Classic sessions run their jobs in the client's own JVM, which dies with it: nothing to do.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from stockpipe.errors import StockpipeError, first_line
from stockpipe.settings import redact_url

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from stockpipe.lake.fs import LakeFS

log = logging.getLogger(__name__)
RECORD = "spark-session.json"
SESSION_PARAM = "session_id"


def endpoint(url: str) -> str:
    """``host:port`` of a ``sc://`` URL (no parameters, so no token)."""
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port or 15002}"


def with_session_id(url: str, session_id: str) -> str:
    """``url`` with its ``session_id`` parameter set to ``session_id`` (other parameters kept)."""
    base, _, params = url.partition("/;")
    kept = [p for p in params.split(";") if p and not p.startswith(f"{SESSION_PARAM}=")]
    return f"{base.rstrip('/')}/;{';'.join([*kept, f'{SESSION_PARAM}={session_id}'])}"


def stop_session(url: str, session_id: str) -> int:
    """Interrupt every operation of the server session ``session_id`` and release it; how many.

    A bare Connect client, not a ``SparkSession``: a session built and stopped here could take
    the place of the process's default and active session, or clear it. Never raises: a
    session the server no longer has (released, expired, the server restarted) has nothing
    left to stop.
    """
    from pyspark.sql.connect.client import SparkConnectClient

    try:
        client = SparkConnectClient(connection=with_session_id(url, session_id))
    except Exception as exc:
        log.debug("could not open Spark session %s: %s", session_id, redact_url(first_line(exc)))
        return 0
    stopped = 0
    try:
        stopped = len(client.interrupt_all() or [])
        client.release_session()  # on the server: the session and its cached batch
    except Exception as exc:  # INVALID_HANDLE.SESSION_CLOSED and the like: nothing runs there
        log.debug("stopping Spark session %s: %s", session_id, redact_url(first_line(exc)))
    finally:
        with suppress(Exception):
            client.close()
    return stopped


def _read(fs: LakeFS, uri: str) -> dict[str, Any] | None:
    if not fs.exists(uri):
        return None
    try:
        doc = json.loads(fs.read_bytes(uri))
    except ValueError:
        return None  # unreadable: nothing to act on, the record is rewritten below
    return doc if isinstance(doc, dict) else None


def _process_started(pid: int) -> float | None:
    """The start time of the live process ``pid`` (None if there is none)."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "process_started": _process_started(pid)}


def _alive_elsewhere(doc: dict[str, Any]) -> bool:
    """True when the record names another process of this machine that is still running."""
    pid = doc.get("pid")
    if doc.get("host") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    started = _process_started(pid)  # with the pid, the start time: a recycled pid is not the owner
    return started is not None and started == doc.get("process_started")


def stop_orphans(fs: LakeFS, state_dir: str, url: str, own_session_id: str) -> int:
    """Stop the session a recorded, dead client left on the server at ``url``; operations stopped.

    Raises ``StockpipeError`` when the recorded client is a live process of this machine.
    """
    uri = f"{state_dir}/{RECORD}"
    doc = _read(fs, uri)
    stopped = 0
    if doc is not None:
        session_id = str(doc.get("session_id") or "")
        if session_id != own_session_id and _alive_elsewhere(doc):
            raise StockpipeError(
                f"The lake is being cleaned by process {doc['pid']} on this machine; "
                "wait for it to finish (two cleaning runs must not share a lake)."
            )
        if session_id and session_id != own_session_id and doc.get("endpoint") == endpoint(url):
            stopped = stop_session(url, session_id)
            log.info("Stopped %d operation(s) of Spark session %s left by a killed run.", stopped, session_id)
        fs.delete(uri)
    return stopped


@contextmanager
def owned_session(fs: LakeFS, state_dir: str, spark: SparkSession, url: str | None) -> Iterator[int]:
    """For the block: stop a dead client's leftovers, then record ``spark``'s session (see module).

    Yields how many operations of a killed run were stopped (0 when ``url`` is None: classic).
    """
    if url is None:
        yield 0
        return
    session_id = str(spark.session_id)  # type: ignore[attr-defined]  # Connect sessions have it
    stopped = stop_orphans(fs, state_dir, url, session_id)
    doc = {"version": 1, "session_id": session_id, "endpoint": endpoint(url), **_this_process()}
    uri = f"{state_dir}/{RECORD}"
    fs.write_atomic(uri, json.dumps(doc).encode())
    try:
        yield stopped
    except BaseException as exc:
        if not isinstance(exc, Exception):
            # the client is being stopped (Ctrl-C, SystemExit, Airflow's AirflowTaskTerminated on
            # SIGTERM or AirflowTaskTimeout): what it sent must not run on without it, and the
            # record that would let the next run stop it is deleted below. (pyspark stops the
            # operation it waits on by itself on KeyboardInterrupt, or when the exception closes
            # a reattachable execution; a non-reattachable one ran on.) A Spark error ended its job.
            with suppress(Exception):
                spark.interruptAll()
        raise
    finally:
        fs.delete(uri)
