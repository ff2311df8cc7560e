"""Benchmark of the clean step: stockpipe ``run_clean`` vs DuckDB SQL vs the seed's per-file approach.

    .venv/bin/python benchmarks/bench_clean.py        # 1M and 10M rows in 50k-record files, 1M in 5k and 1k
    .venv/bin/python benchmarks/bench_clean.py --config 3000000:50000 --no-report
    .venv/bin/python benchmarks/bench_clean.py --config 10000000:50000 --modes classic,connect

For each configuration, bronze files of realistic bar JSON are generated (50,000 records per file
is the consumer's default flush size; a streaming consumer flushing every few seconds writes
smaller files, hence the 5,000- and 1,000-record configurations (``stockpipe stream`` at 125
bars/s and 5 s cycles writes a few hundred records per file); 50 symbols of 1-minute bars over consecutive
weekdays; ~4% bad records of four kinds and ~0.5% exact re-deliveries), then on the same files:

* **stockpipe**: ``run_clean`` (parse, validate, quarantine, dedup, partitioned silver write,
  journal + swaps) on a warm local Spark session (``local[*]``, after a 1M-row warm-up run,
  ``--warmup-rows``), fresh lake; with ``--modes classic,connect`` also on stockpipe's local
  Spark Connect server (same options and driver memory, its own warm-up), on the same bronze files;
* **DuckDB**: the same transformation as one SQL script (parse JSON, validate, dedup, write
  partitioned Parquet) - the single-machine limit;
* **seed**: the seed's pattern - for each file a Spark read and a ``count()``, a chain of
  ``union``s, then the same cleaning and write - on a subset of the files when there are many,
  extrapolated per file and labelled so.

Results go to ``docs/benchmarks.md`` (section ``clean``) and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_section
from stockpipe.clean import connect_server
from stockpipe.clean.session import get_spark, spark_conf, stop_spark
from stockpipe.contract.layout import (
    BatchId,
    bronze_file,
    bronze_manifest_dir,
    cluster_tag,
    raw_record_schema,
)
from stockpipe.daemon import free_port
from stockpipe.settings import Settings

TOPIC = "stock-prices"
PER_FILE = 50_000
SYMBOLS = [f"S{i:03d}" for i in range(50)]
MINUTES = 390
WARM_UP_ROWS = 1_000_000
MODES = ("classic", "connect")  # stockpipe's Spark modes (``--modes``); classic always runs first


@dataclass
class Timing:
    name: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def trading_days(n: int, start: date = date(2020, 1, 2)) -> list[date]:
    days: list[date] = []
    d = start
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def faulty_bar(
    i: int,
    symbol: str,
    interval: str,
    ts: str,
    o: float,
    c: float,
    *,
    spread: float,
    volume: int,
    source: str,
    produced: str,
) -> bytes:
    """Bar number ``i`` as JSON, with the fault mix every clean benchmark uses (by ``i % 97``):
    13 not JSON, 29 high below low, 41 negative volume, 53 a timestamp without its offset."""
    hi, lo = max(o, c) + spread, min(o, c) - spread
    kind = i % 97
    if kind == 13:
        return b'{"symbol": "' + symbol.encode() + b'", "oops'
    if kind == 29:
        hi = lo - 1.0
    vol = -5 if kind == 41 else volume
    doc = (
        f'{{"symbol":"{symbol}","interval":"{interval}","bar_ts":"{ts}","open":{o:.2f},"high":{hi:.2f},'
        f'"low":{lo:.2f},"close":{c:.2f},"volume":{vol},"source":"{source}",'
        f'"produced_at":"{produced}","schema_version":1}}'
    )
    if kind == 53:
        doc = doc.replace(f'"bar_ts":"{ts}"', f'"bar_ts":"{ts[:-6]}"')
    return doc.encode()


def _bar(i: int, days: list[date]) -> bytes:
    sym = SYMBOLS[i % len(SYMBOLS)]
    m = i // len(SYMBOLS)
    day = days[m // MINUTES]
    minute = 570 + m % MINUTES
    base = 50.0 + (i % 997) * 0.25
    ts = f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00-05:00"
    produced = f"{day.isoformat()}T{minute // 60 + 5:02d}:{minute % 60:02d}:01.250000Z"
    return faulty_bar(
        i, sym, "1min", ts, base, base + ((i * 7919) % 21 - 10) * 0.01, spread=0.05,
        volume=1000 + (i % 50_000), source="simulator", produced=produced,
    )  # fmt: skip


def write_bronze_file(
    lake: Path, values: list[bytes], keys: list[bytes], batch: BatchId, ingest: datetime, cluster_id: str
) -> Path:
    """One bronze file in the consumer's layout, and its manifest entry (``bench_daily`` too)."""
    n = len(values)
    lake_uri = lake.as_uri()
    path = Path(bronze_file(lake_uri, TOPIC, ingest.date().isoformat(), batch).removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "topic": pa.array([TOPIC] * n),
            "partition": pa.array([0] * n, pa.int32()),
            "offset": pa.array(range(batch.first, batch.first + n), pa.int64()),
            "kafka_ts": pa.array([ingest] * n, pa.timestamp("ms", tz="UTC")),
            "key": pa.array(keys, pa.binary()),
            "value": pa.array(values, pa.binary()),
        },
        schema=raw_record_schema(),
    )
    pq.write_table(table, path)
    manifest = Path(bronze_manifest_dir(lake_uri, TOPIC).removeprefix("file://"))
    manifest.mkdir(parents=True, exist_ok=True)
    entry = {
        "file": batch.file_name,
        "path": str(path),
        "topic": TOPIC,
        "cluster_id": cluster_id,
        "partition": 0,
        "first_offset": batch.first,
        "last_offset": batch.last,
        "records": n,
        "bytes": path.stat().st_size,
        "sha256": "",
        "ingest_date": ingest.date().isoformat(),
        "uploaded_at": datetime.now(UTC).isoformat(),
    }
    (manifest / f"{batch.file_name}.json").write_text(json.dumps(entry))
    return path


