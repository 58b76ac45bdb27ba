"""A features topic of a test's own, filled with feature rows, for the online writer on the real stack."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from streaming.aggregator import FeatureRow
from streaming.consumer_groups import SINK as SINK_GROUP
from streaming.control import lags
from streaming.sink import Sink
from tessera.config import Settings
from tessera.definitions import Definitions, load_definitions
from tessera.kafka_io import make_producer
from tests.serving.stack import apply_registry

ROOT = Path(__file__).resolve().parents[2]


def writer_settings(stack_settings: Settings, tmp_path: Path, prefix: str, db: int) -> tuple[Settings, Definitions]:
    """Settings with a data directory, a Redis db and a features topic of the test's own, Feast applied
    (each test a db of its own: the progress hash counts on from what an earlier writer published)."""
    settings = stack_settings.model_copy(deep=True)
    settings.paths.data_dir = tmp_path / "data"
    settings.redis.db = db
    settings.kafka.features_topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    definitions = load_definitions(ROOT / "feature_repo")
    apply_registry(settings, definitions)
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, **settings.kafka.client_options})
    topic = NewTopic(settings.kafka.features_topic, num_partitions=1, replication_factor=1,
                     config={"message.timestamp.type": "LogAppendTime"})  # as `tessera services up` makes it
    admin.create_topics([topic])[topic.topic].result(30)
    return settings, definitions


def produce_rows(settings: Settings, definitions: Definitions, count: int, first_key: int = 1) -> list[FeatureRow]:
    view = definitions.view("user_ad_activity")
    rows = [FeatureRow(view.name, key, 1_780_000_000_000 + key, {f.name: key for f in view.features})
            for key in range(first_key, first_key + count)]
    producer = make_producer(settings)
    for r in rows:
        producer.produce(settings.kafka.features_topic, r.to_json().encode(), str(r.key).encode())
    assert producer.flush(30) == 0
    return rows


def committed(settings: Settings) -> int:
    """The writer's committed offset on its features topic (0 when it has none)."""
    return next(lag.committed for lag in lags(settings) if lag.group == SINK_GROUP)


def wait_committed(sink: Sink, settings: Settings, want: int, timeout_s: float = 60) -> None:
    """Steps the writer until its committed offset is `want`: the commit is asynchronous, and its
    acknowledgement is served by the next steps."""
    deadline = time.monotonic() + timeout_s
    while committed(settings) != want:
        assert time.monotonic() < deadline, f"committed {committed(settings)} of {want}"
        sink.step()
