"""The companies reference CSV → ``silver/companies/`` Parquet.

The reference is ``sources.companies.reference_path(settings)`` (the settings file, the
data-folder copy ``stockpipe companies add`` keeps, or the shipped list), read by the one reader
``sources.companies.parse_companies`` (contract: ``contract/companies.py``). It is read on the
driver (it is small, and a cluster's executors cannot see the driver's files), written to
staging and swapped in like a silver partition. ``sync_companies`` (called by every
``run_clean``) rewrites the dataset only when the CSV's content changed, so a re-run leaves
silver untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from stockpipe.clean.commit import attempt_staging, swap_partition
from stockpipe.clean.session import apply_job_conf, get_spark, lake_uri
from stockpipe.contract.companies import spark_schema
from stockpipe.contract.layout import silver_dir
from stockpipe.errors import StockpipeError
from stockpipe.lake.fs import LakeFS
from stockpipe.sources.companies import Company, add_command, parse_companies, reference_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

    from stockpipe.settings import Settings

STATE_FILE = "companies.json"
log = logging.getLogger(__name__)


def packaged_csv() -> Path | None:
    """The companies CSV shipped in ``stockpipe.sources``, or None when it is not there (yet)."""
    ref = resources.files("stockpipe.sources") / "data" / "companies.csv"
    return Path(str(ref)) if ref.is_file() else None


def companies_schema() -> StructType:
    return spark_schema()


def parse_companies_csv(data: bytes, source: str = "companies CSV") -> list[tuple[str | None, ...]]:
    """Rows in silver column order (``parse_companies``: symbols upper-cased, first row kept)."""
    return [c.row() for c in parse_companies(data, source)]


def read_companies(csv_path: Path | None = None) -> list[Company]:
    """The companies of the reference CSV (``csv_path`` or the packaged CSV)."""
    path = csv_path or packaged_csv()
    if path is None:
        raise StockpipeError("The companies file stockpipe/sources/data/companies.csv is not installed.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StockpipeError(f"The companies file {path} cannot be read ({exc.strerror}).") from exc
    return parse_companies(data, str(path))


def reference_symbols(csv_path: Path | None = None) -> frozenset[str]:
    """The symbols of the companies reference (``csv_path`` or the packaged CSV)."""
    return frozenset(c.symbol for c in read_companies(csv_path))


def warn_unknown_symbols(
    settings: Settings, symbols: tuple[str, ...] | list[str], exchange: str | None = None
) -> list[str]:
    """Log (and return) the requested symbols that the clean step will quarantine as unknown.

    Only with ``settings.spark.unknown_symbols == "quarantine"``; a one-line warning before any
    bar is sent beats discovering a quarantined day afterwards. It names the exact
    ``stockpipe companies add`` command (with the replay's ``exchange``) that fixes it.
    """
    if settings.spark.unknown_symbols != "quarantine" or not symbols:
        return []
    path = reference_path(settings)
    known = reference_symbols(path)
    unknown = sorted({s.strip().upper() for s in symbols} - known)
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        commands = "; ".join(add_command(s, exchange) for s in unknown[:3])
        log.warning(
            "%s not in the companies reference %s: their bars will be quarantined as unknown_symbol. "
            "Add them first: %s (or set STOCKPIPE_SPARK_UNKNOWN_SYMBOLS=keep).",
            shown, path, commands,
        )  # fmt: skip
    return unknown


def write_companies(
    settings: Settings,
    spark: SparkSession | None = None,
    csv_path: Path | None = None,
    *,
    force: bool = False,
) -> int:
    """Convert the companies CSV to ``silver/companies``; returns the number of companies.

    The dataset is rewritten only when the CSV changed since the last write (or with ``force``),
    so calling this on every pipeline run keeps the silver fingerprint stable.
    """
    session = spark or get_spark(settings)
    apply_job_conf(session)
    root = lake_uri(settings)
    fs = LakeFS(root, settings.lake.storage_options)
    try:
        path = csv_path or packaged_csv()
        if path is None:
            raise StockpipeError("The companies file stockpipe/sources/data/companies.csv is not installed.")
        data = path.read_bytes()
        if not force and _unchanged(fs, root, data):
            return len(parse_companies_csv(data, str(path)))
        return _write(session, fs, root, data, str(path))
    finally:
        fs.close()


def sync_companies(spark: SparkSession, fs: LakeFS, root: str, csv_path: Path | None = None) -> int | None:
    """Rewrite ``silver/companies`` if the CSV changed since the last write; None if skipped."""
    path = csv_path or packaged_csv()
    if path is None:
        return None
    data = path.read_bytes()
    if _unchanged(fs, root, data):
        return None
    return _write(spark, fs, root, data, str(path))


def _unchanged(fs: LakeFS, root: str, data: bytes) -> bool:
    """True when ``silver/companies`` was last written from exactly this CSV content."""
    state = f"{silver_dir(root, '_state')}/{STATE_FILE}"
    if not (fs.exists(state) and fs.exists(silver_dir(root, "companies"))):
        return False
    try:
        doc = json.loads(fs.read_bytes(state))
    except ValueError:
        return False  # an unreadable marker only costs a rewrite
    return isinstance(doc, dict) and doc.get("sha256") == hashlib.sha256(data).hexdigest()


def _write(spark: SparkSession, fs: LakeFS, root: str, data: bytes, source: str) -> int:
    rows = parse_companies_csv(data, source)
    digest = hashlib.sha256(data).hexdigest()
    staging = attempt_staging(silver_dir(root, "_staging"), f"companies-{digest[:16]}")
    df = spark.createDataFrame(rows, companies_schema()).coalesce(1)
    df.write.mode("overwrite").parquet(f"{staging}/new")
    swap_partition(fs, staged=f"{staging}/new", final=silver_dir(root, "companies"), aside=f"{staging}/old")
    fs.delete(staging)
    doc = {"version": 1, "sha256": digest, "rows": len(rows)}
    fs.write_atomic(f"{silver_dir(root, '_state')}/{STATE_FILE}", json.dumps(doc).encode())
    return len(rows)
