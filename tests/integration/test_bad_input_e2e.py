"""Bad input end to end: good bars mixed with 20+ kinds of bad records straight on the topic.

The plan (``tests.fixtures.faults.bad_input_plan``) is produced with ``produce_raw``, then
``stockpipe run --steps Kafka_Consumer,…,quality_Models_test`` runs the rest of the pipeline
(the ``bad_input_run`` session fixture). Every good bar must reach gold exactly once with its
values, every bad record must be in quarantine with its reason, the counts must add up, and the
run must finish with every dbt test passing.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from stockpipe.orchestration.status import layer_counts
from tests.fixtures.faults import (
    BadInputRun,
    fact_rows,
    quarantine_rows,
    silver_keys,
    warehouse_rows,
)
from tests.fixtures.warehouse import clean_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_run_finishes_with_every_dbt_test_passing(bad_input_run: BadInputRun) -> None:
    run = bad_input_run.run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    m = re.search(r"quality_Models_test\s+passed=(\d+), warned=(\d+), failed=(\d+)", run.stdout)
    assert m, run.stdout[-2000:]
    assert int(m[1]) > 0
    assert int(m[3]) == 0


def test_the_plan_covers_at_least_fifteen_kinds_of_bad_record(bad_input_run: BadInputRun) -> None:
    kinds = {r.kind for r in bad_input_run.plan.bad} | {"oversize"}
    assert len(kinds) >= 15, sorted(kinds)
    assert bad_input_run.produced.failed == 0, bad_input_run.produced.first_error


def test_a_message_over_the_size_limit_is_refused_and_reported(bad_input_run: BadInputRun) -> None:
    """The producer refuses it before sending; the refusal is counted and explained, not raised."""
    oversize = bad_input_run.oversize
    assert (oversize.sent, oversize.failed) == (0, 1)
    assert "bytes was refused" in oversize.first_error
    assert "too large" in oversize.first_error.lower()
    keys = {r["key"] for r in quarantine_rows(bad_input_run.data_dir)}
    assert "bad:oversize" not in keys  # never reached the topic


def test_every_good_bar_reaches_gold_exactly_once_with_its_values(bad_input_run: BadInputRun) -> None:
    expected = bad_input_run.plan.expected_gold()
    rows = fact_rows(bad_input_run.duckdb_path)
    assert len({r[0] for r in rows}) == len(rows), "duplicate fact_stock ids"
    got = Counter((r[1], r[2]) for r in rows)
    assert [k for k, n in got.items() if n > 1] == []
    assert set(got) == set(expected)
    values = {(r[1], r[2]): tuple(r[3:]) for r in rows}
    for key, want in expected.items():
        assert values[key] == pytest.approx(want), key  # the correction won, epoch times converted


def test_unknown_symbol_is_quarantined_and_never_reaches_gold(bad_input_run: BadInputRun) -> None:
    """A bar of a symbol missing from the companies reference is quarantined as unknown_symbol
    (the default policy), so gold holds no symbol without reference data."""
    keys = {r["key"]: list(r["failed_rules"]) for r in quarantine_rows(bad_input_run.data_dir)}
    assert keys["bad:unknown_symbol"] == ["unknown_symbol"]
    rows = warehouse_rows(
        bad_input_run.duckdb_path,
        "select symbol, has_reference_data, name from gold.dim_companies where symbol in ('ZZZZ', 'AAPL')",
    )
    companies = {r[0]: r[1:] for r in rows}
    assert "ZZZZ" not in companies
    assert companies["AAPL"][0] is True
    assert companies["AAPL"][1]  # the listed company keeps its reference data
    orphans = warehouse_rows(
        bad_input_run.duckdb_path,
        "select count(*) from gold.fact_stock f left join gold.dim_companies c on f.company_id = c.symbol "
        "where c.symbol is null or not c.has_reference_data",
    )
    assert orphans == [(0,)]


def test_every_bad_record_is_quarantined_once_with_its_reason(bad_input_run: BadInputRun) -> None:
    rows = quarantine_rows(bad_input_run.data_dir)
    by_key: dict[str, list[list[str]]] = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(list(r["failed_rules"]))
    for record in bad_input_run.plan.bad:
        key = record.key.decode() if record.key else ""
        found = by_key.get(key)
        assert found is not None, f"{record.kind}: not in quarantine"
        assert len(found) == 1, f"{record.kind}: quarantined {len(found)} times"
        assert record.rule in found[0], f"{record.kind}: expected {record.rule}, got {found[0]}"
    assert len(rows) == len(bad_input_run.plan.bad), "a good record was quarantined"
    payloads = {r["key"]: r["raw_payload"] for r in rows}
    assert payloads["bad:tombstone"] is None
    not_json = next(r.value for r in bad_input_run.plan.bad if r.kind == "not_json")
    assert not_json is not None
    assert payloads["bad:not_json"] == not_json.decode()  # the raw payload is kept verbatim


def test_counts_add_up_silver_plus_quarantine_plus_duplicates_equals_bronze(
    bad_input_run: BadInputRun,
) -> None:
    plan = bad_input_run.plan
    settings = clean_settings(data_dir=bad_input_run.data_dir)
    layers = layer_counts(settings)
    sent = len(plan.records)
    good_records = sum(1 for r in plan.records if r.rule is None)
    expected_rows = len(plan.expected_gold())
    assert layers.bronze_records == sent
    assert layers.silver_rows == expected_rows == len(set(silver_keys(bad_input_run.data_dir)))
    assert layers.quarantine_rows == len(plan.bad)
    duplicates = layers.bronze_records - layers.silver_rows - layers.quarantine_rows
    assert duplicates == good_records - expected_rows == 2  # the exact re-delivery and the superseded bar
    assert layers.gold_fact_rows == expected_rows
    # the run's own step line and summary say the same
    out = " ".join(bad_input_run.run.stdout.split())
    step_counts = r"[\s│]*".join(  # the summary table may wrap the counts cell
        [
            f"bronze_records={sent:,},",
            f"silver_rows={expected_rows:,},",
            f"quarantined={len(plan.bad):,},",
            f"duplicates_dropped={duplicates:,}",
        ]
    )
    assert re.search(step_counts, out), out[-3000:]
    assert re.search(rf"gold fact_stock rows\s*│\s*{expected_rows:,}", bad_input_run.run.stdout)
    status = " ".join(bad_input_run.status.stdout.split())
    assert bad_input_run.status.returncode == 0
    assert re.search(rf"quarantined records │ {len(plan.bad):,} ", status), status


def test_quarantine_counts_by_rule_reach_the_warehouse(bad_input_run: BadInputRun) -> None:
    rows = warehouse_rows(
        bad_input_run.duckdb_path, "select rule, sum(records) from raw.quarantine_summary group by 1"
    )
    by_rule = dict(rows)
    lake = Counter(rule for r in quarantine_rows(bad_input_run.data_dir) for rule in r["failed_rules"])
    assert by_rule == dict(lake)
    for record in bad_input_run.plan.bad:
        assert by_rule.get(record.rule, 0) >= 1, record.rule
