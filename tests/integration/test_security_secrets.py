"""No secret in output, logs, generated files or Airflow task logs.

The runs get unique sentinel values for the Snowflake password, the Alpha Vantage API key and
the Kafka SASL password (``tests.fixtures.faults.SENTINELS``); every byte they print or leave
behind is searched for them:

- a full pipeline run (the ``bad_input_run`` fixture runs the six steps after the producer with
  the sentinels set; the embedded broker is plaintext and simply ignores the SASL password);
- ``stockpipe config`` (masked);
- error paths: an unreachable SASL cluster through the CLI and through an Airflow task;
- Snowflake: load and dbt on fakesnow with the sentinel password (the password is really used:
  the committed dbt profile reads it from a ``DBT_ENV_SECRET_`` variable set for the dbt call).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e_helpers import REPO_ROOT, run_cli, stockpipe_env
from tests.fixtures.faults import SENTINEL_ENV, SENTINELS, BadInputRun, free_port, output
from tests.fixtures.warehouse import FakesnowServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SECRETS = tuple(SENTINELS.values())


def leaks(text: str) -> list[str]:
    return [name for name, value in SENTINELS.items() if value in text]


def files_with_secrets(root: Path) -> list[str]:
    """Every file under ``root`` (text or binary: logs, JSON, YAML, Parquet, DuckDB) with a sentinel."""
    needles = [v.encode() for v in SECRETS]
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.relative_to(root)}: {n.decode()}" for n in needles if n in data]
    return hits


def test_a_full_run_leaves_no_secret_in_output_logs_or_files(bad_input_run: BadInputRun) -> None:
    run, status = bad_input_run.run, bad_input_run.status
    assert run.returncode == 0, output(run)[-3000:]
    assert leaks(output(run)) == []
    assert leaks(output(status)) == []
    data = bad_input_run.data_dir
    dbt = data / "state" / "dbt"
    # the places a leak would land exist, so finding nothing there means something
    assert (dbt / "logs" / "dbt.log").stat().st_size > 0
    assert (dbt / "target" / "manifest.json").exists()
    assert (data / "state" / "broker.log").exists()
    profile = (REPO_ROOT / "dbt" / "profiles.yml").read_text()  # the committed profile is used
    assert "env_var('DBT_ENV_SECRET_STOCKPIPE_SNOWFLAKE_PASSWORD'" in profile
    assert not (dbt / "profiles.yml").exists()  # no generated profile any more
    assert files_with_secrets(data) == []


def test_config_masks_every_secret(tmp_path: Path) -> None:
    env = stockpipe_env(tmp_path, **SENTINEL_ENV)
    shown = run_cli(["config"], env, timeout=120)
    as_json = run_cli(["config", "--as-json"], env, timeout=120)
    assert shown.returncode == as_json.returncode == 0
    assert leaks(output(shown) + output(as_json)) == []
    doc = json.loads(as_json.stdout)
    assert doc["snowflake"]["password"] == "**********"
    assert doc["alphavantage"]["api_key"] == "**********"
    assert doc["kafka"]["sasl_password"] == "**********"


def test_error_paths_and_airflow_task_logs_show_no_secret(
    tmp_path: Path, airflow_home: dict[str, str]
) -> None:
    """An unreachable SASL cluster: the CLI and an Airflow task both fail, naming the address only."""
    address = f"127.0.0.1:{free_port()}"
    env = stockpipe_env(
        tmp_path / "data",
        **SENTINEL_ENV,
        STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS=address,
        STOCKPIPE_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        STOCKPIPE_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        STOCKPIPE_KAFKA_SASL_USERNAME="stockpipe",
    )
    airflow = Path(sys.executable).with_name("airflow")
    procs = {
        "cli": subprocess.Popen(
            [sys.executable, "-m", "stockpipe", "consume"], env=env, cwd=REPO_ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ),
        "airflow": subprocess.Popen(
            [str(airflow), "tasks", "test", "stock_pipeline", "Kafka_Consumer", "2024-01-01"],
            env={**airflow_home, **env}, cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ),
    }  # fmt: skip
    results = {name: (p.communicate(timeout=300), p.returncode) for name, p in procs.items()}
    (cli_out, cli_err), cli_code = results["cli"]
    (af_out, af_err), af_code = results["airflow"]
    assert cli_code == 1
    assert address in cli_err
    assert "Traceback" not in cli_err
    assert af_code == 0, af_err[-3000:]  # `airflow tasks test` itself ran; the task inside failed:
    assert "Step Kafka_Consumer failed" in af_out + af_err
    assert "new_state=up_for_retry" in af_out + af_err
    assert address in af_out + af_err
    assert leaks(cli_out + cli_err) == []
    assert leaks(af_out + af_err) == []
    assert files_with_secrets(Path(airflow_home["AIRFLOW_HOME"])) == []  # task logs, metadata DB
    assert files_with_secrets(tmp_path) == []


def test_snowflake_password_stays_out_of_dbt_files_and_logs(
    fakesnow_server: FakesnowServer, bad_input_run: BadInputRun, tmp_path: Path
) -> None:
    """Load and dbt build on fakesnow with the sentinel password (it is sent, never written)."""
    data = tmp_path / "data"
    env = stockpipe_env(
        data,
        **{**SENTINEL_ENV, "STOCKPIPE_SNOWFLAKE_ACCOUNT": "fakesnow"},
        STOCKPIPE_LAKE_ROOT=(bad_input_run.data_dir / "lake").as_uri(),
        STOCKPIPE_WAREHOUSE_KIND="snowflake",
        STOCKPIPE_SNOWFLAKE_HOST=fakesnow_server.host,
        STOCKPIPE_SNOWFLAKE_PORT=str(fakesnow_server.port),
        STOCKPIPE_SNOWFLAKE_PROTOCOL="http",
        STOCKPIPE_SNOWFLAKE_DATABASE="SECRETS_CHECK",
    )
    loaded = run_cli(["load"], env, timeout=300)
    assert loaded.returncode == 0, output(loaded)[-3000:]
    built = run_cli(["transform", "--select", "staging"], env, timeout=600)
    assert built.returncode == 0, output(built)[-3000:]
    assert leaks(output(loaded) + output(built)) == []
    assert (data / "state" / "dbt" / "logs" / "dbt.log").stat().st_size > 0
    assert files_with_secrets(data) == []
    assert os.environ.get("DBT_ENV_SECRET_STOCKPIPE_SNOWFLAKE_PASSWORD") is None
