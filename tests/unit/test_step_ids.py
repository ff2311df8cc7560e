"""The seven step ids live in the orchestration module (and the DAG); the docs map lists them in order."""

from __future__ import annotations

import re
from pathlib import Path

from stockpipe.orchestration.pipeline import STEP_NAMES, STEPS

REPO = Path(__file__).resolve().parents[2]
OWNERS = {REPO / "stockpipe" / "orchestration" / "pipeline.py", REPO / "dags" / "stock_pipeline.py"}


def test_every_step_id_maps_to_its_function_in_order() -> None:
    # the ids themselves are held against the seed's order in tests/integration/test_dag_structure.py
    assert len(set(STEP_NAMES)) == 7
    assert tuple(STEPS) == STEP_NAMES


def test_no_other_module_spells_a_step_id() -> None:
    pattern = re.compile("|".join(re.escape(s) for s in STEP_NAMES))
    sources = [*(REPO / "stockpipe").rglob("*.py"), *(REPO / "dags").rglob("*.py")]
    offenders = [
        str(p.relative_to(REPO)) for p in sources if p not in OWNERS and pattern.search(p.read_text())
    ]
    assert offenders == []


def test_the_architecture_map_lists_every_step_in_order() -> None:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text[text.index("## Map: stage") : text.index("## Package layout")]
    rows = re.findall(r"^\|[^|]+\|[^|]+\| `stockpipe (\w+)` \| `(\w+)` \|$", section, flags=re.M)
    assert [step for _, step in rows] == list(STEP_NAMES)
    assert [cmd for cmd, _ in rows] == [
        "produce",
        "consume",
        "upload",
        "clean",
        "load",
        "transform",
        "quality",
    ]
