"""Typed settings for every stage, read from ``STOCKPIPE_*`` env vars and ``stockpipe.toml``.

Env names are ``STOCKPIPE_<GROUP>_<FIELD>`` (e.g. ``STOCKPIPE_KAFKA_BOOTSTRAP_SERVERS``,
``STOCKPIPE_SNOWFLAKE_PASSWORD``); top-level fields are ``STOCKPIPE_<FIELD>``
(e.g. ``STOCKPIPE_DATA_DIR``). Dict fields take JSON. Precedence: explicit arguments >
environment > ``.env`` > ``stockpipe.toml`` > defaults.

Secrets are ``SecretStr``: they print as ``**********`` and are only unwrapped at the
point where a client needs them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


_URL_SECRET_RE = re.compile(r"(?i)((?:^|[;?&])(?:token|password|secret)=)[^;&]*")
_URL_USERINFO_RE = re.compile(r"(://)[^/@]+@")


def redact_url(url: str) -> str:
    """A connection URL with its token, password and user info masked (for logs and messages)."""
    return _URL_USERINFO_RE.sub(r"\1***@", _URL_SECRET_RE.sub(r"\1***", url))


class InvalidIdentifierError(ValueError):
    """A database, schema, table or topic name that is not a plain identifier."""


def validate_identifier(value: str, what: str = "identifier") -> str:
    """Refuse anything but a plain SQL identifier (letters, digits, ``_``, ``$``)."""
    if not IDENTIFIER_RE.fullmatch(value):
        raise InvalidIdentifierError(
            f"{what} {value!r} is not a plain identifier (letters, digits, _ and $ only)"
        )
    return value


def quote_identifier(value: str, what: str = "identifier") -> str:
    """Validate then double-quote an identifier for SQL (Snowflake and DuckDB)."""
    return '"' + validate_identifier(value, what) + '"'


class KafkaSettings(BaseModel):
    """Kafka cluster and client options. No bootstrap servers means: use the embedded broker."""

    bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]; empty starts the embedded broker"
    )
    topic: str = "stock-prices"
    partitions: int = Field(default=3, ge=1, le=1000)
    replication_factor: int = Field(default=1, ge=1)
    group_id: str = "stockpipe-bronze"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    client_options: dict[str, str] = Field(
        default_factory=dict,
        description="extra librdkafka options passed through verbatim (JSON object)",
    )
    message_max_bytes: int = Field(default=1_000_000, ge=1000)
    embedded_storage: str = Field(
        default="memory://tansu/",
        description="storage engine of the embedded broker: memory://tansu/ or s3://BUCKET/",
    )
    embedded_cluster_id: str | None = Field(
        default=None, description="embedded broker cluster id; default: a new one per start"
    )
    retention_ms: int | None = Field(
        default=7 * 24 * 3600 * 1000, ge=-1, description="bars topic retention.ms at creation (-1: forever)"
    )
    retention_bytes: int | None = Field(
        default=None,
        ge=-1,
        description="bars topic retention.bytes per partition at creation (none: unlimited)",
    )
    trades_topic: str = Field(default="stock-trades", description="raw trades of live feeds, keyed by symbol")
    trades_retention_ms: int | None = Field(default=3 * 24 * 3600 * 1000, ge=-1)
    trades_retention_bytes: int | None = Field(default=None, ge=-1)
    aggregator_group_id: str = Field(
        default="stockpipe-aggregator", description="trades -> bars consumer group"
    )

    @field_validator("topic", "trades_topic")
    @classmethod
    def _topic_ok(cls, v: str) -> str:
        if not TOPIC_RE.fullmatch(v):
            raise InvalidIdentifierError(f"topic name {v!r} is not a valid Kafka topic name")
        return v

    def client_config(self) -> dict[str, Any]:
        """librdkafka options common to producer, consumer and admin (secrets unwrapped)."""
        conf: dict[str, Any] = {}
        if self.bootstrap_servers:
            conf["bootstrap.servers"] = self.bootstrap_servers
        pairs: dict[str, str | SecretStr | None] = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": self.ssl_key_password,
        }
        for key, value in pairs.items():
            if value is None:
                continue
            conf[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
        conf.update(self.client_options)
        return conf


class LakeSettings(BaseModel):
    """The data lake. ``root`` is a URI: a local folder, ``file://``, ``hdfs://`` or ``s3://``."""

    root: str | None = Field(default=None, description="default: <data_dir>/lake")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="fsspec storage options (JSON object)"
    )


