"""One measured workaround for a fixed cost dbt pays on every in-process command.

dbt registers its adapter again for every command it runs, and each adapter behaviour flag
then records where it was declared with ``inspect.stack()`` (``dbt_common.behavior_flags
.BehaviorFlagRendered._default_source``, evaluated even when the flag names its source). That
call builds the frame info of the whole stack, reading source lines and searching
``sys.modules`` for every frame: 0.19-0.35 s per command here (profile of a warm
``stockpipe run``: four dbt commands, about 0.9 s in all; each ``stream`` cycle pays it too).

``install()`` swaps in a walk over the same frames that answers the same question (the module
of the first frame outside ``dbt_common.behavior_flags``) from each frame's globals, without
reading any source. The result only labels dbt's ``BehaviorChangeEvent``; dbt's own CLI is
untouched. ``tests/unit/test_dbt_speedups.py`` checks both give the same answer.
"""

from __future__ import annotations

import inspect
from types import FrameType

_MARK = "_stockpipe_fast"


def default_source(skip: str, frame: FrameType | None) -> str:
    """The module of the first frame from ``frame`` outwards that is not in module ``skip``.

    What ``inspect.stack()`` + ``inspect.getmodule`` give for ordinary frames; frames of code
    compiled from a string (``<string>``, which ``getmodule`` cannot place) are passed over too.
    """
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name and name != skip and not frame.f_code.co_filename.startswith("<"):
            return str(name)
        frame = frame.f_back
    return "Unknown"


def install() -> None:
    """Replace ``BehaviorFlagRendered._default_source`` once per process (idempotent)."""
    try:
        from dbt_common import behavior_flags
    except ImportError:  # dbt not installed: nothing to speed up
        return
    cls = behavior_flags.BehaviorFlagRendered
    if getattr(cls._default_source, _MARK, False):
        return

    def _default_source() -> str:
        here = inspect.currentframe()
        return default_source(behavior_flags.__name__, here.f_back if here is not None else None)

    setattr(_default_source, _MARK, True)
    _default_source.__wrapped__ = cls._default_source  # type: ignore[attr-defined]  # the original
    cls._default_source = staticmethod(_default_source)  # type: ignore[method-assign]
