"""Run the dbt project (``dbt/``) in-process through ``dbt.cli.main.dbtRunner``.

Two steps, matching the seed's two dbt steps (build the models, then test them):

- ``run_transform`` = ``dbt build --exclude-resource-type test``: seeds, models and snapshots in
  dependency order (incremental ``fact_stock`` included), no data tests.
- ``run_quality`` = ``dbt source freshness`` + ``dbt test``: every data test (generic and
  singular) and the source freshness thresholds, against what ``transform`` built.

The profile is the committed ``dbt/profiles.yml`` (targets ``duckdb`` and ``snowflake``), which
reads ``STOCKPIPE_*`` variables with ``env_var()``, so dbt's own CLI and stockpipe use the same
warehouse. For each dbtRunner call those variables are set from the effective settings
(``profile_env``; secrets only in the environment, never in a file). dbt's target and log
folders live under ``<state_dir>/dbt``.
Every node result is also appended to ``raw.dbt_results``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from stockpipe.errors import StockpipeError
from stockpipe.faults import fault_point
from stockpipe.fsutil import atomic_write_bytes
from stockpipe.gold import dbt_speedups, freshness
from stockpipe.warehouse import tables
from stockpipe.warehouse.connect import connect_warehouse

if TYPE_CHECKING:
    from stockpipe.settings import Settings

log = logging.getLogger(__name__)

PASSED = frozenset({"pass", "success"})
FAILED = frozenset({"fail", "error", "runtime error"})


class DbtRunError(StockpipeError):
    """dbt could not run at all (bad project, profile or connection)."""


@dataclass(frozen=True)
class DbtNodeResult:
    unique_id: str
    name: str  # model / test / source name, e.g. fact_stock_ohlc_consistent
    resource_type: str  # model, test, source, seed, snapshot
    status: str  # success, pass, warn, fail, error, skipped, runtime error
    message: str = ""
    failures: int | None = None  # failing rows of a test


@dataclass(frozen=True)
class DbtProgress:
    name: str
    status: str
    done: int
    total: int | None


@dataclass
class DbtResult:
    invocation: str  # transform | quality | docs
    success: bool
    nodes: list[DbtNodeResult] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""  # quality: the freshness rule and which case applied

    def _with(self, statuses: frozenset[str]) -> list[DbtNodeResult]:
        return [n for n in self.nodes if n.status in statuses]

    @property
    def passed(self) -> list[DbtNodeResult]:
        return self._with(PASSED)

    @property
    def warned(self) -> list[DbtNodeResult]:
        return self._with(frozenset({"warn"}))

    @property
    def failed(self) -> list[DbtNodeResult]:
        return self._with(FAILED)

    @property
    def skipped(self) -> list[DbtNodeResult]:
        return self._with(frozenset({"skipped"}))

    def counts(self) -> dict[str, int]:
        return {
            "passed": len(self.passed),
            "warned": len(self.warned),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
        }


ProgressCallback = Callable[[DbtProgress], None]


# ---- profile ----
PROFILES_FILE = "profiles.yml"
SECRET_PASSWORD_ENV = "DBT_ENV_SECRET_STOCKPIPE_SNOWFLAKE_PASSWORD"  # noqa: S105 - a variable name
SECRET_PASSPHRASE_ENV = "DBT_ENV_SECRET_STOCKPIPE_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"  # noqa: S105 - a name
SHIPPED_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"


def dbt_dir(settings: Settings) -> Path:
    """dbt's target and log folders (under the state folder, never in the project)."""
    return settings.state_dir / "dbt"


def profiles_dir(settings: Settings) -> Path:
    """The folder of the committed ``profiles.yml``: the project's own, else the shipped one."""
    for folder in (settings.dbt.project_dir, SHIPPED_PROJECT_DIR):
        if (folder / PROFILES_FILE).is_file():
            return folder
    raise DbtRunError(
        f"No dbt profile: {settings.dbt.project_dir / PROFILES_FILE} is missing; "
        f"copy {SHIPPED_PROJECT_DIR / PROFILES_FILE} there."
    )


