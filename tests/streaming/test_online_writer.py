"""The online writer sends Feast only each key's newest row of a batch: what Feast would keep anyway."""
from __future__ import annotations

from streaming.aggregator import FeatureRow
from streaming.online_writer import newest_per_key, value_proto


def test_each_key_keeps_its_first_newest_row() -> None:
    rows = [FeatureRow("v", 1, 10, {"n": 1}), FeatureRow("v", 2, 5, {"n": 1}), FeatureRow("v", 1, 12, {"n": 2}),
            FeatureRow("v", 1, 11, {"n": 9}), FeatureRow("v", 1, 12, {"n": 3})]
    assert sorted((r.key, r.as_of, r.values["n"]) for r in newest_per_key(rows)) == [(1, 12, 2), (2, 5, 1)]


def test_shared_value_protos_hold_the_right_values() -> None:
    assert value_proto(None, "int64").WhichOneof("val") is None
    assert value_proto(7, "int64").int64_val == 7 and value_proto(10**12, "int64").int64_val == 10**12
    assert value_proto(0.0, "float64").double_val == 0.0 and value_proto(0.25, "float64").double_val == 0.25
    assert str(value_proto(-0.0, "float64").double_val) == "-0.0"
