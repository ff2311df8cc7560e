"""SIGKILL at every step boundary and in the middle of every step; re-runs converge exactly once.

One data folder goes through a chain of ``stockpipe run`` processes, each armed with the next
fault (``STOCKPIPE_FAULT_*``, see ``stockpipe/faults.py``) and killed there, so each run
is also the recovery run of the kill before it. The module fixture records what every kill left
behind; the tests check it, then check the end state against the uninterrupted run
(``embedded_run``: same symbols and day): identical gold, every simulated bar exactly once.

- Ingest side (cheap): every run is a full ``stockpipe run`` (so the producer re-sends the whole
  day each time: duplicates across producer sessions, which silver must fold).
- Warehouse side: a full ``stockpipe run`` is killed mid-clean; after that each run resumes from
  the interrupted step (``--steps``, what an Airflow task retry does) to keep Spark starts down;
  the last run is a full ``stockpipe run`` again over all that state.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from stockpipe.contract.layout import BatchId
from tests.e2e_helpers import (
    DAY,
    RUN_ARGS,
    SYMBOLS,
    gold_snapshot,
    run_cli,
    stockpipe_env,
    stop_embedded_broker,
)
from tests.fixtures.faults import (
    all_offsets,
    assert_gold_exactly_once,
    broker_bootstrap,
    bronze_data_files,
    bronze_offsets,
    committed_offsets,
    fact_rows,
    hidden_files,
    lake_dir,
    manifest_entries,
    output,
    silver_keys,
    silver_ledger,
    simulated_bar_keys,
    spool_batches,
    spool_offsets,
    table_exists,
    topic_ends,
    warehouse_rows,
)

# the whole chain runs in one module fixture, timed with the first test
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

KILLED = -signal.SIGKILL
BARS = 3 * 390  # RUN_ARGS: 3 symbols x one regular session of 1-minute bars
REST = {
    "Spark_Cleaning_Job": "Spark_Cleaning_Job,Upload_to_Snowflake,build_Models,quality_Models_test",
    "Upload_to_Snowflake": "Upload_to_Snowflake,build_Models,quality_Models_test",
    "build_Models": "build_Models,quality_Models_test",
    "quality_Models_test": "quality_Models_test",
}


@dataclass
class Phase:
    name: str
    fault: dict[str, str]
    proc: subprocess.CompletedProcess[str]
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chain:
    data_dir: Path
    phases: dict[str, Phase]
    final: subprocess.CompletedProcess[str]
    gold: dict[str, list[tuple[Any, ...]]]
    topic: dict[int, int]

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"


def _raw_rows(db: Path) -> int | None:
    if not table_exists(db, "raw", "stock_prices"):
        return None
    return int(warehouse_rows(db, "select count(*) from raw.stock_prices")[0][0])


def _gold_tables(db: Path) -> list[str]:
    rows = warehouse_rows(db, "select table_name from information_schema.tables where table_schema = 'gold'")
    return sorted(r[0] for r in rows)


@pytest.fixture(scope="module")
def kill_chain(tmp_path_factory: pytest.TempPathFactory, warm_spark_env: dict[str, str]) -> Iterator[Chain]:
    data = tmp_path_factory.mktemp("kill-chain")
    env = stockpipe_env(data, **warm_spark_env)
    db = data / "warehouse.duckdb"
    phases: dict[str, Phase] = {}

    def run(name: str, fault: dict[str, str], steps: str | None = None) -> Phase:
        args = RUN_ARGS if steps is None else ["run", "--steps", steps]
        phase = Phase(name, fault, run_cli(args, {**env, **fault}))
        phases[name] = phase
        return phase

    def topic() -> dict[int, int]:
        return topic_ends(broker_bootstrap(data))

    try:
        # ---- ingest side: full runs ----
        p = run("mid_produce", {"STOCKPIPE_FAULT_MID_PRODUCE": "500"})
        p.facts = {
            "topic": sum(topic().values()),
            "spool": spool_batches(data),
            "lake": lake_dir(data).exists(),
        }

        p = run("after_Kafka_Producer", {"STOCKPIPE_FAULT_AFTER_STEP_Kafka_Producer": "1"})
        p.facts = {"topic": sum(topic().values()), "spool": spool_batches(data)}

        p = run("mid_consume", {"STOCKPIPE_FAULT_AFTER_FILE_WRITE": "1"})
        ends = topic()
        p.facts = {
            "topic": ends,
            "spool": spool_batches(data),
            "committed": committed_offsets(broker_bootstrap(data), sorted(ends)),
        }

        p = run("after_Kafka_Consumer", {"STOCKPIPE_FAULT_AFTER_STEP_Kafka_Consumer": "1"})
        ends = topic()
        p.facts = {
            "topic": ends,
            "spool": spool_offsets(data),
            "committed": committed_offsets(broker_bootstrap(data), sorted(ends)),
        }

        p = run("mid_bronze_copy", {"STOCKPIPE_FAULT_BRONZE_MID_COPY": "1"})
        p.facts = {
            "topic": topic(),
            "spool": spool_offsets(data),
            "bronze_files": bronze_data_files(data),
            "hidden": hidden_files(lake_dir(data) / "bronze"),
            "manifest": manifest_entries(data),
        }

        p = run("after_Upload_to_HDFS", {"STOCKPIPE_FAULT_AFTER_STEP_Upload_to_HDFS": "1"})
        p.facts = {"topic": topic(), "spool": spool_batches(data), "bronze": bronze_offsets(data)}

        # ---- warehouse side ----
        session_record = lake_dir(data) / "silver" / "_state" / "spark-session.json"
        p = run("mid_clean", {"STOCKPIPE_FAULT_CLEAN": "after_staging"})
        p.facts = {
            "silver": silver_keys(data),
            "ledger": silver_ledger(data),
            "bronze": bronze_offsets(data),
            "session_record": session_record.exists(),
        }

        p = run(
            "after_Spark_Cleaning_Job",
            {"STOCKPIPE_FAULT_AFTER_STEP_Spark_Cleaning_Job": "1"},
            REST["Spark_Cleaning_Job"],
        )
        p.facts = {
            "silver": silver_keys(data),
            "ledger": silver_ledger(data),
            "raw": _raw_rows(db),
            "session_record": session_record.exists(),
        }

        p = run("mid_load", {"STOCKPIPE_FAULT_LOAD_MID_TRANSACTION": "1"}, REST["Upload_to_Snowflake"])
        p.facts = {
            "raw": _raw_rows(db),
            "load_state": (data / "state" / "warehouse_load_state.json").exists(),
        }

        p = run(
            "after_Upload_to_Snowflake",
            {"STOCKPIPE_FAULT_AFTER_STEP_Upload_to_Snowflake": "1"},
            REST["Upload_to_Snowflake"],
        )
        p.facts = {"raw": _raw_rows(db), "gold": _gold_tables(db)}

        p = run("mid_dbt_build", {"STOCKPIPE_FAULT_DBT_NODE_FINISHED": "4"}, REST["build_Models"])
        p.facts = {"gold": _gold_tables(db)}

        p = run("after_build_Models", {"STOCKPIPE_FAULT_AFTER_STEP_build_Models": "1"}, REST["build_Models"])
        p.facts = {"gold": _gold_tables(db), "facts": len(fact_rows(db))}

        run(
            "after_quality_Models_test",
            {"STOCKPIPE_FAULT_AFTER_STEP_quality_Models_test": "1"},
            REST["quality_Models_test"],
        )

        final = run_cli(RUN_ARGS, env)
        yield Chain(data, phases, final, gold_snapshot(db) if final.returncode == 0 else {}, topic())
    finally:
        stop_embedded_broker(env)


def _killed(chain: Chain, name: str, code: int = KILLED) -> Phase:
    phase = chain.phases[name]
    assert phase.proc.returncode == code, (
        f"{name}: exit {phase.proc.returncode}\n{output(phase.proc)[-3000:]}"
    )
    return phase


def test_the_final_rerun_succeeds(kill_chain: Chain) -> None:
    assert kill_chain.final.returncode == 0, output(kill_chain.final)[-4000:]


def test_gold_after_every_kill_equals_the_uninterrupted_run(
    kill_chain: Chain, embedded_run: dict[str, Any]
) -> None:
    assert kill_chain.gold, "the final run failed"
    assert kill_chain.gold == embedded_run["gold_first"]


def test_no_bar_lost_or_duplicated_in_silver_or_gold(kill_chain: Chain) -> None:
    expected = simulated_bar_keys(tuple(SYMBOLS.split(",")), date.fromisoformat(DAY))
    assert len(expected) == BARS
    assert_gold_exactly_once(kill_chain.duckdb_path, expected)
    keys = silver_keys(kill_chain.data_dir)
    assert len(keys) == len(set(keys)) == BARS
    assert _raw_rows(kill_chain.duckdb_path) == BARS


def test_every_record_of_the_topic_is_in_bronze_exactly_once(kill_chain: Chain) -> None:
    """Eight producer sessions sent the day again and again; bronze mirrors the topic 1:1."""
    ends = kill_chain.topic
    assert sum(ends.values()) == 500 + 7 * BARS  # the mid-produce kill, six more full runs, the last
    assert bronze_offsets(kill_chain.data_dir) == all_offsets(ends)
    assert spool_batches(kill_chain.data_dir) == []
    names = [p.name[: -len(".json")] for p in manifest_entries(kill_chain.data_dir)]
    assert sorted(names) == sorted(p.name for p in bronze_data_files(kill_chain.data_dir))
    assert hidden_files(lake_dir(kill_chain.data_dir) / "bronze") == []  # the half copy is gone too
    staging = lake_dir(kill_chain.data_dir) / "silver" / "_staging"
    assert not staging.exists() or not any(staging.iterdir())  # the killed clean's staging too


def test_kill_mid_produce_leaves_a_partial_batch_that_silver_folds(kill_chain: Chain) -> None:
    facts = _killed(kill_chain, "mid_produce").facts
    assert facts["topic"] == 500  # delivered before the kill; the other 670 never sent
    assert facts["spool"] == []
    assert facts["lake"] is False
    # the restarted producer re-sent the whole day (all 1,170, the 500 included)
    assert kill_chain.phases["after_Kafka_Producer"].facts["topic"] == 500 + BARS


def test_kill_at_every_step_boundary_keeps_what_the_step_committed(kill_chain: Chain) -> None:
    phases = kill_chain.phases
    # after Kafka_Producer: the bars are in the topic, nothing consumed yet
    facts = _killed(kill_chain, "after_Kafka_Producer").facts
    assert facts["spool"] == []
    # after Kafka_Consumer: the spool holds the whole topic once and the offsets are committed
    facts = _killed(kill_chain, "after_Kafka_Consumer").facts
    assert facts["spool"] == all_offsets(facts["topic"])
    assert facts["committed"] == facts["topic"]
    # after Upload_to_HDFS: the spool is empty and bronze holds the whole topic once
    facts = _killed(kill_chain, "after_Upload_to_HDFS").facts
    assert facts["spool"] == []
    assert facts["bronze"] == all_offsets(facts["topic"])
    # after Spark_Cleaning_Job: silver has every bar once, nothing is loaded yet
    facts = _killed(kill_chain, "after_Spark_Cleaning_Job").facts
    assert len(facts["silver"]) == len(set(facts["silver"])) == BARS
    assert len(facts["ledger"]) == 1
    assert not facts["raw"]
    # after Upload_to_Snowflake: raw holds every bar once, gold not built yet
    facts = _killed(kill_chain, "after_Upload_to_Snowflake").facts
    assert facts["raw"] == BARS
    assert "fact_stock" not in facts["gold"]
    # after build_Models: every gold table is there with every bar
    facts = _killed(kill_chain, "after_build_Models").facts
    assert {"dim_companies", "dim_date", "fact_stock", "mart_daily_ohlcv"} <= set(facts["gold"])
    assert facts["facts"] == BARS
    _killed(kill_chain, "after_quality_Models_test")
    assert phases["after_quality_Models_test"].fault  # every phase was armed with its own fault


def test_kill_between_spool_write_and_offset_commit(kill_chain: Chain) -> None:
    """The consumer wrote one spool file and died before committing it: the re-run neither
    loses nor re-writes those records (it seeks past what the spool already holds)."""
    facts = _killed(kill_chain, "mid_consume").facts
    (written,) = facts["spool"]
    assert facts["committed"].get(written.partition, -1) <= written.last  # not committed
    after = kill_chain.phases["after_Kafka_Consumer"].facts
    assert after["spool"] == all_offsets(after["topic"])  # the re-run completed it exactly once


def test_kill_mid_bronze_copy_leaves_no_visible_partial_file(kill_chain: Chain) -> None:
    facts = _killed(kill_chain, "mid_bronze_copy").facts
    assert facts["bronze_files"] == []  # readers see nothing
    assert facts["manifest"] == []
    assert [p.name.startswith(".") and p.name.endswith(".tmp") for p in facts["hidden"]] == [True]
    assert facts["spool"] == all_offsets(facts["topic"])  # nothing left the spool
    after = kill_chain.phases["after_Upload_to_HDFS"].facts
    assert after["bronze"] == all_offsets(after["topic"])


def test_kill_mid_clean_write_changes_no_silver(kill_chain: Chain) -> None:
    facts = _killed(kill_chain, "mid_clean", code=137).facts  # the fault exits like SIGKILL (137)
    assert facts["silver"] == []  # staged, never swapped in
    assert facts["ledger"] == []  # so every bronze file is still to be cleaned
    after = kill_chain.phases["after_Spark_Cleaning_Job"].facts
    assert len(after["silver"]) == len(set(after["silver"])) == BARS
    # the killed Connect client's session record stays for the next run, which takes it over
    assert facts["session_record"] is True
    assert after["session_record"] is False


def test_kill_mid_load_transaction_loads_nothing(kill_chain: Chain) -> None:
    facts = _killed(kill_chain, "mid_load", code=97).facts  # LOAD_MID_TRANSACTION exits with 97
    assert facts["raw"] == 0  # rolled back: the table exists (DDL committed) but holds no row
    assert facts["load_state"] is False
    assert kill_chain.phases["after_Upload_to_Snowflake"].facts["raw"] == BARS


def test_kill_between_two_dbt_models_then_rebuild(kill_chain: Chain) -> None:
    gold = _killed(kill_chain, "mid_dbt_build").facts["gold"]
    assert gold, "killed before any gold model was built"
    assert not {"mart_daily_ohlcv", "mart_sector_daily"} <= set(gold), "killed after the last model"
    assert kill_chain.phases["after_build_Models"].facts["facts"] == BARS


def test_every_bronze_file_name_is_a_contiguous_offset_range(kill_chain: Chain) -> None:
    by_part: dict[int, list[BatchId]] = {}
    for f in bronze_data_files(kill_chain.data_dir):
        b = BatchId.parse(f.name)
        by_part.setdefault(b.partition, []).append(b)
    for part, batches in by_part.items():
        batches.sort()
        assert batches[0].first == 0, part
        for a, b in itertools.pairwise(batches):
            assert b.first == a.last + 1, (part, a, b)
