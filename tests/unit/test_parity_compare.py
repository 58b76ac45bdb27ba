"""The pure rules of the parity check: tolerance, null classes, SMAPE, settledness, explanations."""
from __future__ import annotations

import pytest

from tessera.definitions import Count, Entity, EventSource, Ratio, Sum, WindowedView
from tessera.parity_compare import (Context, LateEvent, OnlineRow, compare_view, key_fraction, outcome,
                                    sample_keys, smape_term)

MIN = 60_000
VIEW = WindowedView(
    name="v", entity=Entity("user", join_key="user_id"), source=EventSource("e", topic="e"),
    granularity="1m", allowed_lateness="10s",
    aggregations=(Count("clicks", windows=["5m"], where={"event_type": "click"}),
                  Count("impressions", windows=["5m"], where={"event_type": "impression"}),
                  Sum("spend", column="cost", windows=["5m"]),
                  Ratio("ctr", numerator="clicks", denominator="impressions", windows=["5m"])),
)
CLOCK = 100 * MIN


def _ctx(late: dict[int, list[LateEvent]] | None = None, behind: int = 0) -> Context:
    return Context(CLOCK, late or {}, behind)


def test_counts_are_exact_and_sums_within_1e9_relative() -> None:
    assert outcome("count", 3, 3) == "matched"
    assert outcome("count", 3, 4) == "mismatched"
    assert outcome("sum", 1.0, 1.0 + 5e-10) == "matched"
    assert outcome("sum", 1.0, 1.0 + 5e-9) == "mismatched"
    assert outcome("sum", 0.0, 1e-12) == "matched"  # decimal dust of a decayed sum
    assert outcome("ratio", None, None) == "both_null"
    assert outcome("ratio", None, 0.5) == "online_only_null"
    assert outcome("ratio", 0.5, None) == "offline_only_null"


def test_smape_is_the_symmetric_relative_difference() -> None:
    assert smape_term(0, 0) == 0.0
    assert smape_term(1, 3) == pytest.approx(1.0)  # 2*2/4
    assert smape_term(None, 3) is None


def test_a_key_is_in_or_out_by_hash_and_a_smaller_sample_is_a_subset() -> None:
    keys = list(range(1, 2001))
    tenth, half = sample_keys("user_id", keys, 0.1, 10_000), sample_keys("user_id", keys, 0.5, 10_000)
    assert 120 < len(tenth) < 280 and set(tenth) <= set(half)
    assert sample_keys("user_id", keys, 0.1, 10_000) == tenth  # stable from run to run
    assert all(key_fraction("user_id", k) < 0.1 for k in tenth)
    capped = sample_keys("user_id", keys, 1.0, 50)
    assert len(capped) == 50 and set(capped) <= set(sample_keys("user_id", keys, 1.0, 60))


def _row(key: int, as_of: int, **values: object) -> OnlineRow:
    base = {"clicks_5m": 1, "impressions_5m": 4, "spend_5m": 0.5, "ctr_5m": 0.25}
    return OnlineRow(key, as_of, {**base, **values})  # type: ignore[arg-type]


OFFLINE = {"clicks_5m": 1, "impressions_5m": 4, "spend_5m": 0.5, "ctr_5m": 0.25}


def test_equal_rows_match_and_only_settled_rows_count() -> None:
    online = {1: _row(1, CLOCK - MIN), 2: _row(2, CLOCK - 5_000, clicks_5m=9)}
    result = compare_view(VIEW, [1, 2, 3], online, {1: OFFLINE, 2: OFFLINE}, _ctx())
    assert (result.keys, result.settled, result.unsettled, result.missing_online) == (3, 1, 1, 1)
    assert result.compared == 4 and result.match_rate == 1.0
    [difference] = result.differences
    assert (difference.key, difference.feature, difference.reason) == (2, "clicks_5m", "not_settled")


def test_a_changed_value_is_named_with_both_values_and_unexplained() -> None:
    online = {7: _row(7, CLOCK - MIN, impressions_5m=5)}
    result = compare_view(VIEW, [7], online, {7: OFFLINE}, _ctx())
    assert result.tallies["impressions_5m"].counts["mismatched"] == 1
    assert result.match_rate == 3 / 4
    worst = result.worst(1)[0]
    assert (worst.key, worst.feature, worst.online, worst.offline, worst.reason) == (7, "impressions_5m", 5, 4,
                                                                                   "unexplained")
    assert result.explained["unexplained"] == 1


def test_a_key_absent_offline_is_compared_with_zero_counts_and_a_null_ratio() -> None:
    online = {4: _row(4, CLOCK - MIN, clicks_5m=0, impressions_5m=0, spend_5m=0.0, ctr_5m=None)}
    result = compare_view(VIEW, [4], online, {}, _ctx())
    assert result.match_rate == 1.0 and result.tallies["ctr_5m"].counts["both_null"] == 1


def test_late_event_inside_the_window_at_as_of_explains_the_difference() -> None:
    as_of = CLOCK - 2 * MIN
    inside = LateEvent(5, "late-1", as_of - 3 * MIN)       # leaves at ceil_1m(as_of + 2m) > as_of
    long_gone = LateEvent(6, "late-2", as_of - 7 * MIN)    # left at as_of - 2m
    online = {5: _row(5, as_of, clicks_5m=0), 6: _row(6, as_of, clicks_5m=0)}
    result = compare_view(VIEW, [5, 6], online, {5: OFFLINE, 6: OFFLINE}, _ctx({5: [inside], 6: [long_gone]}))
    reasons = {d.key: d.reason for d in result.differences}
    assert reasons == {5: "late_event", 6: "unexplained"}


def test_writer_lag_explains_what_nothing_else_does() -> None:
    online = {8: _row(8, CLOCK - MIN, clicks_5m=0)}
    result = compare_view(VIEW, [8], online, {8: OFFLINE}, _ctx(behind=12))
    assert result.differences[0].reason == "writer_lag"
