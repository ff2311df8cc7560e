"""The dbt project stands alone: dbt's own CLI builds the same gold as ``stockpipe transform``.

The real ``dbt`` executable runs ``build`` and ``docs generate`` with the committed
``dbt/profiles.yml`` and no ``--vars``, in a folder where ``STOCKPIPE_DATA_DIR`` is relative
(as for a user in their project folder), against a copy of the shared warehouse whose gold and
staging schemas were dropped. Every gold table then equals the one stockpipe built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.e2e_helpers import REPO_ROOT
from tests.fixtures.warehouse import BuiltWarehouse, clone_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DBT = Path(sys.executable).with_name("dbt")
PROJECT = REPO_ROOT / "dbt"


def run_dbt(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(DBT), *args,
        "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
        "--target-path", str(cwd / "target"), "--log-path", str(cwd / "logs"),
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def gold_tables(path: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'gold' order by 1"
            ).fetchall()
        ]
        return {n: con.execute(f'select * from gold."{n}" order by all').df() for n in names}


def test_dbt_cli_builds_the_same_gold_as_stockpipe(duckdb_warehouse: BuiltWarehouse, tmp_path: Path) -> None:
    work = tmp_path / "project"
    clone = clone_warehouse(duckdb_warehouse, work)
    with duckdb.connect(str(clone.settings.duckdb_path)) as con:
        con.execute("drop schema gold cascade")
        con.execute("drop schema staging cascade")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STOCKPIPE_", "DBT_"))}
    env["STOCKPIPE_DATA_DIR"] = "data"  # relative: resolved against the folder dbt runs in
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    assert (work / "data" / "warehouse.duckdb") == clone.settings.duckdb_path

    built = run_dbt(["build"], work, env)
    assert built.returncode == 0, built.stdout[-4000:]
    run_results = json.loads((work / "target" / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in run_results["results"]}
    assert "model.stockpipe.fact_stock" in statuses
    assert set(statuses.values()) <= {"success", "pass"}, statuses

    expected = gold_tables(duckdb_warehouse.settings.duckdb_path)
    actual = gold_tables(clone.settings.duckdb_path)
    assert set(actual) == set(expected) >= {"dim_date", "dim_companies", "fact_stock", "mart_daily_ohlcv"}
    for name, frame in expected.items():
        assert len(frame) > 0, name
        pd.testing.assert_frame_equal(actual[name], frame, check_exact=True, obj=name)

    docs = run_dbt(["docs", "generate"], work, env)
    assert docs.returncode == 0, docs.stdout[-4000:]
    catalog = json.loads((work / "target" / "catalog.json").read_text())
    assert "model.stockpipe.fact_stock" in catalog["nodes"]
    assert catalog["nodes"]["model.stockpipe.fact_stock"]["metadata"]["schema"] == "gold"
