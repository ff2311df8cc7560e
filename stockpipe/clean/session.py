"""The Spark session factory: one session per process, configured from ``settings.spark``.

Which Spark (the same job code runs on each; it uses the DataFrame API only, no JVM handles):

* ``spark.remote`` set (``sc://host:15002/;token=...``): a Spark Connect client to that server
  (a cluster, Databricks); the URL is a secret and is never logged (``redact_url``);
* ``spark.mode = connect`` (default): a Connect client to the warm local server
  (``connect_server.ensure_server`` starts it on demand and it stops itself when idle);
* ``spark.mode = classic``: an in-process session on ``spark.master``, as below.

For a classic session the master comes from ``settings.spark.master``: ``local[*]`` (default), ``spark://host:port``
(a standalone cluster), or anything Spark understands (``yarn``, ``k8s://...``), passed through.
Every session runs in UTC with dynamic partition overwrite; local sessions have the UI off.
For a cluster, the executors use the driver's Python (``PYSPARK_PYTHON``) so the job's
Python objects unpickle the same way everywhere.

Lake locations are URIs (``file://``, ``hdfs://``, ``s3a://``): ``lake_uri`` turns a bare local
path into a ``file://`` URI so every path handed to Spark carries a scheme.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from stockpipe.clean import connect_server
from stockpipe.errors import StockpipeError, first_line
from stockpipe.settings import redact_url

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Observation, SparkSession

    from stockpipe.settings import Settings

JAVA_HINT = (
    "Spark needs Java 17 or newer: install it with `apt-get install openjdk-17-jre-headless` "
    "(or set JAVA_HOME)."
)
MIN_JAVA = 17
JIT_OPTION = "-XX:-DontCompileHugeMethods"
LOCAL_RETRIES = 5  # Connect client retries against the local server (about 3 s in all)
_VERSION_RE = re.compile(r'version "(?P<v>[^"]+)"')

_lock = threading.Lock()
_session: SparkSession | None = None
_session_url: str | None = None  # the Connect URL ``_session`` was opened on (None: classic)
_java_checked = False
log = logging.getLogger(__name__)


def _java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    return shutil.which("java")


def java_major_version(java: str) -> int | None:
    """The major version of the ``java`` binary (``1.8`` → 8, ``17.0.15`` → 17), None if unknown."""
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _VERSION_RE.search(proc.stderr + proc.stdout)
    if not m:
        return None
    parts = m["v"].split(".")
    try:
        major = int(parts[0])
        return int(parts[1]) if major == 1 and len(parts) > 1 else major
    except ValueError:
        return None


def check_java() -> None:
    """Raise ``StockpipeError`` with an install hint when Java is missing or older than 17."""
    global _java_checked
    if _java_checked:
        return
    java = _java_binary()
    version = java_major_version(java) if java else None
    if version is None or version < MIN_JAVA:
        raise StockpipeError(JAVA_HINT)
    _java_checked = True


def lake_uri(settings: Settings) -> str:
    """The lake root as a URI Spark and Hadoop understand (bare paths become ``file://``)."""
    root = settings.lake_root
    if "://" not in root:
        return "file://" + str(Path(root).expanduser().resolve())
    if root.startswith("file:"):
        # Hadoop paths are not percent-decoded: hand Spark the plain path (``%3D`` -> ``=``).
        return "file://" + unquote(urlparse(root).path).rstrip("/")
    if root.startswith("s3://"):
        return "s3a://" + root[len("s3://") :]
    return root


def is_local_master(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def spark_conf(settings: Settings) -> dict[str, str]:
    """Every Spark option the factory sets (``settings.spark.conf`` wins over the defaults)."""
    sp = settings.spark
    conf = {
        "spark.app.name": sp.app_name,
        **JOB_SQL_CONF,
        "spark.sql.shuffle.partitions": str(sp.shuffle_partitions),
        "spark.driver.memory": sp.driver_memory,
        "spark.sql.adaptive.enabled": "true",
        # stockpipe draws its own progress; Spark's console bars would garble it
        "spark.ui.showConsoleProgress": "false",
        # A warm server or a stream runs thousands of small jobs; Spark's status store keeps
        # 1,000 of each by default (UI or not), which the soak saw as a rising driver heap.
        "spark.ui.retainedJobs": "100",
        "spark.ui.retainedStages": "100",
        "spark.sql.ui.retainedExecutions": "100",
    }
    # Spark's generated code has methods past the JVM's 8,000-byte JIT limit for a wide parse
    # like ours; letting the JIT compile them makes the clean step about 2x faster (measured).
    conf["spark.driver.extraJavaOptions"] = JIT_OPTION
    conf["spark.executor.extraJavaOptions"] = JIT_OPTION
    if is_local_master(sp.master):
        conf["spark.ui.enabled"] = "false"
        conf["spark.driver.host"] = "127.0.0.1"
    else:
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.pyspark.driver.python"] = sys.executable
    for key, value in sp.conf.items():
        if key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
            value = f"{JIT_OPTION} {value}"
        conf[key] = value
    return conf


JOB_SQL_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    # The job counts records and reasons with an Observation on its first pass; were that
    # pass's input ever empty after a shuffle, AQE would replace it by an empty relation and the
    # observation would never report (Spark then fails in toPyRow). Keep the rule off.
    "spark.sql.adaptive.optimizer.excludedRules": (
        "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"
    ),
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # The job reads an explicit list of bronze files: stat them on the driver instead of starting
    # a Spark job to "discover" them in parallel (1,000 streaming-size files: 3.6 s -> ~0.3 s).
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def apply_job_conf(spark: SparkSession) -> None:
    """Set the runtime SQL options the cleaning job relies on, on any session it is handed."""
    for key, value in JOB_SQL_CONF.items():
        spark.conf.set(key, value)


def connect_url(settings: Settings, *, start: bool = True) -> str | None:
    """The Spark Connect URL this configuration uses, None for classic.

    The local server is started when it is not running; with ``start=False`` it is not, and
    the URL is None then.
    """
    if settings.spark.remote is not None:
        return settings.spark.remote.get_secret_value()
    if settings.spark.mode == "classic":
        return None
    if not start:
        state = connect_server.live_state(settings.state_dir)
        return state.url if state is not None else None
    return local_server(settings).url


def is_connect(spark: object) -> bool:
    """True for a Spark Connect client session (its jobs run on a server, not in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def session_url(settings: Settings, spark: SparkSession) -> str | None:
    """The Connect URL ``spark`` talks to; None for a classic session.

    The URL ``get_spark`` opened it on, without any I/O; for a session handed in from elsewhere,
    the URL of ``settings`` (never starting a server: None when the local one is not running).
    """
    if not is_connect(spark):
        return None
    if spark is _session and _session_url is not None:
        return _session_url
    return connect_url(settings, start=False)


def local_server(settings: Settings) -> connect_server.ServerState:
    """The warm local Spark Connect server, started now if it is not running."""
    if connect_server.live_state(settings.state_dir) is None:  # only a start needs Java here
        check_java()
    return connect_server.ensure_server(settings, spark_conf(settings))


def get_spark(settings: Settings) -> SparkSession:
    """The process's Spark session, created on first use from ``settings.spark``.

    An already running session (e.g. a test fixture or ``spark-submit``) is reused as is.
    """
    global _session, _session_url
    with _lock:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            _session = active
            return active
        url = connect_url(settings)
        if url is not None:
            if _session is None or _session_url != url or _stopped(_session):
                _session, _session_url = _connect(settings, url), url
            return _session
        check_java()
        master = settings.spark.master
        if is_local_master(master):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no hostname-resolution warning
        else:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master)
        for key, value in spark_conf(settings).items():
            builder = builder.config(key, value)
        try:
            _session = builder.getOrCreate()
        except Exception as exc:  # the JVM did not start: say so in one sentence
            raise StockpipeError(f"Spark could not start on master {master}: {first_line(exc)}.") from exc
        _session.sparkContext.setLogLevel("WARN")
        return _session


def _stopped(session: SparkSession) -> bool:
    return bool(getattr(session, "is_stopped", False))


def open_in_background(settings: Settings) -> threading.Thread | None:
    """Open the process's Spark Connect session in a background thread; None in classic mode.

    ``stockpipe run`` calls this before its Kafka steps: the client's import (pandas, pyarrow,
    gRPC) and the session's set-up then run while those steps wait for the broker, instead of
    at the start of the cleaning step (about 0.3 s of a warm run, measured), and a server that
    is not running starts meanwhile. An error is left for the cleaning step to report: it calls
    ``get_spark`` again.
    """
    if settings.spark.remote is None and settings.spark.mode == "classic":
        return None

    def connect() -> None:
        try:
            get_spark(settings)
        except Exception as exc:  # reported by the cleaning step, which connects again
            log.debug("opening the Spark session early failed: %s", redact_url(first_line(exc)))

    thread = threading.Thread(target=connect, name="stockpipe-spark-open", daemon=True)
    thread.start()
    return thread


def _connect(settings: Settings, url: str) -> SparkSession:
    """A Spark Connect session to ``url`` with the job's SQL options set on it."""
    from pyspark.sql import SparkSession

    try:
        session = SparkSession.builder.remote(url).getOrCreate()
        session.conf.set("spark.sql.shuffle.partitions", str(settings.spark.shuffle_partitions))
        for key, value in settings.spark.conf.items():
            if key.startswith("spark.sql."):  # the rest is the server's (set when it starts)
                session.conf.set(key, value)
    except Exception as exc:
        raise StockpipeError(
            f"Spark Connect at {redact_url(url)} is not reachable: {redact_url(first_line(exc))}."
        ) from exc
    apply_job_conf(session)
    if settings.spark.remote is None:
        # pyspark's default retries ride out 10+ minutes of a remote cluster being unavailable;
        # a local server that died does not come back by itself: fail within seconds instead
        from pyspark.sql.connect.client.retries import DefaultPolicy

        session.client.set_retry_policies([DefaultPolicy(max_retries=LOCAL_RETRIES, max_backoff=2000)])
        connect_server.start_heartbeat(settings.state_dir)
    return session


def observe_batch(df: DataFrame, observation: Observation, *exprs: Column) -> DataFrame:
    """``df.observe(observation, *exprs)`` for a frame known to be a batch (not streaming) frame.

    Over Spark Connect, ``DataFrame.observe`` first asks the server whether ``df`` is streaming:
    one more round trip that analyses the whole plan again (0.1-0.4 s for the wide parse on a
    warm server, measured). Every frame the job observes is a batch read of files, so the answer
    is written into the frame's cached ``isStreaming`` first. A pyspark without that cached
    property takes the normal path.
    """
    if isinstance(getattr(type(df), "isStreaming", None), functools.cached_property):
        df.__dict__["isStreaming"] = False
    return df.observe(observation, *exprs)


def stop_spark() -> None:
    """Stop the session this module created (no-op when none)."""
    global _session, _session_url
    with _lock:
        if _session is not None:
            _session.stop()
            _session, _session_url = None, None
