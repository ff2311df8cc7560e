"""Freshness statistics: nearest-rank percentiles per cycle, and exact merges across cycles."""

from __future__ import annotations

import random

import pytest

from stockpipe.orchestration.freshness import histogram_percentile, percentile, summarise


def test_summarise_empty_cycle() -> None:
    fresh = summarise([])
    assert (fresh.bars, fresh.p50, fresh.p95, fresh.max, fresh.histogram) == (0, None, None, None, {})


def test_summarise_percentiles_and_histogram() -> None:
    fresh = summarise([3.04, 1.0, 12.31, 2.0, 1.09])
    assert (fresh.bars, fresh.p50, fresh.p95, fresh.max) == (5, 2.0, 12.31, 12.31)
    assert fresh.histogram == {"1.0": 2, "2.0": 1, "3.0": 1, "12.3": 1}
    assert list(fresh.histogram) == ["1.0", "2.0", "3.0", "12.3"]  # numeric order, not text order


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50.0, 95.0, 100.0)
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)


def test_merged_histograms_give_the_percentile_of_all_bars() -> None:
    """Merging cycles must equal the percentile over every bar (to one bucket), unlike a median
    of per-cycle p95s: one slow cycle with many bars dominates the true p95."""
    rng = random.Random(7)
    fast = [rng.uniform(2, 6) for _ in range(1000)]
    slow = [rng.uniform(14, 20) for _ in range(300)]
    cycles = [summarise(fast[i : i + 100]) for i in range(0, 1000, 100)] + [summarise(slow)]
    merged = histogram_percentile([c.histogram for c in cycles], 95)
    exact = percentile(sorted(fast + slow), 95)
    assert merged is not None
    assert exact <= merged <= exact + 0.1 + 1e-9
    median_of_p95s = sorted(c.p95 for c in cycles if c.p95 is not None)[len(cycles) // 2]
    assert median_of_p95s < 7 < merged  # the per-cycle view hides the slow cycle


def test_histogram_percentile_of_nothing_is_none() -> None:
    assert histogram_percentile([], 95) is None
    assert histogram_percentile([{}], 50) is None