def dbt_vars(settings: Settings) -> dict[str, str | int]:
    """Project vars for the configured target (Snowflake names upper-case, as stored)."""
    d = settings.dbt
    hours: dict[str, str | int] = {
        "freshness_warn_hours": d.freshness_warn_hours,
        "freshness_error_hours": d.freshness_error_hours,
        "freshness_live_window_hours": d.freshness_live_window_hours,
    }
    if settings.warehouse.kind == "snowflake":
        sf = settings.snowflake
        return {
            "raw_schema": sf.raw_schema.upper(),
            "gold_schema": sf.gold_schema.upper(),
            "staging_schema": "STAGING",
            **hours,
        }
    wh = settings.warehouse
    return {"raw_schema": wh.raw_schema, "gold_schema": wh.gold_schema, "staging_schema": "staging", **hours}


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


def profile_env(settings: Settings) -> dict[str, str | None]:
    """The ``STOCKPIPE_*`` variables ``dbt/profiles.yml`` reads, from settings (None: unset).

    Settings may come from ``stockpipe.toml`` or ``.env``, which dbt cannot read, so every
    variable the profile and the project read is set from the effective settings for the
    duration of a dbt call. Secrets are put in the environment only, never in a file.
    """
    sf, wh = settings.snowflake, settings.warehouse
    key_pair = bool(sf.private_key_path)
    authenticator = sf.authenticator
    if key_pair and authenticator and authenticator.upper() == "SNOWFLAKE_JWT":
        authenticator = None  # dbt-snowflake infers key-pair authentication from the key
    return {
        "STOCKPIPE_WAREHOUSE_KIND": wh.kind,
        "STOCKPIPE_WAREHOUSE_RAW_SCHEMA": wh.raw_schema,
        "STOCKPIPE_WAREHOUSE_GOLD_SCHEMA": wh.gold_schema,
        "STOCKPIPE_DUCKDB_PATH": str(settings.duckdb_path),
        "STOCKPIPE_SNOWFLAKE_ACCOUNT": sf.account,
        "STOCKPIPE_SNOWFLAKE_USER": sf.user,
        # secrets under dbt's DBT_ENV_SECRET_ prefix (scrubbed from dbt's logs); the plain names unset
        "STOCKPIPE_SNOWFLAKE_PASSWORD": None,
        SECRET_PASSWORD_ENV: None if key_pair else _text(sf.password),
        "STOCKPIPE_SNOWFLAKE_PRIVATE_KEY_PATH": (
            str(Path(sf.private_key_path).expanduser()) if sf.private_key_path else None
        ),
        "STOCKPIPE_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": None,
        SECRET_PASSPHRASE_ENV: _text(sf.private_key_passphrase) if key_pair else None,
        "STOCKPIPE_SNOWFLAKE_AUTHENTICATOR": authenticator,
        "STOCKPIPE_SNOWFLAKE_ROLE": sf.role,
        "STOCKPIPE_SNOWFLAKE_WAREHOUSE": sf.warehouse,
        "STOCKPIPE_SNOWFLAKE_DATABASE": sf.database,
        "STOCKPIPE_SNOWFLAKE_RAW_SCHEMA": sf.raw_schema,
        "STOCKPIPE_SNOWFLAKE_GOLD_SCHEMA": sf.gold_schema,
        "STOCKPIPE_SNOWFLAKE_HOST": sf.host,
        "STOCKPIPE_SNOWFLAKE_PORT": _text(sf.port),
        "STOCKPIPE_SNOWFLAKE_PROTOCOL": sf.protocol if sf.host else None,
    }


@contextmanager
def _environment(extra: dict[str, str | None]) -> Iterator[None]:
    """Set (value) or unset (None) variables for the duration of the block."""
    saved = {k: os.environ.get(k) for k in extra}
    for key, value in extra.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---- invoking dbt ----
def _common_args(settings: Settings, project_dir: Path) -> list[str]:
    folder = dbt_dir(settings)
    return [
        "--project-dir", str(project_dir),
        "--profiles-dir", str(profiles_dir(settings)),
        "--target", settings.warehouse.kind,
        "--target-path", str(folder / "target"),
        "--vars", json.dumps(dbt_vars(settings)),
    ]  # fmt: skip


