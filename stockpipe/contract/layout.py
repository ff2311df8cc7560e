"""Where every layer lives and how its files are named. All stages import these helpers.

Lake (``Settings.lake_root``, a URI)::

    bronze/<topic>/ingest_date=YYYY-MM-DD/<topic>+<cluster>+<partition>+<first>+<last>.parquet
    bronze/_manifest/<topic>/<batch file name>.json      one entry per published file
    silver/stock_prices/trade_date=YYYY-MM-DD/*.parquet   clean intraday bars (see docs/architecture.md)
    silver/stock_prices_daily/trade_month=YYYY-MM/*.parquet  clean daily bars, one folder per month
    silver/quarantine/ingest_date=YYYY-MM-DD/*.parquet    rejected records with reasons
    silver/companies/*.parquet                            companies reference data
    silver/_state/                                        the cleaning job's ledger

Local data folder (``Settings.data_dir``)::

    spool/            consumer output waiting for upload (same file names as bronze)
    state/            broker state file, locks, load state, run summaries
    warehouse.duckdb  the embedded warehouse
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from stockpipe.contract.bar import INTRADAY_INTERVALS
from stockpipe.contract.silver import DAILY_INTERVALS, DAILY_PARTITION, SILVER_PARTITION

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_SUFFIX = ".parquet"
_BATCH_RE = re.compile(
    r"^(?P<topic>[A-Za-z0-9._-]+)\+(?P<cluster>[0-9a-f]{12})\+(?P<partition>\d{5})"
    r"\+(?P<first>\d{20})\+(?P<last>\d{20})\.parquet$"
)


def cluster_tag(cluster_id: str) -> str:
    """12 hex chars naming a Kafka cluster in file names (offsets only mean something per cluster)."""
    return hashlib.sha1(cluster_id.encode(), usedforsecurity=False).hexdigest()[:12]


@dataclass(frozen=True, order=True)
class BatchId:
    """One partition's contiguous offset range ``[first, last]`` — the identity of a raw file.

    ``cluster`` is ``cluster_tag(<Kafka cluster id>)``: offsets restart on a new cluster (or a
    restarted in-memory embedded broker), so the cluster is part of a record's identity.
    """

    topic: str
    cluster: str
    partition: int
    first: int
    last: int

    @property
    def file_name(self) -> str:
        return (
            f"{self.topic}+{self.cluster}+{self.partition:05d}"
            f"+{self.first:020d}+{self.last:020d}{BATCH_SUFFIX}"
        )

    @classmethod
    def parse(cls, name: str) -> BatchId:
        m = _BATCH_RE.match(name.rsplit("/", 1)[-1])
        if not m:
            raise ValueError(f"{name!r} is not a stockpipe batch file name")
        return cls(m["topic"], m["cluster"], int(m["partition"]), int(m["first"]), int(m["last"]))


def raw_record_schema() -> pa.Schema:
    """Arrow schema of spool and bronze files: the Kafka record, value kept verbatim."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("topic", pa.string(), nullable=False),
            pa.field("partition", pa.int32(), nullable=False),
            pa.field("offset", pa.int64(), nullable=False),
            pa.field("kafka_ts", pa.timestamp("ms", tz="UTC")),
            pa.field("key", pa.binary()),
            pa.field("value", pa.binary()),
        ]
    )


def bronze_dir(lake_root: str, topic: str) -> str:
    return f"{lake_root}/bronze/{topic}"


def bronze_file(lake_root: str, topic: str, ingest_date: str, batch: BatchId) -> str:
    return f"{bronze_dir(lake_root, topic)}/ingest_date={ingest_date}/{batch.file_name}"


def bronze_manifest_dir(lake_root: str, topic: str) -> str:
    return f"{lake_root}/bronze/_manifest/{topic}"


def silver_dir(lake_root: str, dataset: str) -> str:
    """``dataset`` is one of ``stock_prices``, ``stock_prices_daily``, ``quarantine``, ``companies``,
    ``_state``, ``_staging``."""
    return f"{lake_root}/silver/{dataset}"


SILVER_LAYOUT_VERSION = 2  # 1: every bar under stock_prices/trade_date=D; 2: daily bars by month
_PARTITION_DIR_RE = re.compile(r"^(?P<column>[a-z_]+)=(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?$")


@dataclass(frozen=True)
class PriceDataset:
    """One silver dataset of bars: its folder under ``silver/``, partition column and intervals.

    Both datasets have the silver row contract (``contract.silver``). Intraday bars are
    partitioned by ``trade_date`` (kept in the folder name only); daily bars by the month of
    ``trade_date`` (``trade_month=YYYY-MM``; ``trade_date`` stays a column of their files), so a
    20-year daily history makes 240 folders, not 5,000, and a late daily bar rewrites one month.
    """

    name: str
    partition: str
    daily: bool

    @property
    def intervals(self) -> tuple[str, ...]:
        """The bar intervals this dataset holds (the two datasets partition the interval table)."""
        return DAILY_INTERVALS if self.daily else INTRADAY_INTERVALS

    def value(self, trade_date: date) -> str:
        """The partition value of a trade date: ``YYYY-MM-DD``, or its first 7 characters
        (``YYYY-MM``) for daily bars (the Spark job takes the same prefix of the ISO date)."""
        iso = trade_date.isoformat()
        return iso[:7] if self.daily else iso

    def folder(self, trade_date: date) -> str:
        """The partition folder name of a trade date, e.g. ``trade_month=2024-03``."""
        return f"{self.partition}={self.value(trade_date)}"


INTRADAY_PRICES = PriceDataset("stock_prices", SILVER_PARTITION, daily=False)
DAILY_PRICES = PriceDataset("stock_prices_daily", DAILY_PARTITION, daily=True)
PRICE_DATASETS: tuple[PriceDataset, ...] = (INTRADAY_PRICES, DAILY_PRICES)


def price_dataset(interval: str) -> PriceDataset:
    """The dataset a bar of ``interval`` belongs to."""
    return DAILY_PRICES if interval in DAILY_INTERVALS else INTRADAY_PRICES


def partition_span(folder: str) -> tuple[str, date, date] | None:
    """``column=YYYY-MM-DD`` (a day) or ``column=YYYY-MM`` (a month) as ``(column, first day, end)``,
    ``end`` exclusive; None for any other name."""
    m = _PARTITION_DIR_RE.match(folder)
    if not m:
        return None
    try:
        if m["day"] is not None:
            first = date(int(m["year"]), int(m["month"]), int(m["day"]))
            return m["column"], first, first + timedelta(days=1)
        first = date(int(m["year"]), int(m["month"]), 1)
    except ValueError:
        return None
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return m["column"], first, following
