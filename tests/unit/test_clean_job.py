"""The clean step end to end on a local lake (in-process, the session-scoped local Spark)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from stockpipe.clean import job
from stockpipe.clean import session as session_mod
from stockpipe.clean.companies import write_companies
from stockpipe.clean.job import run_clean
from stockpipe.clean.transforms import QUARANTINE_COLUMNS, SILVER_COLUMNS
from stockpipe.contract.layout import PRICE_DATASETS
from stockpipe.errors import StateFileError, StockpipeError
from stockpipe.settings import Settings
from tests.fixtures.spark import SPARK_MODES, spark_in_mode
from tests.helpers_bronze import bar_json, local_path, ny, write_bronze, write_scenario


@pytest.fixture(params=SPARK_MODES)
def spark(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Every test of this module over a classic and over a Spark Connect session."""
    yield from spark_in_mode(request)


NOW = datetime(2024, 3, 10, tzinfo=UTC)


def clean(settings: Settings, spark: Any, **kw: Any) -> Any:
    return run_clean(settings, spark=spark, now=NOW, with_companies=False, **kw)


def silver_dir(settings: Settings, dataset: str) -> Path:
    return local_path(settings.lake_root) / "silver" / dataset


def silver_rows(spark: Any, settings: Settings) -> list[tuple[Any, ...]]:
    """Every silver row (both bar datasets) as a tuple in contract column order, sorted."""
    rows: list[tuple[Any, ...]] = []
    for ds in PRICE_DATASETS:
        path = silver_dir(settings, ds.name)
        if path.exists():
            rows += [tuple(r) for r in spark.read.parquet(str(path)).select(*SILVER_COLUMNS).collect()]
    return sorted(rows)


def quarantine_rows(spark: Any, settings: Settings) -> list[Any]:
    path = silver_dir(settings, "quarantine")
    if not path.exists():
        return []
    return (
        spark.read.parquet(str(path))
        .select(*QUARANTINE_COLUMNS)
        .orderBy("bronze_file", "kafka_offset")
        .collect()
    )


def fingerprints(settings: Settings) -> dict[str, list[tuple[str, int]]]:
    """Per silver partition: sorted (file name, size) of its Parquet files (docs/architecture.md)."""
    root = silver_dir(settings, "stock_prices")
    return {
        p.name: sorted((f.name, f.stat().st_size) for f in p.glob("*.parquet"))
        for p in sorted(root.glob("trade_date=*"))
    }


def test_a_checkpointed_batch_is_counted_by_its_observation_without_a_query_of_its_own(spark: Any) -> None:
    """The checkpoint's counts come from the pass that stores it, in both modes.

    pyspark's Connect ``localCheckpoint`` does not fill the ``Observation`` (``obs.get`` is empty);
    ``job._checkpoint_counts`` reads the frame's ``executionInfo`` there. Were that to stop
    working (a pyspark upgrade), the job would fall back to one more query per clean: this
    test says so first.
    """
    from pyspark import StorageLevel
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    obs = Observation(job.BATCH_COUNTS)
    df = spark.range(1000).select((F.col("id") % 7).alias("k"))
    observed = session_mod.observe_batch(df, obs, F.count(F.lit(1)).alias("n"), F.sum("k").alias("s"))
    observed.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
    assert job._checkpoint_counts(observed, obs) == {"n": 1000, "s": sum(i % 7 for i in range(1000))}