def _quiet_flags() -> list[str]:
    """Errors only on stdout, no colours, no usage statistics unless dbt's own env var asks."""
    flags = ["--quiet", "--no-use-colors"]
    if "DBT_SEND_ANONYMOUS_USAGE_STATS" not in os.environ:
        flags.append("--no-send-anonymous-usage-stats")
    return flags


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after an invocation.

    Otherwise the file stays locked (other processes cannot open it) and this process cannot
    open it with another configuration (e.g. read-only) until exit.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb not installed
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        if env is not None:
            env.close()
        DuckDBConnectionManager._ENV = None


def _freshness_message(result: Any) -> str:
    """dbt leaves the message of a freshness result empty; say how old the newest row is."""
    newest, age = getattr(result, "max_loaded_at", None), getattr(result, "age", None)
    if newest is None or age is None:
        return ""
    if newest.year < 2:  # dbt's stand-in for "no rows"
        return "no rows loaded yet"
    return f"newest loaded_at {newest:%Y-%m-%d %H:%M:%S} UTC is {age / 3600:.1f} h old"


def _node_results(result: Any) -> list[DbtNodeResult]:
    nodes = []
    for r in getattr(result, "results", None) or []:
        node = r.node
        resource_type = str(getattr(node.resource_type, "value", node.resource_type))
        name = f"{node.source_name}.{node.name}" if resource_type == "source" else node.name
        message = getattr(r, "message", None) or ""
        if resource_type == "source" and not message:
            message = _freshness_message(r)
        nodes.append(
            DbtNodeResult(
                unique_id=node.unique_id,
                name=name,
                resource_type=resource_type,
                status=str(getattr(r.status, "value", r.status)),
                message=str(message),
                failures=getattr(r, "failures", None),
            )
        )
    return nodes


def invoke(
    settings: Settings,
    command: list[str],
    *,
    project_dir: Path | None = None,
    on_progress: ProgressCallback | None = None,
    manifest: Any | None = None,
) -> tuple[bool, list[DbtNodeResult]]:
    """Run one dbt command; returns (success, node results). ``DbtRunError`` if dbt cannot run.

    ``manifest`` (from ``parse_project``) skips dbt's parse: a long-running process that runs
    the same project again and again (``stockpipe stream``) parses it once.
    """
    done = 0
    total: int | None = None

    def callback(event: Any) -> None:
        nonlocal done, total
        name = event.info.name
        if name == "LogStartLine":
            total = int(event.data.total) or total
        elif name == "NodeFinished":
            fault_point("DBT_NODE_FINISHED")  # test-only: killed between two models (unset: no-op)
            if on_progress:
                done += 1
                info = event.data.node_info
                on_progress(DbtProgress(info.node_name, info.node_status, done, total))

    res = _run(settings, command, project_dir, manifest=manifest, callbacks=[callback])
    return bool(res.success), _node_results(res.result)


def parse_project(settings: Settings, *, project_dir: Path | None = None, write_json: bool = True) -> Any:
    """``dbt parse``: the project's manifest, for ``invoke(..., manifest=)``.

    ``write_json=False`` leaves ``target/manifest.json`` as it is (``project_manifest`` knows
    when it is already this parse's).
    """
    res = _run(settings, ["parse"] if write_json else ["parse", "--no-write-json"], project_dir)
    if not res.success:
        raise DbtRunError("dbt parse failed; see the dbt log in the state folder.")
    return res.result


_manifests: dict[tuple[Any, ...], Any] = {}
_SKIPPED_DIRS = frozenset({"target", "logs"})


def _project_files(project_dir: Path, profiles: Path) -> tuple[tuple[str, int, int], ...]:
    """Path, mtime and size of every project file (installed packages included) and of the
    profile: a changed file means a new parse."""
    files = []
    for path in [*sorted(project_dir.rglob("*")), profiles]:
        rel = path.relative_to(project_dir) if path.is_relative_to(project_dir) else path
        if not _SKIPPED_DIRS.intersection(rel.parts) and path.is_file():
            st = path.stat()
            files.append((str(rel), st.st_mtime_ns, st.st_size))
    return tuple(files)


