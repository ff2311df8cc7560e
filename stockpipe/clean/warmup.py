"""Warm a fresh Spark up on a synthetic batch, so the first real batches do not pay for it.

A new Spark JVM (the local Connect server, or a classic session) runs its first clean about ten
times slower than its tenth, and its second to fifth still two to three times slower: Spark's
generated code and the JVM's JIT compile the job's plan and Catalyst's own code as they are
used (docs/benchmarks.md). A live source brings one small batch per minute, so its JIT would
stay cold for many minutes; ``stream`` runs these rounds before the source connects instead of
making the first minutes of live bars wait for a cold JVM.

``WarmUp.round`` runs the real cleaning job (``run_clean``) on a scratch lake under the state
folder: two symbols' simulated bars of one session, delivered again every round (so the
deduplication against silver runs), plus one record that is not JSON (so the quarantine write
runs). ``close`` deletes the scratch folder. Nothing reaches the real lake, ledger or warehouse.

Only a Spark that reads the local scratch folder is warmed (``can_warm_up``): the local Connect
server or a classic session on a ``local`` master; a remote Connect URL or a cluster is left alone.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from stockpipe.clean.job import load_reference, run_clean
from stockpipe.clean.session import is_local_master
from stockpipe.contract.layout import BatchId, cluster_tag
from stockpipe.ingest.spool import PartitionBuffer, batch_table, write_batch
from stockpipe.lake.bronze import upload_spool
from stockpipe.sources.base import SourceOptions
from stockpipe.sources.companies import reference_path
from stockpipe.sources.simulator import SimulatorSource

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from stockpipe.settings import Settings

log = logging.getLogger(__name__)
SCRATCH_DIR = "spark-warmup"
WARM_ENOUGH_SECONDS = 1.0
"""A round at most this long: the JIT has compiled the job's hot code, more rounds gain little.

On this project's 2-core test machine, 20 back-to-back rounds on a new local server took 14.4 s
at the 1st, 1.9-2.2 s at the 3rd-6th, 1.3-1.6 s at the 7th-14th and 1.1-1.4 s at the 15th-20th;
20 more stopped at the 10th, at 1.0 s (measured). A new server runs every round asked for; a warm
one, or a faster machine, stops sooner."""
CLUSTER_ID = "stockpipe-warmup"
SESSION = date(2024, 3, 4)  # any past NYSE session: the bars only have to be valid
SYMBOLS = 2
NOT_JSON = b"stockpipe warm-up: not a bar"


def can_warm_up(settings: Settings) -> bool:
    """True when the Spark these settings use runs on this machine (it can read the scratch lake)."""
    return settings.spark.remote is None and is_local_master(settings.spark.master)


class WarmUp:
    """Rounds of the cleaning job on a synthetic batch in ``<state_dir>/spark-warmup``."""

    def __init__(self, settings: Settings) -> None:
        scratch = settings.state_dir / SCRATCH_DIR
        shutil.rmtree(scratch, ignore_errors=True)
        self.scratch = scratch
        self.settings = settings.model_copy(
            update={"data_dir": scratch, "lake": settings.lake.model_copy(update={"root": None})}
        )
        self.companies_csv = reference_path(settings)
        known = [c.symbol for c in load_reference(settings).companies][:SYMBOLS]
        source = SimulatorSource(SourceOptions(symbols=tuple(known), start=SESSION, end=SESSION))
        bars = list(source.bars())
        self._keys: list[bytes | None] = [*(b.key() for b in bars), None]
        self._values: list[bytes | None] = [*(b.to_json_bytes() for b in bars), NOT_JSON]
        self.rounds: list[float] = []

    def round(self, spark: SparkSession) -> float:
        """One cleaning run on the batch delivered once more; its seconds."""
        started = time.perf_counter()
        n = len(self._values)
        first = len(self.rounds) * n
        topic = self.settings.kafka.topic
        buf = PartitionBuffer()
        stamp = int(time.time() * 1000)
        buf.extend(list(range(first, first + n)), [stamp] * n, self._keys, self._values)
        batch = BatchId(topic, cluster_tag(CLUSTER_ID), 0, first, first + n - 1)
        write_batch(self.settings.spool_dir, batch, batch_table(topic, 0, buf, CLUSTER_ID))
        upload_spool(self.settings)
        run_clean(self.settings, spark=spark, companies_csv=self.companies_csv, with_companies=False)
        self.rounds.append(time.perf_counter() - started)
        return self.rounds[-1]

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def warm_up(
    settings: Settings,
    spark: SparkSession,
    rounds: int,
    *,
    stop: Callable[[], bool] | None = None,
    on_round: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Up to ``rounds`` rounds, fewer once one takes at most ``WARM_ENOUGH_SECONDS``; their seconds.

    Never raises: a failed round is logged and ends the warm-up (a cold Spark still works).
    ``stop()`` true ends it early; ``on_round(done, seconds)`` reports each round.
    """
    if rounds <= 0 or not can_warm_up(settings):
        return []
    warm: WarmUp | None = None
    try:
        warm = WarmUp(settings)
        for done in range(1, rounds + 1):
            seconds = warm.round(spark)
            log.info("Spark warm-up round %d/%d: %.1fs", done, rounds, seconds)
            if on_round is not None:
                on_round(done, seconds)
            if seconds <= WARM_ENOUGH_SECONDS or (stop is not None and stop()):
                break
    except Exception:
        log.warning("Spark warm-up stopped after an error", exc_info=True)
    finally:
        if warm is not None:
            warm.close()
    return list(warm.rounds) if warm is not None else []
