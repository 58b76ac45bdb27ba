"""The feature API's shortcuts give Feast's own answers: Redis keys and decoded values."""
from __future__ import annotations

import math
import random

import pytest
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import feast_value_type_to_python_type
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

from serving import online_reader
from serving.online_reader import decode_as_of_ms, decode_value
from serving.plan import EntityPlan

LIMITS = {ValueType.INT64: 2**63, ValueType.INT32: 2**31}


@pytest.mark.parametrize("value_type", [ValueType.INT64, ValueType.INT32])
def test_integer_keys_are_feasts(value_type: ValueType) -> None:
    entity = EntityPlan("user", "user_id", value_type, ("v",), b"tessera", 3)
    assert entity._fixed_width_key is not None  # the shortcut is in use
    limit = LIMITS[value_type]
    rng = random.Random(3)
    ids = [0, 1, -1, limit - 1, -limit, 255, 256] + [rng.randrange(-limit, limit) for _ in range(5_000)]
    for entity_id in ids:
        field = "int64_val" if value_type == ValueType.INT64 else "int32_val"
        proto = EntityKeyProto(join_keys=["user_id"], entity_values=[ValueProto(**{field: entity_id})])
        expected = serialize_entity_key(proto, entity_key_serialization_version=3) + b"tessera"
        assert entity.redis_key(entity_id) == expected


def test_string_keys_use_feasts_encoder() -> None:
    entity = EntityPlan("shop", "shop_id", ValueType.STRING, ("v",), b"p", 3)
    assert entity._fixed_width_key is None
    proto = EntityKeyProto(join_keys=["shop_id"], entity_values=[ValueProto(string_val="a-é")])
    assert entity.redis_key("a-é") == serialize_entity_key(proto, entity_key_serialization_version=3) + b"p"


VALUES = [ValueProto(int64_val=v) for v in (0, 1, -1, 2**63 - 1, 17)] + \
         [ValueProto(int32_val=v) for v in (0, -5, 2**31 - 1)] + \
         [ValueProto(double_val=v) for v in (0.0, -0.0, 0.1, 1e308, 5e-324, math.inf, -math.inf, math.nan)] + \
         [ValueProto(float_val=1.5), ValueProto(bool_val=True), ValueProto(bool_val=False),
          ValueProto(bytes_val=b"\x00\xff"), ValueProto(string_val="x")]


@pytest.mark.parametrize("cached", [False, True])
def test_decoded_values_are_feasts(cached: bool) -> None:
    online_reader._decoded.clear()
    for proto in VALUES:
        raw = proto.SerializeToString()
        kind = proto.WhichOneof("val")
        value_type = {"int64_val": ValueType.INT64, "int32_val": ValueType.INT32, "double_val": ValueType.DOUBLE,
                      "float_val": ValueType.FLOAT, "bool_val": ValueType.BOOL, "bytes_val": ValueType.BYTES,
                      "string_val": ValueType.STRING}[kind]
        expected = feast_value_type_to_python_type(proto, value_type)
        if cached:
            decode_value(raw, value_type)  # the second read comes from the cache
        got = decode_value(raw, value_type)
        # repr: -0.0 and 0.0, and the infinities, told apart
        assert type(got) is type(expected) and repr(got) == repr(expected), proto


def test_a_uuid_string_is_decoded_by_feast_every_time() -> None:
    raw = ValueProto(string_val="12345678-1234-5678-1234-567812345678").SerializeToString()
    as_string = decode_value(raw, ValueType.STRING)
    as_uuid = decode_value(raw, ValueType.UUID)
    assert isinstance(as_string, str)
    assert as_uuid == feast_value_type_to_python_type(ValueProto.FromString(raw), ValueType.UUID)
    assert not isinstance(as_uuid, str)


def test_lists_are_fresh_objects() -> None:
    raw = ValueProto(int64_list_val={"val": [1, 2]}).SerializeToString()
    first = decode_value(raw, ValueType.INT64_LIST)
    first.append(3)
    assert decode_value(raw, ValueType.INT64_LIST) == [1, 2]


def test_null_and_absent() -> None:
    assert decode_value(None, ValueType.INT64) is None
    assert decode_value(b"", ValueType.INT64) is None
    assert decode_as_of_ms(None) is None


def test_as_of_ms() -> None:
    for seconds, nanos in ((1, 0), (1_700_000_000, 999_999_999), (1_700_000_000, 1_000_000)):
        raw = Timestamp(seconds=seconds, nanos=nanos).SerializeToString()
        for _ in range(2):
            assert decode_as_of_ms(raw) == seconds * 1000 + nanos // 1_000_000


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(online_reader, "DECODED_CACHE_SIZE", 10)
    online_reader._decoded.clear()
    for v in range(100):
        assert decode_value(ValueProto(int64_val=v).SerializeToString(), ValueType.INT64) == v
    assert len(online_reader._decoded) <= 10