def project_manifest(settings: Settings, *, project_dir: Path | None = None) -> Any:
    """The project's manifest: parsed once per project state, not once per command.

    A ``run`` invokes dbt three times (build, source freshness, test) and an Airflow task or a
    CLI command is a new process: each would parse the project again (read the partial-parse
    file, rebuild the manifest, write manifest.json), about 0.5-1 s apiece. The parse is done
    again only when its inputs change: dbt's and the adapter's versions, the command-line
    arguments, the project's files and the profile, the profile's variables (a ``PARSE_STAMP``
    digest), or an environment variable the project read while parsing (dbt records those in
    the manifest). Within a process the manifest is kept in memory; across processes it is
    kept next to manifest.json (``SAVED_MANIFEST``, see ``_load_saved``).

    ``target/manifest.json`` is written when that parse's inputs differ from the ones that wrote
    the file last: writing it takes about 0.4 s, and a scheduled ``run`` on an unchanged project
    would rewrite the same manifest.
    """
    project_dir = project_dir or settings.dbt.project_dir
    env = sorted(profile_env(settings).items(), key=lambda kv: kv[0])
    inputs = (
        tuple(_common_args(settings, project_dir)),
        _project_files(project_dir, profiles_dir(settings) / PROFILES_FILE),
    )
    key = (*inputs, tuple(env))
    manifest = _manifests.get(key)
    if manifest is None:
        target = dbt_dir(settings) / "target"
        stamp = target / PARSE_STAMP
        digest = _parse_digest(inputs, env)
        current = (target / "manifest.json").is_file() and _read_text(stamp) == digest
        manifest = _load_saved(target, digest, dict(env)) if current else None
        if manifest is None:
            manifest = parse_project(settings, project_dir=project_dir, write_json=not current)
            target.mkdir(parents=True, exist_ok=True)
            if not current:
                stamp.write_text(digest, encoding="utf-8")
            _save(target, digest, manifest)
        _manifests.clear()  # one project per process in practice: keep only the latest
        _manifests[key] = manifest
    return manifest


PARSE_STAMP = ".stockpipe-parse"
SAVED_MANIFEST = ".stockpipe-manifest.pickle"
"""The parsed manifest (a pickle of dbt's ``Manifest``) after a line with its ``PARSE_STAMP``
digest. Loading it takes about 10 ms where a partial parse takes about 1 s, and the commands
that follow then start about 0.4 s sooner in all (measured on the shipped project). It is read
only from the state folder this process's own parse wrote to, the trust dbt gives its
partial-parse file there."""
_UNSET = "DBT_DEFAULT_PLACEHOLDER"  # how dbt records an env_var() that fell back to its default


def _load_saved(target: Path, digest: str, profile: dict[str, str | None]) -> Any | None:
    """The manifest saved by a parse with ``digest``, if the environment variables the project
    read are unchanged (``profile`` overrides the process's environment as ``_run`` does)."""
    import pickle

    try:
        data = (target / SAVED_MANIFEST).read_bytes()
        head, _, body = data.partition(b"\n")
        if head.decode() != digest:
            return None
        manifest = pickle.loads(body)  # noqa: S301 - see SAVED_MANIFEST
    except Exception:  # missing, partial, or from another dbt: parse instead
        return None
    environ = {**os.environ, **profile}
    for name, value in (getattr(manifest, "env_vars", None) or {}).items():
        if environ.get(name) != (None if value == _UNSET else value):
            return None
    return manifest


def _save(target: Path, digest: str, manifest: Any) -> None:
    try:
        atomic_write_bytes(target / SAVED_MANIFEST, digest.encode() + b"\n" + _pickled(manifest))
    except Exception as exc:  # an unpicklable manifest only costs the next process a parse
        (target / SAVED_MANIFEST).unlink(missing_ok=True)
        log.debug("dbt manifest not saved: %s", exc)