class SparkSettings(BaseModel):
    master: str = Field(default="local[*]", description="local[*], spark://host:port, yarn, k8s://")
    app_name: str = "stockpipe-clean"
    conf: dict[str, str] = Field(default_factory=dict, description="extra spark conf (JSON)")
    shuffle_partitions: int = Field(default=8, ge=1)
    driver_memory: str = "2g"
    unknown_symbols: Literal["quarantine", "keep"] = Field(
        default="quarantine",
        description=(
            "a bar whose symbol is not in the companies reference: quarantine it (unknown_symbol) "
            "or keep it (dim_companies then gets a row with has_reference_data = false)"
        ),
    )
    remote: SecretStr | None = Field(
        default=None,
        description=(
            "Spark Connect URL sc://host:15002/;token=...;use_ssl=true (a remote cluster, Databricks); "
            "selects Connect whatever the mode; a secret: masked in `stockpipe config`, never logged"
        ),
    )
    mode: Literal["connect", "classic"] = Field(
        default="connect",
        description="connect: a warm local Spark Connect server (or `remote`); classic: in-process session",
    )
    keep_warm: bool = Field(
        default=True, description="leave the local Connect server running for the next command"
    )
    idle_timeout_minutes: int = Field(
        default=30, ge=1, description="the local Connect server stops itself after this long unused"
    )
    connect_port: int = Field(default=15002, ge=1, le=65535, description="port of the local Connect server")


class DuckDBSettings(BaseModel):
    path: str | None = Field(default=None, description="default: <data_dir>/warehouse.duckdb")
    lock_wait_seconds: float = Field(
        default=10.0, ge=0, description="a writer waits this long for a reader (dashboard, a query) to let go"
    )


class SnowflakeSettings(BaseModel):
    account: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    private_key_path: str | None = None
    private_key_passphrase: SecretStr | None = None
    authenticator: str | None = None
    role: str | None = None
    warehouse: str | None = None
    database: str = "STOCKPIPE"
    raw_schema: str = "RAW"
    gold_schema: str = "GOLD"
    host: str | None = None
    port: int | None = None
    protocol: Literal["https", "http"] = "https"

    @field_validator("database", "raw_schema", "gold_schema", "role", "warehouse")
    @classmethod
    def _ident(cls, v: str | None) -> str | None:
        return None if v is None else validate_identifier(v, "Snowflake identifier")


class WarehouseSettings(BaseModel):
    kind: Literal["duckdb", "snowflake"] = "duckdb"
    raw_schema: str = "raw"
    gold_schema: str = "gold"

    @field_validator("raw_schema", "gold_schema")
    @classmethod
    def _ident(cls, v: str) -> str:
        return validate_identifier(v, "schema name")


def _default_dbt_project() -> Path:
    """The repo's (or image's) ``dbt/`` folder next to the ``stockpipe`` package, else ``./dbt``."""
    beside_package = Path(__file__).resolve().parents[1] / "dbt"
    return beside_package if (beside_package / "dbt_project.yml").exists() else Path("dbt").resolve()


class DbtSettings(BaseModel):
    project_dir: Path = Field(default_factory=_default_dbt_project)
    threads: int = Field(default=2, ge=1)
    target: str | None = Field(default=None, description="default: the warehouse kind")
    freshness_warn_hours: int = Field(
        default=24, ge=1, description="source freshness: warn when no live bar was loaded for this long"
    )
    freshness_error_hours: int = Field(
        default=72, ge=1, description="source freshness: fail when no live bar was loaded for this long"
    )
    freshness_live_window_hours: int = Field(
        default=96,
        ge=1,
        description=(
            "a bar is live data when its bar_ts is at most this long before its load; only live "
            "bars are checked for freshness (a replayed history or an empty table is not)"
        ),
    )

    @model_validator(mode="after")
    def _warn_before_error(self) -> DbtSettings:
        if self.freshness_warn_hours > self.freshness_error_hours:
            raise ValueError("dbt freshness_warn_hours must not exceed freshness_error_hours")
        return self


class AlphaVantageSettings(BaseModel):
    api_key: SecretStr | None = None
    base_url: str = "https://www.alphavantage.co/query"
    requests_per_minute: int = Field(default=5, ge=1)
    requests_per_day: int = Field(default=25, ge=1)
    max_retries: int = Field(default=4, ge=0)
    entitlement: Literal["realtime", "delayed"] | None = Field(
        default=None, description="premium keys: realtime or delayed (15-minute) US market data"
    )
    extended_hours: bool = Field(
        default=True, description="intraday bars of pre- and post-market (04:00-20:00 New York) too"
    )


class DashboardSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=1, le=65535)
    refresh_seconds: int = Field(default=30, ge=1)


