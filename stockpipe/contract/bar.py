"""The bar contract: one OHLCV bar per Kafka message, defined once.

``BAR_FIELDS`` is the single source of truth. The pydantic model ``Bar`` (used by the
producer and the sources), the JSON Schema file ``schemas/bar.schema.json``, the Arrow
schema, the Spark schema and the dbt source columns are all derived from it; a unit
test fails if any derived artefact drifts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import StructType

SCHEMA_VERSION = 1
DAILY_INTERVAL = "1day"
# The one interval table: a bar interval's name -> its length in minutes (a day counts 1440).
INTERVAL_MINUTES: dict[str, int] = {
    "1min": 1,
    "5min": 5,
    "15min": 15,
    "30min": 30,
    "60min": 60,
    DAILY_INTERVAL: 1440,
}
INTERVALS: tuple[str, ...] = tuple(INTERVAL_MINUTES)
INTRADAY_INTERVALS: tuple[str, ...] = tuple(i for i in INTERVALS if i != DAILY_INTERVAL)
SYMBOL_PATTERN = r"^[A-Z][A-Z0-9.\-]{0,14}$"
SYMBOL_RE = re.compile(SYMBOL_PATTERN)

LogicalType = Literal["string", "timestamp", "double", "long", "int", "date", "boolean", "string_list"]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: LogicalType
    description: str


BAR_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("symbol", "string", "Ticker symbol, upper case (e.g. AAPL)"),
    FieldSpec("interval", "string", f"Bar length, one of {', '.join(INTERVALS)}"),
    FieldSpec("bar_ts", "timestamp", "Start of the bar, ISO-8601 with UTC offset"),
    FieldSpec("open", "double", "First trade price in the bar"),
    FieldSpec("high", "double", "Highest trade price in the bar"),
    FieldSpec("low", "double", "Lowest trade price in the bar"),
    FieldSpec("close", "double", "Last trade price in the bar"),
    FieldSpec("volume", "long", "Shares traded in the bar"),
    FieldSpec("source", "string", "Where the bar came from (simulator, replay, alphavantage)"),
    FieldSpec("produced_at", "timestamp", "When stockpipe produced the message, ISO-8601 with offset"),
    FieldSpec("schema_version", "int", "Version of this contract"),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in BAR_FIELDS)


class Bar(BaseModel):
    """One validated bar. Timestamps must carry an offset; they are kept as given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(pattern=SYMBOL_PATTERN)
    # the literal restates INTERVALS for the type checker; a contract test holds them equal
    interval: Literal["1min", "5min", "15min", "30min", "60min", "1day"]
    bar_ts: datetime
    open: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    close: float = Field(gt=0)
    volume: int = Field(ge=0)
    source: str = Field(min_length=1)
    produced_at: datetime
    schema_version: int = SCHEMA_VERSION

    @field_validator("bar_ts", "produced_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset() is None:
            raise ValueError("timestamp must carry a UTC offset")
        return v

    @model_validator(mode="after")
    def _ohlc(self) -> Bar:
        if self.low > min(self.open, self.close) or self.high < max(self.open, self.close):
            raise ValueError("OHLC inconsistent: need low <= open,close <= high")
        return self

    def to_json_bytes(self) -> bytes:
        """The Kafka message value: compact JSON, timestamps ISO-8601 with offset."""
        return self.model_dump_json().encode()

    def key(self) -> bytes:
        """The Kafka message key: the symbol (so one symbol stays in one partition)."""
        return self.symbol.encode()


_JSON_TYPES: dict[LogicalType, dict[str, Any]] = {
    "string": {"type": "string"},
    "timestamp": {"type": "string", "format": "date-time"},
    "double": {"type": "number"},
    "long": {"type": "integer"},
    "int": {"type": "integer"},
}


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a bar message, derived from ``BAR_FIELDS``."""
    props: dict[str, Any] = {}
    for f in BAR_FIELDS:
        props[f.name] = {**_JSON_TYPES[f.type], "description": f.description}
    props["symbol"]["pattern"] = SYMBOL_PATTERN
    props["interval"]["enum"] = list(INTERVALS)
    props["bar_ts"]["pattern"] = r"(Z|[+-]\d{2}:\d{2})$"
    props["produced_at"]["pattern"] = r"(Z|[+-]\d{2}:\d{2})$"
    for price in ("open", "high", "low", "close"):
        props[price]["exclusiveMinimum"] = 0
    props["volume"]["minimum"] = 0
    props["schema_version"]["const"] = SCHEMA_VERSION
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/stockpipe/stockpipe/schemas/bar.schema.json",
        "title": "stockpipe bar",
        "description": "One OHLCV bar per Kafka message on the stock-prices topic.",
        "type": "object",
        "properties": props,
        "required": list(FIELD_NAMES),
        "additionalProperties": False,
    }


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def arrow_type(logical: LogicalType) -> pa.DataType:
    """The Arrow type of a contract type (timestamps are UTC microseconds)."""
    import pyarrow as pa

    types: dict[LogicalType, pa.DataType] = {
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "double": pa.float64(),
        "long": pa.int64(),
        "int": pa.int32(),
        "date": pa.date32(),
        "boolean": pa.bool_(),
        "string_list": pa.list_(pa.string()),
    }
    return types[logical]


def arrow_fields(fields: tuple[FieldSpec, ...]) -> pa.Schema:
    """The Arrow schema of contract fields, in order (descriptions stay in the ``FieldSpec``)."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, arrow_type(f.type)) for f in fields])


def arrow_schema() -> pa.Schema:
    """Arrow schema of a parsed bar (timestamps as UTC microseconds)."""
    return arrow_fields(BAR_FIELDS)


def spark_schema(*, timestamps_as_string: bool = True) -> StructType:
    """Spark schema for parsing the raw JSON.

    With ``timestamps_as_string`` (the default, used for parsing bronze) timestamp fields
    stay strings so the cleaning job can apply its own strict parsing and report failures.
    """
    from pyspark.sql import types as T

    types: dict[LogicalType, T.DataType] = {
        "string": T.StringType(),
        "timestamp": T.StringType() if timestamps_as_string else T.TimestampType(),
        "double": T.DoubleType(),
        "long": T.LongType(),
        "int": T.IntegerType(),
    }
    return T.StructType([T.StructField(f.name, types[f.type], True) for f in BAR_FIELDS])


_DBT_TYPES: dict[LogicalType, str] = {
    "string": "varchar",
    "timestamp": "timestamp_tz",
    "double": "double",
    "long": "bigint",
    "int": "integer",
}


def dbt_source_columns() -> list[dict[str, str]]:
    """Column entries for the dbt source ``raw.stock_prices`` (the contract's part of it)."""
    return [
        {"name": f.name, "description": f.description, "data_type": _DBT_TYPES[f.type]} for f in BAR_FIELDS
    ]
