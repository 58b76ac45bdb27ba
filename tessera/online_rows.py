"""Read online rows (as_of and values) of one view for many keys, through Feast's Redis online store."""
from __future__ import annotations

from typing import Iterator

from feast import FeatureStore
from feast.infra.online_stores.redis import RedisOnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from tessera.config import Settings
from tessera.definitions import WindowedView
from tessera.feast_objects import repo_config
from tessera.parity_compare import OnlineRow, Value

READ_BATCH = 1_000


def proto_value(value: ValueProto) -> Value:
    kind = value.WhichOneof("val")
    return None if kind is None else getattr(value, kind)


def _chunks(keys: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(keys), size):
        yield keys[i:i + size]


def read_online_rows(settings: Settings, view: WindowedView, keys: list[int]) -> dict[int, OnlineRow]:
    """Keys without a row for the view are left out."""
    config = repo_config(settings)
    feast_view = FeatureStore(repo_path=str(settings.feature_repo), config=config).get_feature_view(view.name)
    store = RedisOnlineStore()
    join_key = view.entity.join_key
    out: dict[int, OnlineRow] = {}
    for chunk in _chunks(keys, READ_BATCH):
        entity_keys = [EntityKeyProto(join_keys=[join_key], entity_values=[ValueProto(int64_val=k)]) for k in chunk]
        for key, (ts, values) in zip(chunk, store.online_read(config, feast_view, entity_keys)):
            if ts is None or not values or ts.timestamp() == 0:  # Feast's answer for a key it has not seen
                continue
            out[key] = OnlineRow(key, round(ts.timestamp() * 1000),
                                 {name: proto_value(v) for name, v in values.items()})
    return out
