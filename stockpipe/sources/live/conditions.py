"""Which trades may set a bar's prices: per-provider sale-condition rules.

A trade's conditions decide its ``Effect`` on a bar (the most restrictive condition wins):

* ``PRICE``: sets open/close (first/last by trade time), high/low, and adds volume (a regular sale);
* ``HIGH_LOW``: sets high/low and adds volume but not open/close (its "last" is conditional);
* ``VOLUME``: only adds volume (its price is not a current market price);
* ``IGNORE``: neither (an official open/close report, not a trade).

**Alpaca** sends the CTA / UTP letter codes (``@``, ``I``, ``T`` ...). The sets below follow the
SIPs' consolidated processing guidelines as tabulated for the UTP/CTA sale conditions (update
high/low, update last, update volume):

* ``VOLUME``: ``W`` average price, ``C`` cash sale, ``T`` Form T (extended hours), ``U`` extended
  hours sold out of sequence, ``N`` next day, ``H`` price variation, ``I`` odd lot, ``V``
  contingent, ``7`` qualified contingent;
* ``HIGH_LOW``: ``G`` bunched sold, ``4`` derivatively priced, ``P`` prior reference price, ``R``
  seller, ``Z`` sold out of sequence (the SIPs update "last" for these only in special cases);
* ``IGNORE``: ``M`` / ``Q`` market center official close / open, ``9`` corrected consolidated
  close (reports about the day, not trades).

Consequence: a pre- or post-market window whose trades are all Form T has volume but no price;
it gives no bar and a ``no_priced_trade`` dead letter (see ``aggregate``).

**Finnhub** sends numeric codes (``"1"``, ``"12"``, ``"24"`` ...) whose meaning it publishes as a
spreadsheet that could not be checked while writing this, so no code is assumed: by default every
Finnhub trade sets the price. Set ``STOCKPIPE_FINNHUB_VOLUME_ONLY_CONDITIONS`` (JSON list) to the
codes that must only add volume (odd lot, average price, Form T ...), from Finnhub's list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum


class Effect(IntEnum):
    PRICE = 0
    HIGH_LOW = 1
    VOLUME = 2
    IGNORE = 3


@dataclass
class ConditionRules:
    """Condition code -> effect for one provider (unknown codes count as regular sales)."""

    effects: dict[str, Effect] = field(default_factory=dict)
    _cache: dict[tuple[str, ...], Effect] = field(default_factory=dict, repr=False)

    def effect(self, conditions: tuple[str, ...]) -> Effect:
        if not conditions:
            return Effect.PRICE
        found = self._cache.get(conditions)
        if found is None:
            found = max((self.effects.get(c, Effect.PRICE) for c in conditions), default=Effect.PRICE)
            if len(self._cache) < 10_000:
                self._cache[conditions] = found
        return found

    @classmethod
    def build(
        cls,
        *,
        volume_only: Iterable[str] = (),
        high_low_only: Iterable[str] = (),
        ignore: Iterable[str] = (),
    ) -> ConditionRules:
        effects: dict[str, Effect] = {}
        for codes, eff in (
            (high_low_only, Effect.HIGH_LOW),
            (volume_only, Effect.VOLUME),
            (ignore, Effect.IGNORE),
        ):
            for code in codes:
                effects[code] = eff
        return cls(effects=effects)


ALPACA_VOLUME_ONLY = ("W", "C", "T", "U", "N", "H", "I", "V", "7")
ALPACA_HIGH_LOW_ONLY = ("G", "4", "P", "R", "Z")
ALPACA_IGNORE = ("M", "Q", "9")


def alpaca_rules() -> ConditionRules:
    return ConditionRules.build(
        volume_only=ALPACA_VOLUME_ONLY, high_low_only=ALPACA_HIGH_LOW_ONLY, ignore=ALPACA_IGNORE
    )


def finnhub_rules(volume_only: Iterable[str] = ()) -> ConditionRules:
    return ConditionRules.build(volume_only=volume_only)


def rules_for(provider: str, *, finnhub_volume_only: Iterable[str] = ()) -> ConditionRules:
    """The rules of a provider by name; providers without rules treat every trade as a sale."""
    if provider == "alpaca":
        return alpaca_rules()
    if provider == "finnhub":
        return finnhub_rules(finnhub_volume_only)
    return ConditionRules()
