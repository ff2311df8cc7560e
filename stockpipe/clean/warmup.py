"""Warm-up cleans on a scratch lake: a new local Spark server compiles the clean job before real bars need it.

Measured on a new local Spark Connect server (2 cores): the clean steps of a live stream's first
four cycles with bars took 12.6, 4.6, 3.7 and 2.8 s; the JIT is still compiling Spark's planner
and the job's generated code while the first batches run. A stream's idle cycles (nothing new in
bronze; a trades stream has a whole minute of them before its first bar) spend up to
``spark.warm_up_rounds`` rounds on the real ``run_clean`` over a scratch data folder: each round
writes one spool file of bars (the companies reference's symbols, one session, shifted per round
so later rounds merge with earlier silver rows, plus two bad records for the quarantine path),
uploads it and cleans it with the stream's session. The real lake is never read or written.

Only with the local Connect server: its JVM runs on this machine, sees the scratch folder and
outlives the stream, so later commands find it warm too. A failed round is logged and ends the
warm-up; it never stops the stream.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockpipe.clean.companies import read_companies
from stockpipe.clean.job import run_clean
from stockpipe.contract.bar import Bar
from stockpipe.contract.layout import BatchId, cluster_tag
from stockpipe.ingest.spool import PartitionBuffer, batch_table, write_batch
from stockpipe.lake.bronze import upload_spool
from stockpipe.sources.companies import reference_path

if TYPE_CHECKING:
    from stockpipe.settings import Settings

log = logging.getLogger(__name__)
CLUSTER_ID = "stockpipe-warm-up"
SESSION_START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # a regular XNYS session
SYMBOLS = 20
BARS_PER_SYMBOL = 10
BAD_RECORDS: tuple[tuple[bytes, bytes], ...] = ((b"BAD", b"not json"), (b"BAD", b"{}"))


def applies(settings: Settings) -> bool:
    """True when warm-up rounds run: some are configured and Spark is the local Connect server."""
    sp = settings.spark
    return sp.warm_up_rounds > 0 and sp.remote is None and sp.mode == "connect"


def round_records(symbols: list[str], round_no: int, produced_at: datetime) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` records of round ``round_no`` (bars 5 minutes later than the last round's)."""
    out: list[tuple[bytes, bytes]] = []
    for symbol in symbols:
        for i in range(BARS_PER_SYMBOL):
            price = 100.0 + i
            bar = Bar(
                symbol=symbol,
                interval="1min",
                bar_ts=SESSION_START + timedelta(minutes=5 * round_no + i),
                open=price,
                high=price + 1,
                low=price - 1,
                close=price + 0.5,
                volume=100 * (i + 1),
                source="warm-up",
                produced_at=produced_at,
            )
            out.append((bar.key(), bar.to_json_bytes()))
    return [*out, *BAD_RECORDS]


class WarmUp:
    """The warm-up rounds left for one stream (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.left = settings.spark.warm_up_rounds if applies(settings) else 0
        self.seconds: list[float] = []
        self._dir: Path | None = None

    @property
    def pending(self) -> bool:
        return self.left > 0

    def scratch_settings(self) -> Settings:
        """``settings`` with a scratch data folder and the lake inside it."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="stockpipe-warm-up-"))
        lake = self.settings.lake.model_copy(update={"root": None})
        return self.settings.model_copy(update={"data_dir": self._dir, "lake": lake})

    def run_round(self, spark: Any) -> float | None:
        """One warm-up clean with ``spark``; its seconds, or None when it failed (warm-up ends)."""
        if not self.pending:
            return None
        started = time.perf_counter()
        try:
            self._round(spark)
        except Exception:
            log.warning("Spark warm-up round failed; the stream goes on without it.", exc_info=True)
            self.left = 0
            self.close()
            return None
        seconds = time.perf_counter() - started
        self.seconds.append(seconds)
        self.left -= 1
        log.info("Spark warm-up round %d: %.1fs", len(self.seconds), seconds)
        if not self.left:
            self.close()
        return seconds

    def _round(self, spark: Any) -> None:
        scratch = self.scratch_settings()
        reference = reference_path(self.settings)
        symbols = sorted(c.symbol for c in read_companies(reference))[:SYMBOLS] or ["AAPL"]
        now = datetime.now(UTC)
        records = round_records(symbols, len(self.seconds), now)
        first = len(self.seconds) * 10_000
        n = len(records)
        buf = PartitionBuffer()
        stamp = int(now.timestamp() * 1000)
        keys, values = [k for k, _ in records], [v for _, v in records]
        buf.extend(list(range(first, first + n)), [stamp] * n, list(keys), list(values))
        topic = scratch.kafka.topic
        batch = BatchId(topic, cluster_tag(CLUSTER_ID), 0, first, first + n - 1)
        write_batch(scratch.spool_dir, batch, batch_table(topic, 0, buf, CLUSTER_ID))
        upload_spool(scratch)
        run_clean(scratch, spark=spark, companies_csv=reference, with_companies=False)

    def close(self) -> None:
        """Remove the scratch folder."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