def _pickled(manifest: Any) -> bytes:
    """``manifest`` pickled field by field. dbt's own ``Manifest.__reduce_ex__`` is not used: it
    passes its fields positionally and skips ``fixtures``, so from ``_doc_lookup`` on every field
    would land one place off (dbt-core 1.11); the process lock is made anew on load."""
    import io
    import pickle

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if obj is manifest:
                state = {k: v for k, v in vars(obj).items() if k != "_lock"}
                return _new_manifest, (type(obj),), state
            return NotImplemented

    buf = io.BytesIO()
    Pickler(buf, protocol=5).dump(manifest)
    return buf.getvalue()


def _new_manifest(cls: type[Any]) -> Any:
    """An empty ``cls`` (dbt's Manifest) with a new lock; unpickling then sets its fields."""
    from dbt.mp_context import get_mp_context

    manifest = object.__new__(cls)
    manifest._lock = get_mp_context().Lock()
    return manifest


def _parse_digest(inputs: tuple[Any, ...], env: list[tuple[str, str | None]]) -> str:
    """A digest of what a parse depends on: dbt's and the adapters' versions, the arguments, the
    project's files and the profile's variables, secrets left out (the manifest never contains
    them)."""
    from importlib.metadata import PackageNotFoundError, version

    versions: list[str | None] = []
    for package in ("dbt-core", "dbt-adapters", "dbt-duckdb", "dbt-snowflake"):
        try:
            versions.append(version(package))
        except PackageNotFoundError:
            versions.append(None)
    public = [(k, v) for k, v in env if not k.startswith("DBT_ENV_SECRET_")]
    text = json.dumps([versions, sys.version, inputs, public], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def preload(settings: Settings) -> threading.Thread:
    """Import dbt and the warehouse's adapter in a background thread (about 2 s of CPU).

    ``run_pipeline`` calls this before its first step when dbt steps follow: the producer and
    the consumer mostly wait for the broker, so dbt's import runs meanwhile instead of at the
    start of the build step. An import error is left for the dbt step itself to report.
    """

    def load() -> None:
        for name in ("dbt.cli.main", f"dbt.adapters.{settings.warehouse.kind}"):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: S112 - the dbt step imports again and reports it
                continue

    thread = threading.Thread(target=load, name="stockpipe-dbt-preload")
    thread.start()
    return thread


def _run(
    settings: Settings,
    command: list[str],
    project_dir: Path | None,
    *,
    manifest: Any | None = None,
    callbacks: list[Callable[[Any], None]] | None = None,
) -> Any:
    from dbt.cli.main import dbtRunner

    dbt_speedups.install()
    project_dir = project_dir or settings.dbt.project_dir
    args = [*command, *_common_args(settings, project_dir), "--log-path", str(dbt_dir(settings) / "logs")]
    if manifest is not None:
        # dbt would write manifest.json again after every command (about 0.3 s each for this
        # project); the parse that made ``manifest`` wrote it. The command's own results file
        # is still written, below.
        args.append("--no-write-json")
    with _environment(profile_env(settings)):
        try:
            res = dbtRunner(manifest=manifest, callbacks=callbacks or []).invoke([*args, *_quiet_flags()])
        finally:
            _release_duckdb()
    if res.result is None or (res.exception is not None and not getattr(res.result, "results", None)):
        cause = str(res.exception or "no result").strip().splitlines()[0].rstrip(".")
        raise DbtRunError(f"dbt {' '.join(command)} could not run: {cause}.")
    if manifest is not None:
        _write_results(settings, command, res.result)
    return res


def _write_results(settings: Settings, command: list[str], result: Any) -> None:
    """Write the command's results file where dbt writes it: ``sources.json`` for source freshness,
    ``run_results.json`` otherwise (what dbt's ``--write-json`` writes besides manifest.json)."""
    write = getattr(result, "write", None)
    if write is None:
        return
    name = "sources.json" if command[:2] == ["source", "freshness"] else "run_results.json"
    target = dbt_dir(settings) / "target"
    target.mkdir(parents=True, exist_ok=True)
    write(str(target / name))


def _record(settings: Settings, invocation: str, nodes: list[DbtNodeResult]) -> None:
    """Append node results to ``raw.dbt_results`` (best effort is not enough: errors propagate)."""

    run_at = datetime.now(UTC)
    rows = [(run_at, invocation, n.unique_id, n.resource_type, n.status, n.message[:4000]) for n in nodes]
    with connect_warehouse(settings) as wh:
        wh.ensure_raw_tables()
        wh.append(tables.DBT_RESULTS, rows)


def _selection(select: str | list[str] | None) -> list[str]:
    if not select:
        return []
    items = [select] if isinstance(select, str) else list(select)
    return ["--select", *items]


READ_ONLY_THREADS = 4
"""dbt threads for the read-only commands (tests, source freshness) on DuckDB: the 86 data tests
of the quick start take about 30% less time with 4 threads than with 1 (measured on 2 cores).
Builds keep the profile's 1 thread: DuckDB is a single writer and concurrent DDL on one file
can fail with write-write conflicts."""


def _read_only_threads(settings: Settings) -> list[str]:
    return ["--threads", str(READ_ONLY_THREADS)] if settings.warehouse.kind == "duckdb" else []


def run_transform(
    settings: Settings,
    *,
    select: str | list[str] | None = None,
    full_refresh: bool = False,
    on_progress: ProgressCallback | None = None,
    project_dir: Path | None = None,
    manifest: Any | None = None,
) -> DbtResult:
    """``dbt build`` without data tests: build every model of the gold layer.

    ``manifest`` (from ``parse_project``) skips the parse; by default the process's
    ``project_manifest`` is used (parsed on first use).
    """

    started = time.perf_counter()
    with connect_warehouse(settings) as wh:  # fail early and clearly; an empty warehouse builds empty
        wh.ensure_raw_tables()
    command = ["build", "--exclude-resource-type", "test", *_selection(select)]
    if full_refresh:
        command.append("--full-refresh")
    if manifest is None:
        manifest = project_manifest(settings, project_dir=project_dir)
    ok, nodes = invoke(settings, command, project_dir=project_dir, on_progress=on_progress, manifest=manifest)
    _record(settings, "transform", nodes)
    return DbtResult(
        "transform", ok and not any(n.status in FAILED for n in nodes), nodes, time.perf_counter() - started
    )


def run_quality(
    settings: Settings,
    *,
    select: str | list[str] | None = None,
    on_progress: ProgressCallback | None = None,
    project_dir: Path | None = None,
) -> DbtResult:
    """``dbt source freshness`` then ``dbt test``: every data test and freshness threshold.

    Freshness applies to live bars only (``stockpipe.gold.freshness``); ``note`` explains it.
    """
    started = time.perf_counter()
    note = freshness.summary_line(settings, freshness.measure(settings))
    manifest = project_manifest(settings, project_dir=project_dir)
    threads = _read_only_threads(settings)
    fresh_ok, fresh = invoke(
        settings,
        ["source", "freshness", *threads],
        project_dir=project_dir,
        on_progress=on_progress,
        manifest=manifest,
    )
    test_ok, tested = invoke(
        settings,
        ["test", *threads, *_selection(select)],
        project_dir=project_dir,
        on_progress=on_progress,
        manifest=manifest,
    )
    nodes = fresh + tested
    _record(settings, "quality", nodes)
    ok = fresh_ok and test_ok and not any(n.status in FAILED for n in nodes)
    return DbtResult("quality", ok, nodes, time.perf_counter() - started, note)


def run_docs(settings: Settings, *, project_dir: Path | None = None) -> Path:
    """``dbt docs generate``; returns the folder holding index.html, manifest.json and catalog.json."""
    ok, _ = invoke(settings, ["docs", "generate"], project_dir=project_dir)
    target = dbt_dir(settings) / "target"
    if not ok or not (target / "catalog.json").exists():
        raise DbtRunError("dbt docs generate did not produce a catalog; see the dbt log in the state folder.")
    return target
