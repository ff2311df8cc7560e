"""The interface of live sources: batches of bars, each acknowledged after the producer's flush.

A live source runs until stopped (``follow``) or polls once (``once``, for a scheduled ``run``).
It yields ``LiveBatch`` objects; the runtime (``stockpipe.sources.live.runtime``) sends a batch,
flushes the producer and only then calls ``batch.ack()``, which is where the source advances and
saves its checkpoint. A batch that failed delivery is never acknowledged, so its bars are sent
again after a restart.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stockpipe.contract import Bar


def _nothing() -> None:
    return None


@dataclass
class LiveBatch:
    """Bars to send together; ``ack`` runs after they are durably in the topic."""

    bars: list[Bar]
    ack: Callable[[], None] = _nothing
    note: str = ""  # shown in logs (e.g. "IBM compact: 3 new, 1 changed")
    details: dict[str, int] = field(default_factory=dict)


class LiveSource(ABC):
    """A source that runs until stopped; see the module docstring."""

    name: str

    @abstractmethod
    def batches(self, stop: threading.Event, *, once: bool = False) -> Iterator[LiveBatch]:
        """Yield batches until ``stop`` is set (or, with ``once``, after one round of polls).

        Every wait inside must return early when ``stop`` is set.
        """

    def describe(self) -> list[str]:
        """Lines printed at start (e.g. the refresh plan)."""
        return []
