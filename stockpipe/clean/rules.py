"""The validation rules, declared once: a stable snake_case name and the Column that flags a violation.

Like expectations in a declarative pipeline, each rule is independent of the others and null-safe:
a rule whose inputs are null (because the field is missing or mistyped, which the parse step
already reports as ``missing_<field>`` / ``bad_type_<field>``) does not fire. A record's
``failed_rules`` is the parse errors followed by the names of every rule it violates, in the order
of ``RULES``; a record with an empty list is clean.

Rules read the columns produced by ``transforms.normalise``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from stockpipe.contract.bar import BAR_FIELDS, FIELD_NAMES, INTERVALS, SCHEMA_VERSION, SYMBOL_PATTERN

if TYPE_CHECKING:
    from pyspark.sql import Column

PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")
EARLIEST_BAR_TS = datetime(1990, 1, 1, tzinfo=UTC)
LATEST_BAR_SLACK = timedelta(days=1)
# An ISO-8601 local date-time with no offset or zone: rejected, never guessed.
NO_OFFSET_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$"


@dataclass(frozen=True)
class Rule:
    """One validation rule: ``violated()`` builds a boolean Column, true when the record breaks it."""

    name: str
    description: str
    violated: Callable[[datetime], Column]


def _c(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(name)


def _any(cols: list[Column]) -> Column:
    out = cols[0]
    for col in cols[1:]:
        out = out | col
    return out


def _price_not_positive(_now: datetime) -> Column:
    return _any([_c(p) <= 0 for p in PRICE_FIELDS])


def _price_not_finite(_now: datetime) -> Column:
    from pyspark.sql import functions as F

    return _any([F.isnan(_c(p)) | (F.abs(_c(p)) == float("inf")) for p in PRICE_FIELDS])


def _unparseable(field: str) -> Callable[[datetime], Column]:
    def build(_now: datetime) -> Column:
        raw = _c(f"{field}_raw")
        # ``&`` short-circuits: the regex only runs on the rare rows that did not parse
        return _c(field).isNull() & raw.isNotNull() & ~raw.rlike(NO_OFFSET_PATTERN)

    return build


def _without_offset(_now: datetime) -> Column:
    def check(field: str) -> Column:
        return _c(field).isNull() & _c(f"{field}_raw").rlike(NO_OFFSET_PATTERN)

    return check("bar_ts") | check("produced_at")


def latest_bar_ts(now: datetime) -> datetime:
    """The upper bound of a plausible ``bar_ts``: the end of the day after ``now`` (UTC).

    Rounded to a day on purpose: the bound is a literal in Spark's generated code, so a bound
    that only changes once a day lets a long-running process reuse its compiled, JIT-warm code.
    """
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    return today + LATEST_BAR_SLACK + timedelta(days=1)


def _out_of_range(now: datetime) -> Column:
    from pyspark.sql import functions as F

    return (_c("bar_ts") < F.lit(EARLIEST_BAR_TS)) | (_c("bar_ts") > F.lit(latest_bar_ts(now)))


RULES: tuple[Rule, ...] = (
    Rule("price_not_positive", "open, high, low and close must be > 0", _price_not_positive),
    Rule("price_not_finite", "prices must be finite numbers (no NaN or Infinity)", _price_not_finite),
    Rule("volume_negative", "volume must be >= 0", lambda _n: _c("volume") < 0),
    Rule("high_below_low", "high must be >= low", lambda _n: _c("high") < _c("low")),
    Rule(
        "open_outside_range",
        "open must lie in [low, high]",
        lambda _n: (_c("open") < _c("low")) | (_c("open") > _c("high")),
    ),
    Rule(
        "close_outside_range",
        "close must lie in [low, high]",
        lambda _n: (_c("close") < _c("low")) | (_c("close") > _c("high")),
    ),
    Rule(
        "unknown_interval",
        f"interval must be one of {', '.join(INTERVALS)}",
        lambda _n: ~_c("interval").isin(*INTERVALS),
    ),
    Rule("bad_symbol", f"symbol must match {SYMBOL_PATTERN}", lambda _n: ~_c("symbol").rlike(SYMBOL_PATTERN)),
    Rule(
        "unknown_schema_version",
        f"schema_version must be {SCHEMA_VERSION}",
        lambda _n: _c("schema_version") != SCHEMA_VERSION,
    ),
    Rule(
        "timestamp_without_offset",
        "bar_ts and produced_at must carry a UTC offset or Z",
        _without_offset,
    ),
    Rule(
        "bad_type_bar_ts", "bar_ts must be ISO-8601 with offset or epoch seconds/ms", _unparseable("bar_ts")
    ),
    Rule("bad_type_produced_at", "produced_at must be ISO-8601 with offset", _unparseable("produced_at")),
    Rule(
        "bar_ts_out_of_range",
        f"bar_ts must lie between {EARLIEST_BAR_TS.date()} and the end of tomorrow (UTC)",
        _out_of_range,
    ),
)
UNKNOWN_SYMBOL = "unknown_symbol"


def unknown_symbol_rule(known_symbols: Collection[str]) -> Rule:
    """The referential rule: ``symbol`` must be in the companies reference (``known_symbols``).

    Spark turns the literal list into a hash set (``InSet``), so the check costs one lookup per row.
    """
    known = sorted(known_symbols)
    return Rule(
        UNKNOWN_SYMBOL,
        "symbol must be listed in the companies reference file",
        lambda _n: ~_c("symbol").isin(*known) if known else _c("symbol").isNotNull(),
    )


RULE_NAMES: tuple[str, ...] = (*(r.name for r in RULES), UNKNOWN_SYMBOL)
# Reasons found while parsing (``transforms.parse_raw``), before any rule can run.
PARSE_ERROR_NAMES: tuple[str, ...] = (
    "tombstone",
    "not_json",
    "not_object",
    *(f"missing_{f}" for f in FIELD_NAMES),
    *(f"bad_type_{f.name}" for f in BAR_FIELDS if f.type != "timestamp"),
)
ALL_REASONS: tuple[str, ...] = (*PARSE_ERROR_NAMES, *RULE_NAMES)


def violations(now: datetime, rules: tuple[Rule, ...] = RULES) -> tuple[Column, Column]:
    """``(any_violated, names)``: a boolean, and the ``array<string>`` of violated rule names.

    Both are null-safe. Callers build the (allocating) name array only where ``any_violated``.
    """
    from pyspark.sql import functions as F

    checks = [(r.name, F.coalesce(r.violated(now), F.lit(False))) for r in rules]
    any_violated = checks[0][1]
    for _, check in checks[1:]:
        any_violated = any_violated | check
    names = F.array_compact(F.array(*(F.when(check, F.lit(name)) for name, check in checks)))
    return any_violated, names
