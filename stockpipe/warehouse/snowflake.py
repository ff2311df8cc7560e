"""Snowflake adapter (``snowflake-connector-python``): password or key-pair (JWT) authentication.

Bulk path, before the load transaction: each changed partition is written as a local Parquet
file, ``PUT`` to a temporary stage and ``COPY INTO`` a transient ``<TABLE>__LOAD`` table. Then,
in one transaction: delete the changed partitions from the raw table, ``insert … select`` from
the load table, append ``load_history``, commit. Snowflake stores unquoted identifiers upper-
cased, so identifiers from settings are validated, upper-cased and quoted (``raw`` → ``"RAW"``),
which keeps them addressable unquoted from dbt.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from stockpipe.errors import ConfigError, first_line
from stockpipe.settings import SnowflakeSettings, quote_identifier, validate_identifier
from stockpipe.warehouse.base import (
    ProgressFn,
    TableChange,
    Warehouse,
    WarehouseError,
    WarehouseUnavailableError,
)
from stockpipe.warehouse.tables import RAW_TABLES, create_table_sql

if TYPE_CHECKING:
    from snowflake.connector import SnowflakeConnection

    from stockpipe.settings import Settings

LOGIN_TIMEOUT_S = 60
LOCK_TIMEOUT_S = 300  # how long a statement waits for a table lock before failing
_SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9_./-]+$")
_LOCK_RE = re.compile(r"\block(ed)?\b.*(waiters|released|timeout)|lock wait", re.IGNORECASE)


def connect_params(sf: SnowflakeSettings, *, schema: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``snowflake.connector.connect`` (secrets unwrapped here only)."""

    if not sf.account or not sf.user:
        raise ConfigError(
            "Snowflake needs an account and a user: "
            "set STOCKPIPE_SNOWFLAKE_ACCOUNT and STOCKPIPE_SNOWFLAKE_USER."
        )
    params: dict[str, Any] = {
        "account": sf.account,
        "user": sf.user,
        "database": validate_identifier(sf.database, "Snowflake database"),
        "schema": validate_identifier(schema or sf.raw_schema, "Snowflake schema"),
        "paramstyle": "qmark",
        "login_timeout": LOGIN_TIMEOUT_S,
        "application": "stockpipe",
        "session_parameters": {"QUERY_TAG": "stockpipe", "TIMEZONE": "UTC", "LOCK_TIMEOUT": LOCK_TIMEOUT_S},
    }
    for key in ("role", "warehouse", "host", "port"):
        value = getattr(sf, key)
        if value is not None:
            params[key] = value
    if sf.host:
        params["protocol"] = sf.protocol
    if sf.private_key_path:
        params["authenticator"] = sf.authenticator or "SNOWFLAKE_JWT"
        params["private_key_file"] = str(Path(sf.private_key_path).expanduser())
        if sf.private_key_passphrase is not None:
            params["private_key_file_pwd"] = sf.private_key_passphrase.get_secret_value()
    elif sf.password is not None:
        params["password"] = sf.password.get_secret_value()
        if sf.authenticator:
            params["authenticator"] = sf.authenticator
    elif sf.authenticator:
        params["authenticator"] = sf.authenticator
    else:
        raise ConfigError(
            "Snowflake needs a password or a private key: set STOCKPIPE_SNOWFLAKE_PASSWORD "
            "or STOCKPIPE_SNOWFLAKE_PRIVATE_KEY_PATH."
        )
    return params