class StreamSettings(BaseModel):
    cycle_seconds: float = Field(default=5.0, gt=0)
    speed: float = Field(default=60.0, gt=0, description="simulated seconds per wall second")
    spark_warmup_rounds: int = Field(
        default=20,
        ge=0,
        description=(
            "before a live source connects, `stream` runs up to this many cleans of a synthetic batch "
            "on a local Spark, so the first live bars do not wait for a cold JVM (0: off)"
        ),
    )


class LiveSettings(BaseModel):
    """Live feeds: trades -> bars aggregation and websocket connection resilience."""

    interval: Literal["1min", "5min", "15min", "30min", "60min", "1day"] = "1min"
    allowed_delay_seconds: float = Field(default=5.0, ge=0, description="watermark = latest trade - this")
    quiet_timeout_seconds: float = Field(
        default=10.0, gt=0, description="emit a bar when no trade reached it for this long (processing time)"
    )
    grace_seconds: float = Field(default=120.0, ge=0, description="late trades within this re-emit the bar")
    exchange: str = Field(default="XNYS", description="exchange_calendars calendar: windows in its time zone")
    reconnect_initial_seconds: float = Field(default=1.0, gt=0)
    reconnect_max_seconds: float = Field(default=60.0, gt=0)
    ping_interval_seconds: float = Field(default=20.0, gt=0, description="websocket keepalive ping every")
    ping_timeout_seconds: float = Field(default=20.0, gt=0, description="no pong within this: reconnect")
    idle_timeout_seconds: float = Field(
        default=0.0, ge=0, description="no message at all for this long: reconnect (0: off)"
    )
    open_timeout_seconds: float = Field(default=10.0, gt=0)
    max_malformed_in_a_row: int = Field(
        default=100, ge=1, description="then stop: not the provider's protocol"
    )


class FinnhubSettings(BaseModel):
    """Finnhub trades websocket. The token travels in the URL's query string: URLs are redacted."""

    url: str = "wss://ws.finnhub.io"
    api_key: SecretStr | None = None
    volume_only_conditions: list[str] = Field(
        default_factory=list, description="Finnhub trade condition codes that only add volume (JSON list)"
    )


class AlpacaSettings(BaseModel):
    """Alpaca market-data websocket (free plan: the IEX feed)."""

    data_url: str = "wss://stream.data.alpaca.markets/v2/iex"
    api_key_id: SecretStr | None = None
    api_secret_key: SecretStr | None = None
    trades: bool = Field(
        default=False,
        description="subscribe to trades (aggregated by stockpipe) instead of Alpaca's own minute bars",
    )


class Settings(BaseSettings):
    """All stockpipe settings. ``Settings()`` reads the environment and ``stockpipe.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="STOCKPIPE_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        extra="ignore",
        toml_file="stockpipe.toml",
    )

    data_dir: Path = Field(default=Path("data"), description="local state, spool, embedded stores")
    log_level: str = "INFO"
    companies_file: Path | None = Field(
        default=None,
        description=(
            "companies reference CSV (Alpha Vantage OVERVIEW columns); default: "
            "<data_dir>/reference/companies.csv once `stockpipe companies add|import` made it, "
            "else the shipped list"
        ),
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    duckdb: DuckDBSettings = Field(default_factory=DuckDBSettings)
    snowflake: SnowflakeSettings = Field(default_factory=SnowflakeSettings)
    dbt: DbtSettings = Field(default_factory=DbtSettings)
    alphavantage: AlphaVantageSettings = Field(default_factory=AlphaVantageSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    finnhub: FinnhubSettings = Field(default_factory=FinnhubSettings)
    alpaca: AlpacaSettings = Field(default_factory=AlpacaSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("STOCKPIPE_CONFIG", "stockpipe.toml")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, env_settings, dotenv_settings, file_secret_settings, toml)

    # ---- derived locations (one place, so every stage agrees) ----
    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def lake_root(self) -> str:
        """The lake root URI, without trailing slash."""
        if self.lake.root:
            return self.lake.root.rstrip("/")
        return (self.data_path / "lake").as_uri()

    @property
    def spool_dir(self) -> Path:
        return self.data_path / "spool"

    @property
    def state_dir(self) -> Path:
        return self.data_path / "state"

    @property
    def duckdb_path(self) -> Path:
        if self.duckdb.path:
            return Path(self.duckdb.path).expanduser().resolve()
        return self.data_path / "warehouse.duckdb"

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain data with every secret masked (for ``stockpipe config``)."""
        data: dict[str, Any] = self.model_dump(mode="json")
        data["lake"]["effective_root"] = self.lake_root
        data["duckdb"]["effective_path"] = str(self.duckdb_path)
        if self.spark.remote is not None:
            data["spark"]["remote"] = redact_url(self.spark.remote.get_secret_value())
        return data


def get_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)
