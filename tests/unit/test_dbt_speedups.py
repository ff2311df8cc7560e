"""The dbt behaviour-flag workaround answers exactly what dbt's own ``inspect.stack()`` walk does."""

from __future__ import annotations

import pytest

from stockpipe.gold import dbt_speedups

pytest.importorskip("dbt_common")


def _through(depth: int, call):  # type: ignore[no-untyped-def]
    return call() if depth == 0 else _through(depth - 1, call)


def test_fast_source_is_the_original_answer() -> None:
    from dbt_common.behavior_flags import BehaviorFlagRendered

    dbt_speedups.install()
    fast = BehaviorFlagRendered._default_source
    original = fast.__wrapped__  # type: ignore[attr-defined]
    assert fast is not original
    assert _through(30, fast) == _through(30, original) == __name__


def test_an_adapter_flag_names_its_adapter_module() -> None:
    from dbt_common.behavior_flags import Behavior

    dbt_speedups.install()
    dbt_speedups.install()  # idempotent
    flags = [{"name": "some_flag", "default": False, "description": "d"}]
    behavior = Behavior(flags, {})  # type: ignore[list-item]
    # declared from this test module, as an adapter's impl module declares its own
    assert behavior.some_flag._behavior_change_event.flag_source == __name__