class SnowflakeWarehouse(Warehouse):
    """A Snowflake database; raw and gold schemas come from ``settings.snowflake``."""

    kind: ClassVar = "snowflake"

    def __init__(self, con: SnowflakeConnection, sf: SnowflakeSettings) -> None:
        super().__init__(sf.raw_schema, sf.gold_schema)
        self.con = con
        self.sf = sf
        self._tmpdir: str | None = None

    @classmethod
    def connect(cls, settings: Settings) -> Self:
        return cls.open(settings.snowflake)

    @classmethod
    def open(cls, sf: SnowflakeSettings) -> Self:
        import snowflake.connector

        params = connect_params(sf)
        try:
            con = snowflake.connector.connect(**params)
        except snowflake.connector.errors.Error as exc:
            raise WarehouseUnavailableError(
                f"Cannot connect to Snowflake account {sf.account} as {sf.user}: {first_line(exc)}."
            ) from exc
        except (ValueError, TypeError, OSError) as exc:  # the private key file or its passphrase
            raise ConfigError(
                f"Cannot use the Snowflake private key {sf.private_key_path}: {first_line(exc)}."
            ) from exc
        return cls(con, sf)

    @property
    def target_id(self) -> str:
        where = f"{self.sf.host}:{self.sf.port}" if self.sf.host else ""
        return f"snowflake:{self.sf.account}{'@' + where if where else ''}/{self.sf.database.upper()}"

    def ident(self, name: str) -> str:
        return quote_identifier(validate_identifier(name).upper())

    def schema_ref(self, schema: str | None = None) -> str:
        return f"{self.ident(self.sf.database)}.{super().schema_ref(schema)}"

    # ---- primitives ----
    def _cursor_run(self, method: str, sql: str, params: Any) -> Any:
        import snowflake.connector

        cur = self.con.cursor()
        try:
            getattr(cur, method)(sql, params)
            return cur.fetchall() if method == "execute" and cur.description else []
        except snowflake.connector.errors.Error as exc:
            if _LOCK_RE.search(str(exc)):
                raise WarehouseUnavailableError(
                    f"A Snowflake table in {self.sf.database} is locked by another transaction "
                    f"(a crashed load keeps it until its session ends): {first_line(exc)}."
                ) from exc
            raise WarehouseError(
                f"Snowflake statement failed on {self.sf.database}: {first_line(exc)}."
            ) from exc
        finally:
            cur.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor_run("execute", sql, tuple(params) or None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor_run("executemany", sql, [tuple(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._cursor_run("execute", sql, tuple(params) or None)]

    def close(self) -> None:
        self.con.close()

    def existing_tables(self, schema: str) -> set[str]:
        info = f"{self.ident(self.sf.database)}.information_schema.tables"
        rows = self.query(
            f"select table_name from {info} where table_schema = ?",  # noqa: S608 - quoted identifier
            [schema.upper()],
        )
        return {str(r[0]).lower() for r in rows}

    # ---- bulk path ----
    def _load_table(self, table: str) -> str:
        return self.qualified(f"{table}__load")

    def _stage_name(self, table: str) -> str:
        return self.qualified(f"stockpipe_load_{table}")

    def _stage(self, change: TableChange, on_progress: ProgressFn | None) -> dict[str, int] | None:
        import pyarrow.parquet as pq

        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="stockpipe-sf-load-")
        load_table, stage = self._load_table(change.stage_name), self._stage_name(change.stage_name)
        schema = RAW_TABLES[change.table]()
        ddl = create_table_sql(load_table, schema, "snowflake", self.ident)
        self.execute(ddl.replace("create table if not exists", "create or replace transient table", 1))
        self.execute(f"create or replace temporary stage {stage}")
        counts: dict[str, int] = {}
        for i, partition in enumerate(change.partitions):
            batch = change.read(partition) if partition.files else None
            counts[partition.key] = batch.num_rows if batch is not None else 0
            if batch is not None and batch.num_rows:
                path = Path(self._tmpdir) / f"{change.stage_name}-{i:05d}.parquet"
                pq.write_table(batch.rename_columns([n.upper() for n in batch.column_names]), path)
                self._put(path, stage)
                path.unlink()
            if on_progress:
                on_progress(change.table, partition.key, counts[partition.key])
        if any(counts.values()):
            self._copy_into(load_table, stage)
        return counts

    def _put(self, path: Path, stage: str) -> None:
        posix = path.resolve().as_posix()
        if not _SAFE_PATH_RE.fullmatch(posix):
            raise WarehouseError(f"Refusing to PUT {posix}: the temporary path has unexpected characters.")
        self.execute(f"put 'file://{posix}' @{stage} auto_compress=false overwrite=true")

    def _copy_into(self, load_table: str, stage: str) -> None:
        rows = self.query(
            f"copy into {load_table} from @{stage} file_format = (type = parquet use_logical_type = true) "
            "match_by_column_name = case_insensitive purge = true"
        )
        bad = [r for r in rows if len(r) > 1 and str(r[1]).upper() not in ("LOADED", "LOAD_SKIPPED")]
        if bad:
            raise WarehouseError(f"COPY INTO {load_table} did not load every file: {bad[0]}.")

    def _insert(
        self, change: TableChange, staged: dict[str, int] | None, on_progress: ProgressFn | None
    ) -> dict[str, int]:
        counts = staged or {}
        if any(counts.values()):
            self.execute(self.insert_select_sql(change.table, self._load_table(change.stage_name)))
        return counts

    def _cleanup(self, changes: Sequence[TableChange]) -> None:
        for change in changes:
            # transient and replaced on the next load anyway: not worth failing the load for
            with contextlib.suppress(WarehouseError):
                self.execute(f"drop table if exists {self._load_table(change.stage_name)}")
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
