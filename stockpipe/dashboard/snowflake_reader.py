"""The Snowflake side of the reporting reader (imported only when ``warehouse.kind`` is snowflake).

Connects with the loader's parameters (``stockpipe.warehouse.snowflake.connect_params``) and
addresses tables like the loader does: database, schema and table upper-cased and quoted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from stockpipe.dashboard.warehouse import (
    SELECT_ALL,
    SELECT_NONE,
    Layer,
    WarehouseReader,
    lower_case,
)
from stockpipe.errors import StockpipeError
from stockpipe.settings import Settings, quote_identifier
from stockpipe.warehouse.snowflake import connect_params

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SF_TABLES = "select table_schema, table_name from {t} where upper(table_schema) in (?, ?)"


class SnowflakeReader(WarehouseReader):
    """A Snowflake connection built from ``settings.snowflake`` (the loader's fields)."""

    kind = "snowflake"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        sf = settings.snowflake
        self.location = f"Snowflake account {sf.account} ({sf.database})"
        self._database = sf.database
        self._schemas: dict[str, str] = {"raw": sf.raw_schema, "gold": sf.gold_schema}
        self._con = _connect_snowflake(settings)

    def schema_name(self, layer: Layer) -> str:
        return self._schemas[layer]

    def display(self, layer: Layer, name: str) -> str:
        return f"{self._schemas[layer].upper()}.{name.upper()}"

    def ref(self, layer: Layer, name: str) -> str:
        parts = (self._database.upper(), self._schemas[layer].upper(), name.upper())
        return ".".join(quote_identifier(p, "Snowflake identifier") for p in parts)

    def _fetch(self, sql: str, params: Sequence[Any]) -> pd.DataFrame:
        import pandas as pd

        cur = self._con.cursor()
        try:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description or ()]
            return pd.DataFrame.from_records(cur.fetchall(), columns=names)
        finally:
            cur.close()

    def _list_tables(self) -> dict[str, set[str]]:
        info = quote_identifier(self._database.upper(), "database") + ".information_schema.tables"
        frame = self._fetch(
            SF_TABLES.format(t=info),
            [self._schemas["raw"].upper(), self._schemas["gold"].upper()],
        )
        out: dict[str, set[str]] = {"raw": set(), "gold": set()}
        for layer, schema in self._schemas.items():
            out[layer] = {
                str(t).lower()
                for s, t in zip(frame.iloc[:, 0], frame.iloc[:, 1], strict=True)
                if str(s).upper() == schema.upper()
            }
        return out

    def arrow_reader(self, layer: Layer, name: str) -> pa.RecordBatchReader:
        import pyarrow as pa

        cur = self._con.cursor()
        cur.execute(SELECT_ALL.format(t=self.ref(layer, name)))
        if not hasattr(cur, "fetch_arrow_batches"):  # connectors without Arrow batches (fakesnow)
            table = pa.Table.from_pandas(cur.fetch_pandas_all(), preserve_index=False)
            cur.close()
            return lower_case(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))
        tables = iter(cur.fetch_arrow_batches())
        first = next(tables, None)
        if first is None:  # no rows: take the schema from an empty pandas result
            cur.close()
            empty = self.query(SELECT_NONE, t=(layer, name))
            schema = pa.Schema.from_pandas(empty, preserve_index=False)
            return pa.RecordBatchReader.from_batches(schema, [])

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from first.to_batches()
                for table in tables:
                    yield from table.to_batches()
            finally:
                cur.close()

        return lower_case(pa.RecordBatchReader.from_batches(first.schema, batches()))

    def close(self) -> None:
        self._con.close()


def _connect_snowflake(settings: Settings) -> Any:
    """Connect with the loader's parameters (``stockpipe.warehouse.snowflake.connect_params``)."""
    import snowflake.connector

    params = connect_params(settings.snowflake, schema=settings.snowflake.gold_schema)
    params["application"] = "stockpipe-dashboard"
    try:
        return snowflake.connector.connect(**params)
    except snowflake.connector.errors.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StockpipeError(
            f"Could not connect to Snowflake account {settings.snowflake.account}: {first}."
        ) from exc