@pytest.mark.parametrize("way", ["checkpoint", "checkpoint-counted-by-a-query", "cache"])
def test_scenario_every_record_lands_once_with_its_rule(
    spark: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """Both ways of keeping the batch and staging the quarantine (``job.SMALL_BATCH_MAX_RECORDS``),
    and a checkpoint whose ``Observation`` did not report (counted by a query of its own)."""
    monkeypatch.setattr(job, "SMALL_BATCH_MAX_RECORDS", 0 if way == "cache" else 100_000)
    if way == "checkpoint-counted-by-a-query":
        monkeypatch.setattr(job, "_checkpoint_counts", lambda *_a: None)
    sc = write_scenario(settings.lake_root)
    result = clean(settings, spark)
    assert result.bronze_files == 3
    assert result.bronze_records == sc.records
    assert result.quarantined == sc.quarantined
    assert result.duplicates_dropped == sc.duplicates
    assert result.silver_rows_written == result.silver_rows_added == sc.silver_rows
    assert result.by_rule == dict(sc.by_rule)
    assert result.partitions_rewritten == sc.partitions

    rows = silver_rows(spark, settings)
    quarantine = quarantine_rows(spark, settings)
    # accounting, measured on disk: nothing silently lost
    assert len(rows) + len(quarantine) + result.duplicates_dropped == sc.records
    assert Counter(r["failed_rules"][0] for r in quarantine if len(r["failed_rules"]) == 1) >= Counter(
        {"not_json": 1, "not_object": 1, "tombstone": 1, "missing_close": 1, "bad_type_close": 1}
    )
    on_disk_rules = Counter(rule for r in quarantine for rule in r["failed_rules"])
    assert dict(on_disk_rules) == dict(sc.by_rule)
    keys = [(r[0], r[1], r[2]) for r in rows]
    assert len(keys) == len(set(keys)), "one row per (symbol, interval, bar_ts)"
    # the newer version of AAPL 09:31 (from file B) won over the original in file A
    aapl_0931 = [
        r
        for r in rows
        if r[0] == "AAPL" and r[2].astimezone(UTC) == datetime.fromisoformat(ny("2024-03-04", "09:31"))
    ]
    assert len(aapl_0931) == 1
    assert aapl_0931[0][SILVER_COLUMNS.index("close")] == 10.9
    assert aapl_0931[0][SILVER_COLUMNS.index("kafka_partition")] == 1
    # other zone and epoch ms were converted, not rejected
    minutes = {r[2].astimezone(UTC).strftime("%H:%M") for r in rows if r[0] == "AAPL"}
    assert {"14:40", "14:41"} <= minutes
    # quarantine rows keep the raw payload and their Kafka coordinates
    not_json = next(r for r in quarantine if r["failed_rules"] == ["not_json"])
    assert not_json["raw_payload"] == "not json"
    assert not_json["kafka_partition"] == 0
    assert not_json["ingest_date"] == date(2024, 3, 4)
    assert not_json["bronze_file"] == sc.files[0].batch.file_name


@pytest.mark.parametrize("policy", ["quarantine", "keep"])
def test_unknown_symbol_policy(spark: Any, settings: Settings, tmp_path: Path, policy: str) -> None:
    """The companies reference decides: a symbol it lacks is quarantined (default) or kept."""
    reference = tmp_path / "companies.csv"
    reference.write_text("Symbol,AssetType,Name,Description,Exchange,Sector,Industry\nAAPL,,Apple,,,,\n")
    settings.companies_file = reference
    settings.spark.unknown_symbols = policy  # type: ignore[assignment]
    write_bronze(settings.lake_root, [bar_json(symbol="AAPL"), bar_json(symbol="ZZZZ")])
    result = clean(settings, spark)
    symbols = sorted(r[0] for r in silver_rows(spark, settings))
    if policy == "quarantine":
        assert (symbols, result.quarantined, result.by_rule) == (["AAPL"], 1, {"unknown_symbol": 1})
        assert [list(r["failed_rules"]) for r in quarantine_rows(spark, settings)] == [["unknown_symbol"]]
    else:
        assert (symbols, result.quarantined) == (["AAPL", "ZZZZ"], 0)


def test_requested_symbols_outside_the_reference_are_warned_about(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from stockpipe.clean.companies import warn_unknown_symbols

    with caplog.at_level("WARNING", logger="stockpipe.clean.companies"):
        assert warn_unknown_symbols(settings, ("AAPL", " zzzz ", "QQQQ")) == ["QQQQ", "ZZZZ"]
    (record,) = caplog.records
    assert record.getMessage().startswith("QQQQ, ZZZZ not in the companies reference")
    assert 'stockpipe companies add QQQQ --name "QQQQ"' in record.getMessage()
    assert "STOCKPIPE_SPARK_UNKNOWN_SYMBOLS=keep" in record.getMessage()
    caplog.clear()
    assert warn_unknown_symbols(settings, ("AAPL", "MSFT")) == []
    settings.spark.unknown_symbols = "keep"
    assert warn_unknown_symbols(settings, ("ZZZZ",)) == []
    assert caplog.records == []


def test_silver_layout_is_partitioned_by_trade_date_one_file_each(spark: Any, settings: Settings) -> None:
    write_scenario(settings.lake_root)
    clean(settings, spark)
    fps = fingerprints(settings)
    assert list(fps) == ["trade_date=2024-03-04", "trade_date=2024-03-05", "trade_date=2024-03-06"]
    assert all(len(files) == 1 for files in fps.values())
    q = silver_dir(settings, "quarantine")
    assert sorted(p.name for p in q.iterdir() if p.is_dir()) == ["ingest_date=2024-03-04"]
    import pyarrow.parquet as pq

    schema = pq.read_schema(
        next((silver_dir(settings, "stock_prices") / "trade_date=2024-03-04").glob("*.parquet"))
    )
    assert schema.names == [c for c in SILVER_COLUMNS if c != "trade_date"]
    assert str(schema.field("bar_ts").type) == "timestamp[us, tz=UTC]"


def test_rerun_changes_nothing(spark: Any, settings: Settings) -> None:
    write_scenario(settings.lake_root)
    clean(settings, spark)
    before = (silver_rows(spark, settings), fingerprints(settings), quarantine_rows(spark, settings))
    again = clean(settings, spark)
    assert (again.bronze_files, again.bronze_records, again.partitions_rewritten) == (0, 0, [])
    after = (silver_rows(spark, settings), fingerprints(settings), quarantine_rows(spark, settings))
    assert after == before


def test_late_bar_rewrites_only_its_own_partition(spark: Any, settings: Settings) -> None:
    write_scenario(settings.lake_root)
    clean(settings, spark)
    before_rows = silver_rows(spark, settings)
    before = fingerprints(settings)
    late = bar_json(close=10.95, bar_ts=ny("2024-03-04", "09:31"), produced_at="2024-03-09T12:00:00Z")
    write_bronze(settings.lake_root, [late], ingest_date="2024-03-09", partition=2, first_offset=0)
    result = clean(settings, spark)
    assert result.partitions_rewritten == ["stock_prices/trade_date=2024-03-04"]
    assert (result.bronze_records, result.duplicates_dropped, result.silver_rows_added) == (1, 1, 0)
    after = fingerprints(settings)
    assert after["trade_date=2024-03-05"] == before["trade_date=2024-03-05"]
    assert after["trade_date=2024-03-06"] == before["trade_date=2024-03-06"]
    assert after["trade_date=2024-03-04"] != before["trade_date=2024-03-04"]
    rows = silver_rows(spark, settings)
    assert len(rows) == len(before_rows)
    changed = set(rows) - set(before_rows)
    assert [(r[0], r[SILVER_COLUMNS.index("close")]) for r in changed] == [("AAPL", 10.95)]


def test_old_redelivery_does_not_replace_a_newer_stored_bar(spark: Any, settings: Settings) -> None:
    write_bronze(settings.lake_root, [bar_json(close=10.6, produced_at="2024-03-04T15:00:00Z")])
    clean(settings, spark)
    stale = bar_json(close=10.1, produced_at="2024-03-04T14:00:00Z")
    write_bronze(settings.lake_root, [stale], ingest_date="2024-03-05", first_offset=1)
    result = clean(settings, spark)
    assert (result.duplicates_dropped, result.silver_rows_added) == (1, 0)
    assert [r[SILVER_COLUMNS.index("close")] for r in silver_rows(spark, settings)] == [10.6]


def test_only_new_bronze_files_are_read(spark: Any, settings: Settings) -> None:
    first = write_bronze(settings.lake_root, [bar_json()])
    assert clean(settings, spark).bronze_files == 1
    write_bronze(settings.lake_root, [bar_json(symbol="MSFT")], first_offset=1)
    # make the processed file unreadable: a second read of it would fail the run
    local_path(first.uri).write_bytes(b"garbage")
    result = clean(settings, spark)
    assert (result.bronze_files, result.bronze_records, result.silver_rows_added) == (1, 1, 1)
    ledger = sorted(silver_dir(settings, "_state").glob("ledger-*.json"))
    assert len(ledger) == 1
    assert len(json.loads(ledger[0].read_text())["files"]) == 2


def test_corrupt_ledger_is_an_error_naming_the_file(spark: Any, settings: Settings) -> None:
    write_bronze(settings.lake_root, [bar_json()])
    clean(settings, spark)
    ledger = next(silver_dir(settings, "_state").glob("ledger-*.json"))
    ledger.write_text("{not json")
    with pytest.raises(StateFileError, match=ledger.name):
        clean(settings, spark)
    assert len(silver_rows(spark, settings)) == 1


def test_manifest_entry_without_its_file_is_an_error(spark: Any, settings: Settings) -> None:
    f = write_bronze(settings.lake_root, [bar_json()])
    local_path(f.uri).unlink()
    with pytest.raises(StateFileError, match=re.escape(f.batch.file_name)):
        clean(settings, spark)


def test_corrupt_manifest_entry_is_an_error(spark: Any, settings: Settings) -> None:
    write_bronze(settings.lake_root, [bar_json()])
    entry = next((local_path(settings.lake_root) / "bronze" / "_manifest").rglob("*.json"))
    entry.write_text("[]")
    with pytest.raises(StateFileError, match="manifest entry"):
        clean(settings, spark)


def test_no_bronze_yet_is_a_clean_no_op(spark: Any, settings: Settings) -> None:
    result = clean(settings, spark)
    assert (result.bronze_files, result.silver_rows_written, result.quarantined) == (0, 0, 0)
    assert not silver_dir(settings, "stock_prices").exists()


def test_companies_csv_becomes_silver_companies_once(spark: Any, settings: Settings, tmp_path: Path) -> None:
    csv = tmp_path / "companies.csv"
    csv.write_text(
        "Symbol,AssetType,Name,Description,Exchange,Sector,Industry\n"
        ' aapl ,Common Stock,Apple Inc,"Phones, Macs",NASDAQ,TECHNOLOGY,ELECTRONIC COMPUTERS\n'
        "MSFT,Common Stock,Microsoft,,NASDAQ,TECHNOLOGY,SOFTWARE\n"
    )
    assert write_companies(settings, spark, csv) == 2
    path = silver_dir(settings, "companies")
    df = spark.read.parquet(str(path))
    assert df.columns == ["symbol", "asset_type", "name", "description", "exchange", "sector", "industry"]
    rows = {r["symbol"]: r for r in df.collect()}
    assert set(rows) == {"AAPL", "MSFT"}
    assert rows["AAPL"]["description"] == "Phones, Macs"
    assert rows["MSFT"]["description"] is None
    files = sorted(p.name for p in path.glob("*.parquet"))
    result = run_clean(settings, spark=spark, now=NOW, companies_csv=csv)
    assert result.companies_rows is None  # unchanged CSV: not rewritten
    assert sorted(p.name for p in path.glob("*.parquet")) == files
    csv.write_text(csv.read_text() + "IBM,Common Stock,IBM,,NYSE,TECHNOLOGY,SERVICES\n")
    assert run_clean(settings, spark=spark, now=NOW, companies_csv=csv).companies_rows == 3
    assert spark.read.parquet(str(path)).count() == 3


def test_companies_csv_without_a_symbol_column_is_an_error(
    spark: Any, settings: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "companies.csv"
    csv.write_text("Name,Sector\nApple,TECHNOLOGY\n")
    with pytest.raises(StockpipeError, match="has no Symbol column"):
        write_companies(settings, spark, csv)
    # the other columns are optional (empty when missing): one reader for every stage
    csv.write_text("Symbol,Name\nAAPL,Apple\n")
    assert write_companies(settings, spark, csv) == 1


# ---- session factory --------------------------------------------------------------------------


def test_get_spark_reuses_the_active_session(spark: Any, settings: Settings) -> None:
    assert session_mod.get_spark(settings) is spark


def test_spark_conf_for_local_and_cluster_masters(settings: Settings) -> None:
    local = session_mod.spark_conf(settings)
    assert local["spark.sql.session.timeZone"] == "UTC"
    assert local["spark.sql.sources.partitionOverwriteMode"] == "dynamic"
    assert local["spark.ui.enabled"] == "false"
    assert local["spark.sql.shuffle.partitions"] == str(settings.spark.shuffle_partitions)
    cluster = Settings(
        data_dir=settings.data_dir,
        spark={
            "master": "spark://10.0.0.5:7077",
            "conf": {"spark.executor.memory": "3g", "spark.executor.extraJavaOptions": "-Dx=1"},
        },
        _env_file=None,  # type: ignore[call-arg]
    )
    conf = session_mod.spark_conf(cluster)
    assert "spark.ui.enabled" not in conf
    assert conf["spark.executor.memory"] == "3g"
    assert conf["spark.executor.extraJavaOptions"] == f"{session_mod.JIT_OPTION} -Dx=1"
    assert conf["spark.driver.extraJavaOptions"] == session_mod.JIT_OPTION
    import sys

    assert conf["spark.pyspark.python"] == sys.executable


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("hdfs://nn:8020/lake", "hdfs://nn:8020/lake"),
        ("file:///srv/lake", "file:///srv/lake"),
        ("s3://bucket/lake", "s3a://bucket/lake"),
        ("/srv/lake/", "file:///srv/lake"),
    ],
)
def test_lake_uri_always_has_a_scheme(settings: Settings, root: str, expected: str) -> None:
    s = Settings(data_dir=settings.data_dir, lake={"root": root}, _env_file=None)  # type: ignore[call-arg]
    assert session_mod.lake_uri(s) == expected


def _fake_java(tmp_path: Path, version_line: str) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


@pytest.mark.parametrize(
    ("line", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023', 21),
    ],
)
def test_java_version_parsing(tmp_path: Path, line: str, major: int) -> None:
    home = _fake_java(tmp_path, line)
    assert session_mod.java_major_version(str(home / "bin" / "java")) == major


def test_old_or_missing_java_is_one_sentence_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_mod, "_java_checked", False)
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, 'java version "1.8.0_392"')))
    with pytest.raises(StockpipeError) as err:
        session_mod.check_java()
    assert "apt-get install openjdk-17-jre-headless" in str(err.value)
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(StockpipeError, match="Java 17 or newer"):
        session_mod.check_java()