def generate(lake: Path, rows: int, per_file: int = PER_FILE) -> list[Path]:
    """Bronze files + manifest entries for ``rows`` records (bars numbered 0..rows-1)."""
    days = trading_days(rows // (len(SYMBOLS) * MINUTES) + 2)
    files: list[Path] = []
    cluster = cluster_tag("bench")
    offset = 0
    ingest = datetime(2024, 1, 1, tzinfo=UTC)
    for start in range(0, rows, per_file):
        n = min(per_file, rows - start)
        values = [_bar(i, days) for i in range(start, start + n)]
        for j in range(199, n, 199):  # exact re-delivery of the previous record
            values[j] = values[j - 1]
        keys = [SYMBOLS[i % len(SYMBOLS)].encode() for i in range(start, start + n)]
        batch = BatchId(TOPIC, cluster, 0, offset, offset + n - 1)
        day = ingest + timedelta(days=start // 1_000_000)
        files.append(write_bronze_file(lake, values, keys, batch, day, "bench"))
        offset += n
    return files


@dataclass
class DuckResult:
    seconds: float
    silver: int
    quarantined: int


DUCKDB_SQL = """
CREATE TEMP TABLE v AS
WITH src AS (
  SELECT topic, "partition", "offset", kafka_ts, decode(key) AS key, decode(value) AS raw,
         regexp_extract(filename, '[^/]+$') AS bronze_file,
         CAST(regexp_extract(filename, 'ingest_date=([0-9-]+)/', 1) AS DATE) AS ingest_date
  FROM read_parquet($files, filename = true)
), p AS (
  SELECT *, json_valid(raw) AS valid,
         CASE WHEN json_valid(raw) THEN json_type(raw) = 'OBJECT' END AS is_obj,
         CASE WHEN json_valid(raw) AND json_type(raw) = 'OBJECT' THEN json_extract_string(raw,
           ['$.symbol','$.interval','$.bar_ts','$.open','$.high','$.low','$.close','$.volume',
            '$.source','$.produced_at','$.schema_version']) END AS f
  FROM src
), t AS (
  SELECT *, upper(trim(f[1])) AS symbol, f[2] AS interval, f[3] AS bar_ts_raw,
         TRY_CAST(f[4] AS DOUBLE) AS open, TRY_CAST(f[5] AS DOUBLE) AS high,
         TRY_CAST(f[6] AS DOUBLE) AS low, TRY_CAST(f[7] AS DOUBLE) AS close,
         TRY_CAST(f[8] AS BIGINT) AS volume, f[9] AS source, f[10] AS produced_at_raw,
         TRY_CAST(f[11] AS INTEGER) AS schema_version,
         CASE WHEN regexp_full_match(f[3], '-?[0-9]{1,15}') THEN
           CASE WHEN abs(CAST(f[3] AS BIGINT)) < 100000000000 THEN to_timestamp(CAST(f[3] AS BIGINT))
                ELSE epoch_ms(CAST(f[3] AS BIGINT))::TIMESTAMPTZ END
         ELSE try_strptime(regexp_replace(f[3], 'Z$', '+00:00'),
                           ['%Y-%m-%dT%H:%M:%S%z', '%Y-%m-%dT%H:%M:%S.%f%z']) END AS bar_ts,
         try_strptime(regexp_replace(f[10], 'Z$', '+00:00'),
                      ['%Y-%m-%dT%H:%M:%S%z', '%Y-%m-%dT%H:%M:%S.%f%z']) AS produced_at
  FROM p
), r AS (
  SELECT *,
    CASE WHEN raw IS NULL THEN ['tombstone'] WHEN NOT valid THEN ['not_json']
         WHEN NOT is_obj THEN ['not_object'] ELSE list_filter([
      CASE WHEN f[1] IS NULL THEN 'missing_symbol' END, CASE WHEN f[2] IS NULL THEN 'missing_interval' END,
      CASE WHEN f[3] IS NULL THEN 'missing_bar_ts' END, CASE WHEN f[4] IS NULL THEN 'missing_open' END,
      CASE WHEN f[5] IS NULL THEN 'missing_high' END, CASE WHEN f[6] IS NULL THEN 'missing_low' END,
      CASE WHEN f[7] IS NULL THEN 'missing_close' END, CASE WHEN f[8] IS NULL THEN 'missing_volume' END,
      CASE WHEN f[9] IS NULL THEN 'missing_source' END,
      CASE WHEN f[10] IS NULL THEN 'missing_produced_at' END,
      CASE WHEN f[11] IS NULL THEN 'missing_schema_version' END,
      CASE WHEN f[4] IS NOT NULL AND open IS NULL THEN 'bad_type_open' END,
      CASE WHEN f[5] IS NOT NULL AND high IS NULL THEN 'bad_type_high' END,
      CASE WHEN f[6] IS NOT NULL AND low IS NULL THEN 'bad_type_low' END,
      CASE WHEN f[7] IS NOT NULL AND close IS NULL THEN 'bad_type_close' END,
      CASE WHEN f[8] IS NOT NULL AND volume IS NULL THEN 'bad_type_volume' END,
      CASE WHEN least(open, high, low, close) <= 0 THEN 'price_not_positive' END,
      CASE WHEN volume < 0 THEN 'volume_negative' END,
      CASE WHEN high < low THEN 'high_below_low' END,
      CASE WHEN open < low OR open > high THEN 'open_outside_range' END,
      CASE WHEN close < low OR close > high THEN 'close_outside_range' END,
      CASE WHEN interval NOT IN ('1min','5min','15min','30min','60min','1day') THEN 'unknown_interval' END,
      CASE WHEN NOT regexp_full_match(symbol, '[A-Z][A-Z0-9.\\-]{0,14}') THEN 'bad_symbol' END,
      CASE WHEN schema_version <> 1 THEN 'unknown_schema_version' END,
      CASE WHEN regexp_full_match(bar_ts_raw, '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+')
             OR regexp_full_match(produced_at_raw, '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+')
           THEN 'timestamp_without_offset' END,
      CASE WHEN bar_ts_raw IS NOT NULL AND bar_ts IS NULL
            AND NOT regexp_full_match(bar_ts_raw, '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+')
           THEN 'bad_type_bar_ts' END,
      CASE WHEN bar_ts < TIMESTAMPTZ '1990-01-01 00:00:00+00' OR bar_ts > now() + INTERVAL 1 DAY
           THEN 'bar_ts_out_of_range' END
    ], lambda x: x IS NOT NULL) END AS failed_rules
  FROM t
)
SELECT * EXCLUDE (f, valid, is_obj) FROM r;

COPY (
  SELECT symbol, interval, bar_ts, open, high, low, close, volume, source, produced_at, schema_version,
         CAST(timezone('America/New_York', bar_ts) AS DATE) AS trade_date,
         interval = '1day' OR (dayofweek(timezone('America/New_York', bar_ts)) BETWEEN 1 AND 5
           AND strftime(timezone('America/New_York', bar_ts), '%H:%M') >= '09:30'
           AND strftime(timezone('America/New_York', bar_ts), '%H:%M') < '16:00') AS is_regular_session,
         topic AS kafka_topic, "partition" AS kafka_partition, "offset" AS kafka_offset, kafka_ts,
         ingest_date, bronze_file
  FROM v WHERE len(failed_rules) = 0
  QUALIFY row_number() OVER (PARTITION BY symbol, interval, bar_ts
                             ORDER BY produced_at DESC, "partition" DESC, "offset" DESC, bronze_file DESC) = 1
) TO '$out/silver' (FORMAT parquet, PARTITION_BY (trade_date));

COPY (
  SELECT topic AS kafka_topic, "partition" AS kafka_partition, "offset" AS kafka_offset, kafka_ts, key,
         raw AS raw_payload, failed_rules, bronze_file, now() AS quarantined_at, ingest_date
  FROM v WHERE len(failed_rules) > 0
) TO '$out/quarantine' (FORMAT parquet, PARTITION_BY (ingest_date));
"""


def duckdb_clean(files: list[Path], out: Path, threads: int) -> DuckResult:
    """The clean transformation as DuckDB SQL over the same bronze files."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    listing = "[" + ", ".join("'" + str(f) + "'" for f in files) + "]"
    sql = DUCKDB_SQL.replace("$files", listing).replace("$out", str(out))
    started = time.perf_counter()
    for statement in sql.split(";"):
        if statement.strip():
            con.execute(statement)
    seconds = time.perf_counter() - started
    silver = con.execute(f"SELECT count(*) FROM read_parquet('{out}/silver/**/*.parquet')").fetchone()
    quarantined = con.execute(
        f"SELECT count(*) FROM read_parquet('{out}/quarantine/**/*.parquet')"
    ).fetchone()
    con.close()
    return DuckResult(seconds, int(silver[0]) if silver else 0, int(quarantined[0]) if quarantined else 0)


def bench_stockpipe(
    spark: object, lake: Path, rows: int, mode: str = "classic"
) -> tuple[Timing, dict[str, int]]:
    from stockpipe.clean.job import run_clean

    settings = Settings(
        data_dir=lake.parent, lake={"root": lake.as_uri()}, spark={"unknown_symbols": "keep"}, _env_file=None
    )
    started = time.perf_counter()
    result = run_clean(settings, spark=spark, with_companies=False)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    stats = {
        "silver": result.silver_rows_written,
        "quarantined": result.quarantined,
        "duplicates": result.duplicates_dropped,
        "partitions": len(result.partitions_rewritten),
    }
    return Timing(f"stockpipe run_clean ({mode})", rows, seconds), stats


def bench_seed(spark: object, files: list[Path], out: Path, max_files: int) -> Timing:
    """Per file: read + count; chain of unions; then the same cleaning and a partitioned write."""
    from pyspark.sql import functions as F

    from stockpipe.clean import transforms

    subset = files[:max_files]
    started = time.perf_counter()
    union = None
    rows = 0
    for path in subset:
        df = spark.read.parquet("file://" + str(path))  # type: ignore[attr-defined]
        df = df.withColumn("bronze_file", F.col("_metadata.file_name")).withColumn(
            "ingest_date", F.regexp_extract(F.col("_metadata.file_path"), r"ingest_date=([0-9-]+)/", 1)
        )
        rows += df.count()
        union = df if union is None else union.union(df)
    assert union is not None
    raw = union
    validated = transforms.clean(raw)
    good, bad = transforms.split(validated)
    out_silver = str(out / "silver")
    transforms.deduplicate(good).write.mode("overwrite").partitionBy("trade_date").parquet(out_silver)
    bad.write.mode("overwrite").partitionBy("ingest_date").parquet(str(out / "quarantine"))
    seconds = time.perf_counter() - started
    total_files = len(files)
    if len(subset) < total_files:
        per_file = seconds / len(subset)
        return Timing(
            "seed pattern (per-file read+count, union chain)",
            rows * total_files // len(subset),
            per_file * total_files,
            f"extrapolated from {len(subset)} of {total_files} files",
        )
    return Timing("seed pattern (per-file read+count, union chain)", rows, seconds)


def warm_up(spark: object, workdir: Path, rows: int, mode: str) -> None:
    """One run first: JVM start and JIT warm-up are not what the benchmark measures."""
    root = workdir / f"warmup-{mode}"
    generate(root / "lake", rows)
    t, _ = bench_stockpipe(spark, root / "lake", rows, mode)
    print(f"[warm-up {mode}] {rows:,} rows in {t.seconds:.1f}s", flush=True)
    shutil.rmtree(root, ignore_errors=True)


def spark_options(driver_memory: str) -> dict[str, Any]:
    """The ``settings.spark`` of both modes: ``local[*]``, one shuffle partition per core."""
    return {"master": "local[*]", "driver_memory": driver_memory, "shuffle_partitions": os.cpu_count() or 2}


def local_spark(driver_memory: str, app_name: str) -> Any:
    """One ``local[*]`` session with the job's own Spark options (``bench_daily`` too)."""
    from pyspark.sql import SparkSession

    settings = Settings(_env_file=None, spark=spark_options(driver_memory))
    builder = SparkSession.builder.master("local[*]")
    conf = {**spark_conf(settings), "spark.ui.showConsoleProgress": "false", "spark.app.name": app_name}
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stop_local_spark(spark: Any) -> None:
    """Stop the session and end its JVM, so a Connect server started next has the memory to itself.

    ``spark.stop()`` leaves pyspark's gateway JVM running until Python exits; it ends when its
    stdin (pyspark's pipe to it) closes.
    """
    from pyspark import SparkContext

    spark.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    proc = getattr(gateway, "proc", None)
    if proc is not None and proc.stdin is not None:
        proc.stdin.close()
        proc.wait(timeout=120)
    SparkContext._gateway = None
    SparkContext._jvm = None


def connect_settings(workdir: Path, driver_memory: str) -> Settings:
    """``STOCKPIPE_SPARK_MODE=connect`` with the classic session's options, the server on a free port.

    ``session.spark_conf`` (so also ``spark.driver.memory``) reaches the server as its
    ``spark-submit --conf`` options (``connect_server.server_command``).
    """
    spark = {
        **spark_options(driver_memory),
        "mode": "connect",
        "connect_port": free_port(),
        "keep_warm": False,
    }
    return Settings(_env_file=None, data_dir=workdir / "connect-server", spark=spark)


@dataclass
class ConfigRun:
    """One configuration: its bronze (kept until every mode has cleaned it) and its timings."""

    rows: int
    per_file: int
    root: Path
    files: list[Path]
    stockpipe: dict[str, tuple[Timing, dict[str, int]]] = field(default_factory=dict)
    others: list[Timing] = field(default_factory=list)  # DuckDB, seed pattern


def prepare(workdir: Path, rows: int, per_file: int) -> ConfigRun:
    """Generate the configuration's bronze into ``<root>/bronze`` (a lake nothing cleans)."""
    root = workdir / f"r{rows}-{per_file}"
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    files = generate(root / "bronze", rows, per_file)
    print(f"[{rows:,}] generated {len(files)} bronze files in {time.perf_counter() - t0:.0f}s", flush=True)
    return ConfigRun(rows, per_file, root, files)


def run_stockpipe(spark: object, run: ConfigRun, mode: str) -> None:
    """``run_clean`` on a fresh lake holding the configuration's bronze (hard links to its files)."""
    lake = run.root / f"lake-{mode}"
    shutil.copytree(run.root / "bronze", lake, copy_function=os.link)
    timing, stats = bench_stockpipe(spark, lake, run.rows, mode)
    print(f"[{run.rows:,}] stockpipe ({mode}) {timing.seconds:.1f}s {stats}", flush=True)
    run.stockpipe[mode] = (timing, stats)
    shutil.rmtree(lake, ignore_errors=True)


def run_others(spark: object, run: ConfigRun, seed_files: int) -> None:
    """DuckDB and the seed pattern on the configuration's bronze files (once, whatever the modes)."""
    dk = duckdb_clean(run.files, run.root / "duckdb", threads=os.cpu_count() or 2)
    duck = Timing("DuckDB SQL (same transformation)", run.rows, dk.seconds, f"silver {dk.silver:,}")
    print(
        f"[{run.rows:,}] duckdb {duck.seconds:.1f}s silver={dk.silver} quarantined={dk.quarantined}",
        flush=True,
    )
    bench_seed(spark, run.files[:2], run.root / "seed-warmup", 2)  # same JIT warm-up as stockpipe got
    seed = bench_seed(spark, run.files, run.root / "seed", seed_files)
    print(f"[{run.rows:,}] seed {seed.seconds:.1f}s {seed.note}", flush=True)
    run.others = [duck, seed]
    for out in ("duckdb", "seed-warmup", "seed"):
        shutil.rmtree(run.root / out, ignore_errors=True)


def classic_phase(
    configs: list[tuple[int, int]], seed_files: int, workdir: Path, driver_memory: str, modes: list[str],
    warmup_rows: int,
) -> list[ConfigRun]:  # fmt: skip
    """The classic session: a warm-up, then per configuration stockpipe (if asked), DuckDB and seed."""
    spark = local_spark(driver_memory, "bench-clean")
    runs: list[ConfigRun] = []
    try:
        warm_up(spark, workdir, warmup_rows, "classic")
        for rows, per_file in configs:
            run = prepare(workdir, rows, per_file)
            runs.append(run)
            if "classic" in modes:
                run_stockpipe(spark, run, "classic")
            run_others(spark, run, seed_files)
            if "connect" not in modes:
                shutil.rmtree(run.root, ignore_errors=True)
    finally:
        stop_local_spark(spark)
    return runs


def connect_phase(runs: list[ConfigRun], workdir: Path, driver_memory: str, warmup_rows: int) -> None:
    """stockpipe's local Spark Connect server: the same warm-up, then ``run_clean`` per configuration.

    It runs after the classic session has stopped: pyspark switches a whole process to Connect
    once a Connect session exists, so the two cannot share this process.
    """
    settings = connect_settings(workdir, driver_memory)
    try:
        spark = get_spark(settings)
        warm_up(spark, workdir, warmup_rows, "connect")
        for run in runs:
            run_stockpipe(spark, run, "connect")
            shutil.rmtree(run.root, ignore_errors=True)
    finally:
        stop_spark()
        connect_server.stop_server(settings)


def table_rows(run: ConfigRun) -> list[str]:
    """The report's rows of one configuration: stockpipe per mode, then DuckDB and the seed."""
    timings = [(t, _stats_note(stats)) for t, stats in run.stockpipe.values()]
    timings += [(t, t.note) for t in run.others]
    return [
        f"| {run.rows:,} | {run.per_file:,} | {t.name} | {t.seconds:.1f} | {t.rate:,.0f} | {note} |"
        for t, note in timings
    ]


def _stats_note(stats: dict[str, int]) -> str:
    return (
        f"silver {stats['silver']:,}, quarantined {stats['quarantined']:,}, "
        f"duplicates {stats['duplicates']:,}, {stats['partitions']} partitions"
    )


def ratio_lines(run: ConfigRun) -> list[str]:
    """stockpipe (the first mode) against DuckDB and the seed; connect against classic when both ran."""
    mode, (sp, _) = next(iter(run.stockpipe.items()))
    duck, seed = run.others
    head = f"- {run.rows:,} rows in {len(run.files)} files:"
    lines = [
        f"{head} stockpipe ({mode}) / DuckDB time = {sp.seconds / duck.seconds:.1f}x; "
        f"seed / stockpipe ({mode}) time = {seed.seconds / sp.seconds:.1f}x"
    ]
    if len(run.stockpipe) == len(MODES):
        classic, connect = (run.stockpipe[m][0].seconds for m in MODES)
        lines.append(f"{head} connect / classic time = {connect / classic:.2f}x (goal ≤ 1.2x)")
    return lines


def report(runs: list[ConfigRun], modes: list[str], warmup_rows: int) -> str:
    connect = (
        f" Connect: stockpipe's local Spark Connect server (`local[*]`, the same Spark options and "
        f"driver memory), warmed up by its own {warmup_rows:,}-row run, started after the classic "
        "session and its JVM stopped (pyspark cannot hold both in one process)."
        if "connect" in modes
        else ""
    )
    lines = [
        "Bronze: ~4% bad records (4 kinds), ~0.5% exact re-deliveries; "
        f"50 symbols of 1-minute bars. Spark: one `local[*]` session, warmed up by a {warmup_rows:,}-row "
        "run first (JIT compilation of Spark's generated code costs ~10 s per query shape on this "
        f"machine).{connect} Each stockpipe run cleans a fresh lake holding the same bronze files; "
        "DuckDB and the seed pattern run once per configuration (classic session); DuckDB: one "
        "connection, all cores.",
        "",
        "| rows | records/file | engine | seconds | rows/s | note |",
        "|---:|---:|---|---:|---:|---|",
    ]
    ratios: list[str] = []
    for run in runs:
        lines += table_rows(run)
        ratios += ratio_lines(run)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    notes = [f"Load average (1, 5, 15 min) at the end: {load} - other processes share this machine's CPUs."]
    return "\n".join([*lines, "", *ratios, "", *notes])


def run(
    configs: list[tuple[int, int]], seed_files: int, workdir: Path, driver_memory: str,
    modes: list[str], warmup_rows: int = WARM_UP_ROWS,
) -> str:  # fmt: skip
    runs = classic_phase(configs, seed_files, workdir, driver_memory, modes, warmup_rows)
    if "connect" in modes:
        connect_phase(runs, workdir, driver_memory, warmup_rows)
    return report(runs, modes, warmup_rows)


def parse_modes(parser: argparse.ArgumentParser, raw: str) -> list[str]:
    modes = [m.strip() for m in raw.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        parser.error(f"--modes takes a comma list of {', '.join(MODES)} (got {raw!r})")
    return [m for m in MODES if m in modes]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config",
        action="append",
        metavar="ROWS:PER_FILE",
        help="bronze records and records per file (repeatable; default 1M:50k, 10M:50k, 1M:5k)",
    )
    parser.add_argument("--seed-files", type=int, default=20, help="files the seed pattern runs on")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument(
        "--modes",
        default="classic",
        help="stockpipe's Spark modes, comma list of classic,connect (default classic)",
    )
    parser.add_argument(
        "--warmup-rows", type=int, default=WARM_UP_ROWS, help="rows of each mode's warm-up run (default 1M)"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-report", action="store_true", help="print only, leave docs/benchmarks.md")
    args = parser.parse_args()
    modes = parse_modes(parser, args.modes)
    raw_configs = args.config or ["1000000:50000", "10000000:50000", "1000000:5000", "1000000:1000"]
    configs = [(int(c.split(":")[0]), int(c.split(":")[1])) for c in raw_configs]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-clean-"))
    body = run(configs, args.seed_files, workdir, args.driver_memory, modes, args.warmup_rows)
    command = ".venv/bin/python benchmarks/bench_clean.py" + (
        f" --modes {','.join(modes)}" if modes != ["classic"] else ""
    )
    text = f"## Clean (bronze → silver)\n\nCommand: `{command}`.\n\n{body}\n"
    print(text)
    if not args.no_report:
        write_section("clean", text)


if __name__ == "__main__":
    main()
