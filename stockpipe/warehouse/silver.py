"""Reading silver for the loader: list partitions, fingerprint them, read them normalised.

Filesystem-agnostic: the lake root is a URI resolved with fsspec (``file://``, ``hdfs://``,
``s3://`` ...; ``settings.lake.storage_options`` are passed through). A partition's fingerprint
is the sorted list of (file name, size) of its Parquet files (docs/architecture.md), hashed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from stockpipe.contract.layout import partition_span
from stockpipe.errors import StockpipeError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
    from fsspec import AbstractFileSystem

    from stockpipe.settings import Settings

WHOLE_TABLE = "*"  # partition key of an unpartitioned dataset (companies)


class SilverSchemaError(StockpipeError):
    """A silver file does not match the contract."""


@dataclass(frozen=True)
class SilverFile:
    path: str  # filesystem path (no scheme)
    name: str
    size: int


@dataclass(frozen=True)
class Partition:
    """One silver partition (or a whole unpartitioned dataset when ``value`` is None).

    ``value`` is the partition's first day and ``end`` the day after its last (a day:
    ``trade_date=2024-03-04``; a month: ``trade_month=2024-03`` spans 2024-03-01 to 2024-04-01).
    """

    key: str  # e.g. "trade_date=2024-03-04", "trade_month=2024-03", or WHOLE_TABLE
    value: date | None
    files: tuple[SilverFile, ...]
    end: date | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.files)


def fingerprint(files: tuple[SilverFile, ...] | list[SilverFile]) -> str:
    """sha256 of the sorted (file name, size) list."""
    pairs = sorted((f.name, f.size) for f in files)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


class SilverReader:
    """Lists and reads one lake's silver datasets."""

    def __init__(self, fs: AbstractFileSystem, root_path: str) -> None:
        self.fs = fs
        self.root_path = root_path.rstrip("/")
        self._arrow_fs: pafs.FileSystem | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SilverReader:
        import fsspec

        fs, path = fsspec.core.url_to_fs(settings.lake_root, **settings.lake.storage_options)
        return cls(fs, path)

    @property
    def arrow_fs(self) -> pafs.FileSystem:
        """A pyarrow filesystem for reads (native for local paths, fsspec-wrapped otherwise)."""
        if self._arrow_fs is None:
            import pyarrow.fs as pafs

            if self.is_local:
                self._arrow_fs = pafs.LocalFileSystem()
            else:
                self._arrow_fs = pafs.PyFileSystem(pafs.FSSpecHandler(self.fs))
        return self._arrow_fs

    @property
    def is_local(self) -> bool:
        """True when the lake is on the local filesystem (engines may then read the files directly)."""
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(self.fs, LocalFileSystem)

    def common_columns(self, partition: Partition) -> frozenset[str]:
        """Column names present in every file of a partition (from the Parquet footers only)."""
        import pyarrow.parquet as pq

        common: frozenset[str] | None = None
        for f in partition.files:
            try:
                names = frozenset(pq.read_schema(f.path, filesystem=self.arrow_fs).names)
            except (OSError, ValueError) as exc:
                raise SilverSchemaError(f"Cannot read silver file {f.path}: {exc}.") from exc
            common = names if common is None else common & names
        return common or frozenset()

    def dataset_path(self, dataset: str) -> str:
        return f"{self.root_path}/silver/{dataset}"

    def _ls(self, path: str) -> list[dict[str, Any]]:
        try:
            entries: list[dict[str, Any]] = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        return entries

    def _parquet_files(self, path: str) -> tuple[SilverFile, ...]:
        files = []
        for entry in self._ls(path):
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") != "file" or name.startswith(("_", ".")) or not name.endswith(".parquet"):
                continue
            files.append(SilverFile(str(entry["name"]), name, int(entry["size"])))
        return tuple(sorted(files, key=lambda f: f.name))

    def partitions(self, dataset: str, column: str) -> list[Partition]:
        """The ``<column>=YYYY-MM-DD`` (or ``=YYYY-MM``) partitions of a dataset that hold Parquet files."""
        result = []
        for entry in self._ls(self.dataset_path(dataset)):
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            span = partition_span(name)
            if entry.get("type") != "directory" or span is None or span[0] != column:
                continue
            files = self._parquet_files(str(entry["name"]))
            if files:
                result.append(Partition(name, span[1], files, span[2]))
        return sorted(result, key=lambda p: p.key)

    def whole(self, dataset: str) -> Partition | None:
        """An unpartitioned dataset as one partition (None when it has no Parquet files)."""
        files = self._parquet_files(self.dataset_path(dataset))
        return Partition(WHOLE_TABLE, None, files) if files else None

    def read_file(self, file: SilverFile, columns: list[str] | None = None) -> pa.Table:
        import pyarrow.parquet as pq

        try:
            return pq.read_table(file.path, columns=columns, filesystem=self.arrow_fs, partitioning=None)
        except (OSError, ValueError) as exc:
            raise SilverSchemaError(f"Cannot read silver file {file.path}: {exc}.") from exc

    def read_normalized(self, partition: Partition, schema: pa.Schema, constants: dict[str, Any]) -> pa.Table:
        """All files of a partition as one table of exactly ``schema`` (types cast, order fixed).

        ``constants`` fill columns a file lacks (the partition column Spark keeps in the path,
        ``loaded_at``); any other missing column is a ``SilverSchemaError``.
        """
        import pyarrow as pa

        tables = [normalize(self.read_file(f), schema, constants, f.path) for f in partition.files]
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def quarantine_summary(self, partition: Partition, schema: pa.Schema) -> pa.Table:
        """``ingest_date, rule, records`` of one quarantine partition (a record counts once per rule)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        counts: dict[str, int] = {}
        for file in partition.files:
            rules = self.read_file(file, ["failed_rules"]).column("failed_rules")
            flat = pc.list_flatten(rules.combine_chunks())
            if len(flat) == 0:
                continue
            for row in pa.table({"rule": flat}).group_by("rule").aggregate([("rule", "count")]).to_pylist():
                if row["rule"] is not None:
                    counts[row["rule"]] = counts.get(row["rule"], 0) + int(row["rule_count"])
        rules_sorted = sorted(counts)
        return pa.table(
            {
                "ingest_date": pa.array([partition.value] * len(rules_sorted), pa.date32()),
                "rule": pa.array(rules_sorted, pa.string()),
                "records": pa.array([counts[r] for r in rules_sorted], pa.int64()),
            },
            schema=schema,
        )


def normalize(table: pa.Table, schema: pa.Schema, constants: dict[str, Any], source: str) -> pa.Table:
    """Select, cast and order ``table``'s columns to ``schema``; see ``read_normalized``."""
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            if col.type != field.type:
                try:
                    # timestamps: naive (e.g. Spark INT96) means UTC; sub-microsecond digits dropped
                    col = col.cast(field.type, safe=not pa.types.is_timestamp(field.type))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SilverSchemaError(
                        f"Column {field.name} of silver file {source} has type {col.type}, "
                        f"which does not convert to {field.type}."
                    ) from exc
        elif field.name in constants:
            col = pa.chunked_array([pa.repeat(pa.scalar(constants[field.name], field.type), table.num_rows)])
        else:
            raise SilverSchemaError(f"Silver file {source} has no column {field.name}.")
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)