# ---- crash leftovers and the partition swap ---------------------------------------------------


def test_leftover_staging_of_a_killed_run_is_discarded(spark: Any, settings: Settings) -> None:
    """A run killed before its journal was written left only staging: it must not leak into silver."""
    write_bronze(settings.lake_root, [bar_json()])
    junk = silver_dir(settings, "_staging") / "0123456789abcdef" / "stock_prices" / "trade_date=2024-03-04"
    junk.mkdir(parents=True)
    (junk / "part-00000-junk.parquet").write_bytes(b"half written")
    result = clean(settings, spark)
    assert result.silver_rows_written == 1
    assert not junk.exists()
    assert [
        p.name for p in (silver_dir(settings, "stock_prices") / "trade_date=2024-03-04").glob("*.parquet")
    ] != ["part-00000-junk.parquet"]
    assert len(silver_rows(spark, settings)) == 1


def test_a_killed_attempts_late_write_never_reaches_silver(
    spark: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Spark Connect server runs on the job a killed client sent and may commit its files late.

    Attempt 1 dies after staging (before its journal). Attempt 2, the rerun of the same bronze
    files, is interrupted after its own staging: there attempt 1's staged files appear again in
    attempt 1's staging folder, as a job still running on the server would commit them. Attempt 2
    must swap in only its own files: every bar once, one file per partition.
    """
    import shutil

    bars = [bar_json(symbol=s) for s in ("AAPL", "MSFT")]
    write_bronze(settings.lake_root, bars)
    staging_root = silver_dir(settings, "_staging")

    def killed(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("attempt 1 killed before its journal")

    monkeypatch.setattr(job, "write_journal", killed)
    with pytest.raises(RuntimeError, match="attempt 1 killed"):
        clean(settings, spark)
    monkeypatch.undo()
    (first,) = [p for p in staging_root.iterdir() if p.is_dir()]
    late = tmp_path / "late"
    shutil.copytree(first, late)
    assert list(late.rglob("*.parquet")), "attempt 1 staged no file"

    put_back: list[Path] = []

    def late_commit(point: str) -> None:
        if point == "after_staging":
            shutil.copytree(late, first, dirs_exist_ok=True)
            put_back.append(first)

    monkeypatch.setattr(job, "maybe_fault", late_commit)
    result = clean(settings, spark)

    assert put_back == [first], "attempt 2 never reached its staging point: nothing was simulated"
    assert result.silver_rows_written == 2
    assert len(silver_rows(spark, settings)) == 2
    days = list((silver_dir(settings, "stock_prices")).glob("trade_date=*"))
    assert [len(list(d.glob("*.parquet"))) for d in days] == [1]
    monkeypatch.undo()
    clean(settings, spark)  # the next run clears what the late write left in staging
    assert not first.exists()


def test_cli_clean_is_refused_while_a_pipeline_holds_the_data_folder(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stockpipe.cli import main
    from stockpipe.orchestration.lock import pipeline_lock

    write_bronze(settings.lake_root, [bar_json()])
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("sys.argv", ["stockpipe", "clean"])
    with pipeline_lock(settings, what="stream"), pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    assert "is in use by stockpipe stream (pid" in " ".join(capsys.readouterr().err.split())
    assert not silver_dir(settings, "_state").exists()  # refused before the clean began


@pytest.mark.parametrize("state", ["not_started", "old_moved_aside", "new_in_place", "done"])
def test_swap_partition_converges_from_every_intermediate_state(
    spark: Any, settings: Settings, state: str
) -> None:
    from stockpipe.clean.commit import swap_partition
    from stockpipe.lake.fs import LakeFS

    root = local_path(settings.lake_root)
    staged, final, aside = root / "staged" / "p", root / "final" / "p", root / "aside" / "p"
    for d, name in ((staged, "new"), (final, "old")):
        d.mkdir(parents=True)
        (d / f"{name}.parquet").write_text(name)
    if state in ("old_moved_aside", "new_in_place", "done"):
        aside.parent.mkdir(parents=True)
        final.rename(aside)
    if state in ("new_in_place", "done"):
        staged.rename(final)
    if state == "done":
        for f in aside.iterdir():
            f.unlink()
        aside.rmdir()
    fs = LakeFS(settings.lake_root)
    try:
        uri = settings.lake_root
        for _ in range(2):  # replaying is harmless
            swap_partition(fs, staged=f"{uri}/staged/p", final=f"{uri}/final/p", aside=f"{uri}/aside/p")
    finally:
        fs.close()
    assert sorted(p.name for p in final.iterdir()) == ["new.parquet"]
    assert not staged.exists()
    assert not aside.exists()


# ---- CLI ---------------------------------------------------------------------------------------


def test_cli_clean_prints_the_summary(
    spark: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from stockpipe.cli import app

    write_scenario(settings.lake_root)
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(app, ["clean"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for label in ("bronze records processed", "silver rows written", "quarantined: not_json", "seconds"):
        assert label in result.output
    assert "31" in result.output  # the scenario's bronze records
    assert len(silver_rows(spark, settings)) == 19


def test_cli_clean_error_is_one_sentence(
    spark: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stockpipe.cli import main

    write_bronze(settings.lake_root, [bar_json()])
    state = silver_dir(settings, "_state")
    state.mkdir(parents=True)
    (state / "ledger-0000000001.json").write_text("garbage")
    monkeypatch.setenv("STOCKPIPE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("sys.argv", ["stockpipe", "clean"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "ledger-0000000001.json is corrupt" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("state", ["not_started", "partly_copied", "copied", "staged_partly_deleted", "done"])
def test_swap_by_copy_converges_from_every_intermediate_state(settings: Settings, state: str) -> None:
    """The S3 swap (no rename: copy, marker, delete) replayed from each point a kill can leave."""
    from stockpipe.clean.commit import COPIED_SUFFIX, swap_partition
    from stockpipe.lake.fs import LakeFS

    root = local_path(settings.lake_root)
    staged, final = root / "staged" / "p", root / "final" / "p"
    marker = staged.parent / f"p{COPIED_SUFFIX}"
    staged.mkdir(parents=True)
    for name in ("a", "b"):
        (staged / f"{name}.parquet").write_text(f"new {name}")
    final.mkdir(parents=True)
    (final / "old.parquet").write_text("old")
    if state == "partly_copied":
        (final / "old.parquet").unlink()
        (final / "a.parquet").write_text("new a")
    if state in ("copied", "staged_partly_deleted", "done"):
        (final / "old.parquet").unlink()
        for f in staged.iterdir():
            (final / f.name).write_text(f.read_text())
        marker.write_bytes(b"")
    if state == "staged_partly_deleted":
        (staged / "a.parquet").unlink()
    if state == "done":
        for f in staged.iterdir():
            f.unlink()
        staged.rmdir()
    fs = LakeFS(settings.lake_root)
    fs.atomic_rename = False  # as on S3
    uri = settings.lake_root
    for _ in range(2):
        swap_partition(fs, staged=f"{uri}/staged/p", final=f"{uri}/final/p", aside=f"{uri}/aside/p")
    assert {p.name: p.read_text() for p in final.iterdir()} == {"a.parquet": "new a", "b.parquet": "new b"}
    assert not staged.exists()
    assert not marker.exists()


def test_lake_fs_rename_refuses_an_existing_target_and_write_atomic_replaces(settings: Settings) -> None:
    from stockpipe.lake.fs import LakeFS

    fs = LakeFS(settings.lake_root)
    uri = settings.lake_root
    fs.write_atomic(f"{uri}/s/x.json", b"1")
    fs.write_atomic(f"{uri}/s/x.json", b"2")
    assert fs.read_bytes(f"{uri}/s/x.json") == b"2"
    assert [e.name for e in fs.list(f"{uri}/s")] == ["x.json"]
    fs.write_bytes(f"{uri}/s/y.json", b"3")
    with pytest.raises(OSError, match="target exists"):
        fs.rename(f"{uri}/s/y.json", f"{uri}/s/x.json")
    fs.rename(f"{uri}/s", f"{uri}/t/s")
    assert [e.name for e in fs.list(f"{uri}/t/s")] == ["x.json", "y.json"]
    assert fs.list(f"{uri}/s") == []
