"""Finding and reading new bronze: the manifest minus the ledger, then one Spark read of all files.

Bronze paths are built from the layout (``<lake>/bronze/<topic>/ingest_date=<d>/<file>``) and the
manifest entry's ``file`` and ``ingest_date``; every listed file must exist (the uploader writes
the manifest entry after the data file), otherwise the run stops with ``StateFileError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stockpipe.contract.layout import (
    INTRADAY_PRICES,
    BatchId,
    PriceDataset,
    bronze_dir,
    bronze_manifest_dir,
    raw_record_schema,
    silver_dir,
)
from stockpipe.errors import StateFileError
from stockpipe.lake.fs import LakeFS
from stockpipe.lake.manifest import ENTRY_SUFFIX, ManifestEntry

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MANIFEST_READERS = 8
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class LakePaths:
    """Every location the clean step reads or writes, for one lake root and topic."""

    root: str
    topic: str

    @property
    def silver(self) -> str:
        """``<lake>/silver``: journal partitions are paths under it."""
        return f"{self.root}/silver"

    @property
    def prices(self) -> str:
        """The intraday bars (``stock_prices``)."""
        return self.dataset(INTRADAY_PRICES)

    def dataset(self, ds: PriceDataset) -> str:
        return silver_dir(self.root, ds.name)

    @property
    def quarantine(self) -> str:
        return silver_dir(self.root, "quarantine")

    @property
    def state(self) -> str:
        return silver_dir(self.root, "_state")

    @property
    def staging_root(self) -> str:
        return silver_dir(self.root, "_staging")

    def bronze(self, entry: ManifestEntry) -> str:
        return f"{bronze_dir(self.root, self.topic)}/ingest_date={entry.ingest_date}/{entry.file}"


def new_manifest_entries(
    fs: LakeFS, paths: LakePaths, done: set[str], progress: Callable[[str, int, int], None] | None = None
) -> list[ManifestEntry]:
    """Manifest entries of bronze files not in the ledger (their data files checked to exist)."""
    listing = [
        e
        for e in fs.list(bronze_manifest_dir(paths.root, paths.topic))
        if e.name.endswith(ENTRY_SUFFIX)
        and not e.name.startswith(".")
        and e.name[: -len(ENTRY_SUFFIX)] not in done
    ]
    entries: list[ManifestEntry] = []
    # many small reads, each a round trip (to the namenode on HDFS, to S3): a few in flight
    with ThreadPoolExecutor(max_workers=MANIFEST_READERS) as pool:
        reads = pool.map(lambda e: _read_entry(fs, e.uri, e.name[: -len(ENTRY_SUFFIX)]), listing)
        for i, entry in enumerate(reads, start=1):
            entries.append(entry)
            if progress:
                progress("manifest", i, len(listing))
    by_dir: dict[str, set[str]] = {}
    for entry in entries:
        folder = paths.bronze(entry).rsplit("/", 1)[0]
        if folder not in by_dir:
            by_dir[folder] = {x.name for x in fs.list(folder)}
        if entry.file not in by_dir[folder]:
            raise StateFileError(
                f"The bronze manifest lists {entry.file} but {paths.bronze(entry)} does not exist."
            )
    return entries


def _read_entry(fs: LakeFS, uri: str, name: str) -> ManifestEntry:
    """The entry at ``uri`` (the lake's one manifest parser), checked to describe the file ``name``."""
    entry = ManifestEntry.from_json(fs.read_bytes(uri), uri)
    try:
        BatchId.parse(entry.file)
    except ValueError as exc:
        raise StateFileError(f"The bronze manifest entry {uri} is corrupt ({exc}).") from exc
    if entry.file != name or not _DATE_RE.match(entry.ingest_date):
        raise StateFileError(f"The bronze manifest entry {uri} does not describe the file {name}.")
    return entry


def read_bronze(spark: SparkSession, uris: list[str]) -> DataFrame:
    """One read of all bronze files, with ``bronze_file`` and ``ingest_date`` from each file's path."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    # a select, not two withColumn: over Spark Connect each withColumn has the server analyse
    # the read below it as it converts the plan
    ingest_date = F.regexp_extract(F.col("_metadata.file_path"), r"ingest_date=(\d{4}-\d{2}-\d{2})/", 1)
    return (
        spark.read.schema(from_arrow_schema(raw_record_schema()))
        .parquet(*uris)
        .select(
            "*",
            F.col("_metadata.file_name").alias("bronze_file"),
            ingest_date.cast("date").alias("ingest_date"),
        )
    )
