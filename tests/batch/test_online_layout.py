"""The bulk encoders produce exactly the bytes Feast's RedisOnlineStore writes: checked value by
value against the protobuf library, Feast's serialize_entity_key and Feast's field hash."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

from batch.online_layout import (DoubleField, EntityKeyLayout, Int64Field, LayoutError, Piece, field_encoder,
                                 field_name, int64_values, render_rows, resp_bulk, timestamps)

RNG = np.random.default_rng(5)
INT64_EDGES = [0, 1, 127, 128, 16_383, 16_384, 2**31, -1, -128, 2**63 - 1, -(2**63)]


def rows_of(piece: Piece) -> list[bytes]:
    return [bytes(piece.data[min(i, len(piece.data) - 1), :n]) for i, n in enumerate(piece.lengths)]


def test_int64_values_are_feast_value_protos() -> None:
    values = [*INT64_EDGES, *RNG.integers(-(2**63), 2**63 - 1, 2_000, dtype=np.int64).tolist(), None]
    expected = [Value(int64_val=v).SerializeToString() if v is not None else Value().SerializeToString()
                for v in values]
    assert rows_of(int64_values(pa.array(values, pa.int64()))) == expected
    assert expected[-1] == b"" and len(set(expected)) > 1_000


@pytest.mark.parametrize("values", [
    [0, 3, 16_383, None, 7],                                  # all from the lookup table
    [0, 16_384, None, -5, 2**40],                             # falls back to encoding in full
])
def test_int64_field_frames_name_and_value(values: list[int | None]) -> None:
    field = field_name("user_ad_activity", "clicks_1h")
    expected = [resp_bulk(field) + resp_bulk(Value(int64_val=v).SerializeToString() if v is not None else b"")
                for v in values]
    assert rows_of(Int64Field(resp_bulk(field))(pa.chunked_array([pa.array(values, pa.int64())]))) == expected


def test_double_field_frames_name_and_value() -> None:
    values = [0.0, -0.0, 1.5, 1e-300, -2.25, float("inf"), None, float("nan"),
              *RNG.normal(size=500).tolist()]
    field = field_name("user_ad_activity", "ctr_1h")
    # Feast turns null and NaN alike into the empty Value (pd.isnull).
    expected = [resp_bulk(field) + resp_bulk(b"" if v is None or v != v else Value(double_val=v).SerializeToString())
                for v in values]
    assert rows_of(DoubleField(resp_bulk(field))(pa.array(values, pa.float64()))) == expected


def test_timestamps_are_feast_timestamp_protos() -> None:
    micros = [0, 1, 999_999, 1_000_000, -1, 1_772_323_200_000_000, 1_772_323_200_123_000,
              *RNG.integers(-10**16, 10**17, 2_000).tolist()]

    def feast(us: int) -> bytes:
        ts = Timestamp()
        ts.FromMicroseconds(us)
        return ts.SerializeToString()

    assert rows_of(timestamps(np.array(micros, dtype=np.int64))) == [feast(u) for u in micros]


def test_entity_keys_are_feast_redis_keys() -> None:
    layout = EntityKeyLayout.for_join_key("user_id", "tessera", 3)
    ids = np.array([*INT64_EDGES, *RNG.integers(0, 10**9, 500)], dtype=np.int64)
    expected = [serialize_entity_key(EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=int(i))]),
                                     entity_key_serialization_version=3) + b"tessera" for i in ids]
    assert rows_of(layout.keys(ids)) == expected
    assert [layout.key(int(i)) for i in ids] == expected


def value_bytes(v: int | float | None) -> bytes:
    if v is None:
        return b""
    return (Value(int64_val=v) if isinstance(v, int) else Value(double_val=v)).SerializeToString()


def test_field_names_are_feast_hashes_and_rows_render_in_order() -> None:
    assert field_name("campaign_delivery", "spend_1h") == _mmh3("campaign_delivery:spend_1h")
    ints, doubles = [5, None, 20_000], [None, 0.5, 2.0]
    a, b = field_encoder("INT64", b"ab"), field_encoder("DOUBLE", b"cd")
    flat, offsets = render_rows([a(pa.array(ints, pa.int64())), b(pa.array(doubles, pa.float64()))])
    assert [flat[offsets[i]:offsets[i + 1]] for i in range(3)] == [
        resp_bulk(b"ab") + resp_bulk(value_bytes(i)) + resp_bulk(b"cd") + resp_bulk(value_bytes(d))
        for i, d in zip(ints, doubles)]
    with pytest.raises(LayoutError, match="STRING"):
        field_encoder("STRING", b"x")
