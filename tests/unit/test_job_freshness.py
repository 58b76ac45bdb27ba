"""bench/job_freshness.py finds the newest as_of of one view among the job's rows, which the soak
sets beside the writer's to say where a missed freshness goal lost its time."""
from __future__ import annotations

from bench.job_freshness import newest_as_of
from streaming.aggregator import FeatureRow


def rows(*specs: tuple[str, int]) -> list[bytes]:
    return [FeatureRow(view, "7", as_of, {"clicks_5m": 1, "ctr_1h": None}).to_json().encode()
            for view, as_of in specs]


def test_the_newest_row_of_the_view_counts_whatever_its_place() -> None:
    found = rows(("user_ad_activity", 1_000), ("user_ad_activity", 3_000), ("user_ad_activity", 2_000))
    assert newest_as_of(found, "user_ad_activity") == 3_000


def test_rows_of_another_view_are_not_read() -> None:
    found = rows(("user_ad_activity", 1_000), ("ad_performance", 9_000), ("user_ad_activity_x", 8_000))
    assert newest_as_of(found, "user_ad_activity") == 1_000


def test_no_row_of_the_view_is_none() -> None:
    assert newest_as_of(rows(("ad_performance", 5)), "user_ad_activity") is None
    assert newest_as_of([], "user_ad_activity") is None
