"""The PyFlink job: ad_events -> validated, de-duplicated, windowed aggregates -> feature rows.

Compiled from feature_repo/views.py: one keyed aggregation per streaming view. Runs in the Flink
environment (.venv-flink) and talks to the rest of the platform only through Kafka:
  ad_events        -> (this job) -> tessera.features  (rows: view, key, as_of, values)
                                 -> ad_events.dlq     (invalid messages: original bytes + reason)
                                 -> ad_events.late    (events later than the allowed lateness)
Event time comes from `event_time`; the watermark is the newest event time seen, and an event more
than the view's allowed lateness behind it is late. Checkpoints hold the Kafka offsets and every
key's state, so a restarted job resumes where it left off.

    python -m streaming.job [--bounded] [--from-checkpoint auto|PATH|none]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from pyflink.common import Configuration, Row, Types, WatermarkStrategy
from pyflink.common.serialization import SimpleStringSchema
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import (KeyedProcessFunction, OutputTag, ProcessFunction, RuntimeContext,
                                StreamExecutionEnvironment)
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.table import StreamTableEnvironment

from streaming.aggregator import KeyAggregator, ViewPlan, on_event, on_timer
from streaming.checkpoints import checkpoint_dir, restore_point
from streaming.dead_letters import StreamValidator, envelope
from streaming.local_jvm import local_jvm_args
from streaming.stream_clock import PartitionClock
from tessera.config import Settings, load_settings
from tessera.definitions import load_definitions
from tessera.events import AdEvent
from tessera.kafka_clients import java_client_properties, sql_with_clause

DLQ = OutputTag("dlq", Types.STRING())
LATE = OutputTag("late", Types.STRING())
IDLE_MS = 10_000  # a partition silent this long stops holding the stream clock back
from streaming.consumer_groups import JOB as GROUP_ID


class Validate(ProcessFunction):
    """Kafka records (bytes, partition, Kafka timestamp) in; event dicts carrying the stream clock
    out; invalid messages to the dead-letter side output. Runs at parallelism 1 so that it sees every
    partition and can hold the clock at the slowest one (see stream_clock.py)."""

    def __init__(self, partitions: int, idle_ms: int, ready_file: str) -> None:
        self.partitions = partitions
        self.idle_ms = idle_ms
        self.ready_file = ready_file

    def open(self, runtime_context: RuntimeContext) -> None:
        # Tells `tessera stream start --wait` that the job is processing (PyFlink opens Python
        # operators on their first record; local runs only).
        Path(self.ready_file).parent.mkdir(parents=True, exist_ok=True)
        Path(self.ready_file).write_text(str(int(time.time() * 1000)))
        self.validator = StreamValidator()
        self.clock = PartitionClock(self.partitions, self.idle_ms)
        self.invalid = runtime_context.get_metrics_group().counter("invalid_messages")

    def process_element(self, record: Row, ctx: ProcessFunction.Context) -> Iterable[Any]:
        raw = None if record[0] is None else bytes(record[0])  # None: a tombstone, a dead letter too
        partition = record[1]
        written = record[2].to_epoch_milli()  # a pyflink Instant
        result = self.validator.check(raw)
        now = int(time.time() * 1000)
        if isinstance(result, AdEvent):
            clock = self.clock.observe(partition, result.event_time, now, written)
            yield {**result.as_dict(), "clock": clock}
        else:
            self.clock.observe(partition, None, now, written)
            self.invalid.inc()
            yield DLQ, envelope(raw, result, self.validator.clock_ms)


class StreamClockTime(TimestampAssigner):
    """The record's Flink timestamp is the stream clock, so the watermark is the per-partition
    minimum and event-time timers (leave boundaries) fire only when every partition has passed."""

    def extract_timestamp(self, value: dict[str, Any], record_timestamp: int) -> int:
        return value["clock"] if value["clock"] is not None else 0


class Aggregate(KeyedProcessFunction):
    """Every streaming view in one keyed operator, keyed by "view:entity id" (one Python operator
    instead of one per view: half the serialization between the JVM and Python). Keyed state is a
    KeyAggregator; timers fire at leave boundaries."""

    def __init__(self, plans: list[ViewPlan]) -> None:
        self.plans = {p.view: p for p in plans}
        self.first = plans[0].view  # late events are reported once, by the first view

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(ValueStateDescriptor("aggregates", Types.PICKLED_BYTE_ARRAY()))
        group = runtime_context.get_metrics_group()
        self.late = group.counter("late_events")
        self.duplicates = group.counter("duplicate_events")
        self.rows = group.counter("rows_emitted")

    def process_element(self, item: tuple[str, int, dict[str, Any]], ctx: KeyedProcessFunction.Context
                        ) -> Iterable[Any]:
        view, key, event = item
        plan = self.plans[view]
        clock = event["clock"]
        if clock is not None and event["event_time"] < clock - plan.allowed_lateness_ms:
            if view == self.first:
                self.late.inc()
                yield LATE, json.dumps(event, separators=(",", ":"))
            return
        agg = self.state.value() or KeyAggregator()
        row, timers = on_event(plan, agg, key, event)
        if row is None:
            self.duplicates.inc()
            return
        for boundary in timers:
            ctx.timer_service().register_event_time_timer(boundary)
        self.state.update(agg)
        self.rows.inc()
        yield row.to_json()

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterable[Any]:
        agg = self.state.value()
        if agg is None:
            return
        view, _, key = ctx.get_current_key().partition(":")
        row = on_timer(self.plans[view], agg, int(key), timestamp)
        if agg.is_empty():
            self.state.clear()  # nothing left in any window: the zero row below is the last word
        else:
            self.state.update(agg)
        if row is not None:
            self.rows.inc()
            yield row.to_json()


def fan_out(plans: list[ViewPlan]):
    """event -> one (view, key, event) per streaming view."""
    def split(event: dict[str, Any]) -> Iterable[tuple[str, int, dict[str, Any]]]:
        for plan in plans:
            yield plan.view, event[plan.key_field], event
    return split


def flink_configuration(settings: Settings, restore_from: Path | None) -> Configuration:
    conf = Configuration()
    jars = sorted((settings.jar_dir / "flink").glob("*.jar"))
    if settings.flink.engine == "jvm":
        from streaming.jvm_engine import aggregator_jar
        jars.append(aggregator_jar(settings))
    conf.set_string("pipeline.jars", ";".join(f"file://{j}" for j in jars))
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("parallelism.default", str(settings.flink.parallelism))
    conf.set_string("execution.checkpointing.interval", f"{settings.flink.checkpoint_interval_ms} ms")
    checkpoints = f"file://{checkpoint_dir(settings)}"  # loads the definitions: once
    conf.set_string("execution.checkpointing.dir", checkpoints)
    conf.set_string("state.checkpoints.dir", checkpoints)
    conf.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    conf.set_string("execution.checkpointing.num-retained", "3")
    conf.set_string("state.backend.type", "hashmap")
    # Bundles amortize the JVM<->Python round trips (10,000 events: twice the throughput of 1,000);
    # 200 ms bounds what a bundle adds to freshness. The state cache keeps hot keys in Python.
    conf.set_string("python.fn-execution.bundle.size", "10000")
    conf.set_string("python.fn-execution.bundle.time", "200")
    conf.set_string("python.state.cache-size", "100000")
    conf.set_string("pipeline.auto-watermark-interval", "100 ms")
    if settings.flink.engine == "jvm":
        # Chained Java operators hand records on without a defensive copy: the JVM engine's functions
        # never keep or change a record after passing it on.
        conf.set_string("pipeline.object-reuse", "true")
    conf.set_string("taskmanager.memory.process.size", "1600m")
    conf.set_string("rest.bind-address", "127.0.0.1")
    if restore_from is not None:
        conf.set_string("execution.state-recovery.path", str(restore_from))
    for key, value in settings.flink.conf.items():
        conf.set_string(key, value)
    return conf


def ready_file(settings: Settings) -> Path:
    return settings.state_dir / "run" / "stream-job.ready"


def partition_count(settings: Settings) -> int:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, **settings.kafka.client_options})
    topic = admin.list_topics(settings.kafka.topic, timeout=30).topics[settings.kafka.topic]
    if topic.error is not None:
        raise SystemExit(f"topic {settings.kafka.topic}: {topic.error}")
    return len(topic.partitions)


def build(env: StreamExecutionEnvironment, settings: Settings, bounded: bool, views: list[str] | None = None,
          restored: bool = False) -> None:
    """`restored`: the job resumes from a checkpoint, which holds its offsets. Without one its state
    is empty, so it reads the topic from the earliest offset: resuming at the group's committed
    offsets (another engine's, or from before the checkpoints were lost) would count only the
    events after them."""
    k = settings.kafka
    definitions = load_definitions(settings.feature_repo)
    t_env = StreamTableEnvironment.create(env)
    options = {
        "connector": "kafka", "topic": k.topic, "properties.bootstrap.servers": k.bootstrap_servers,
        "properties.group.id": GROUP_ID, "scan.startup.mode": "group-offsets" if restored else "earliest-offset",
        "properties.auto.offset.reset": "earliest", "value.format": "raw",
        # Fetches answered at 64 KB or after 50 ms rather than per handful of records (see kafka_batches.py).
        "properties.fetch.min.bytes": "65536", "properties.fetch.max.wait.ms": "50",
        # A backlog read 64 KB of a partition at a time, not 1 MB: every partition then delivers every
        # few hundred records. A slow job (a cold start) took longer than the idle period over 1 MB
        # of one partition, the others looked idle, and the clock ran ahead of their backlog.
        "properties.max.partition.fetch.bytes": "65536",
        **({"scan.bounded.mode": "latest-offset"} if bounded else {}),
        # Security settings translated from librdkafka's names (tessera/kafka_clients.py).
        **{f"properties.{key}": value for key, value in java_client_properties(k).items()},
    }
    with_clause = sql_with_clause(options)  # quoted: a password may hold a quote
    # The SQL connector gives the raw bytes (for the dead-letter topic), and the partition and the
    # time written (for the clock's idle rule, stream_clock.py).
    t_env.execute_sql(f"""CREATE TEMPORARY TABLE ad_events_source (
        `value` BYTES,
        `partition_id` INT METADATA FROM 'partition' VIRTUAL,
        `written` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
    ) WITH ({with_clause})""")
    raw = t_env.to_data_stream(t_env.from_path("ad_events_source"))

    chosen = [v for v in definitions.streaming_views() if not views or v.name in views]
    if not chosen:
        raise SystemExit(f"no streaming views to run (asked for {views})")
    plans = [ViewPlan.compile(v) for v in chosen]
    if settings.flink.engine == "jvm":
        from streaming import jvm_engine
        rows, late, dead_letters = jvm_engine.build(raw, plans, settings, partition_count(settings), IDLE_MS,
                                                    ready_file(settings))
    else:
        validated = (raw.process(Validate(partition_count(settings), IDLE_MS, str(ready_file(settings))),
                                 output_type=Types.PICKLED_BYTE_ARRAY()).set_parallelism(1).name("validate"))
        events = validated.assign_timestamps_and_watermarks(
            WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(StreamClockTime()))
        aggregated = (events.flat_map(fan_out(plans), output_type=Types.PICKLED_BYTE_ARRAY()).name("per view")
                      .key_by(lambda item: f"{item[0]}:{item[1]}", key_type=Types.STRING())
                      .process(Aggregate(plans), output_type=Types.STRING())
                      .name("aggregate " + ", ".join(p.view for p in plans)))
        rows, late, dead_letters = aggregated, aggregated.get_side_output(LATE), validated.get_side_output(DLQ)

    def sink(topic: str) -> KafkaSink:
        builder = (KafkaSink.builder().set_bootstrap_servers(k.bootstrap_servers)
                   .set_record_serializer(KafkaRecordSerializationSchema.builder().set_topic(topic)
                                          .set_value_serialization_schema(SimpleStringSchema()).build())
                   .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
                   # Rows batch up for 20 ms and go lz4-compressed (JSON rows shrink about 5x): the broker
                   # then handles a fraction of the requests and bytes, at 20 ms of freshness.
                   .set_property("linger.ms", "20")
                   .set_property("compression.type", "lz4")
                   # A dead letter of a message at the broker's 1 MiB limit is a third larger (base64).
                   .set_property("max.request.size", str(k.dlq_max_message_bytes)))
        for key, value in java_client_properties(k).items():  # SASL/TLS, as the source has them
            builder = builder.set_property(key, value)
        return builder.build()

    rows.sink_to(sink(k.features_topic)).name("feature rows")
    dead_letters.sink_to(sink(k.dlq_topic)).name("dead letters")
    late.sink_to(sink(k.late_topic)).name("late events")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streaming.job", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bounded", action="store_true", help="stop at the offsets that exist at start")
    parser.add_argument("--from-checkpoint", default="auto",
                        help="'auto' (newest retained checkpoint, default), 'none' (empty state: replay the "
                             "topic from its earliest offset), or a checkpoint path")
    parser.add_argument("--views", help="comma-separated streaming views (default: all)")
    args = parser.parse_args(argv)
    settings = load_settings()
    restore = restore_point(settings, args.from_checkpoint)
    print(f"[stream] starting ({settings.flink.engine} engine): kafka {settings.kafka.bootstrap_servers} "
          f"topic {settings.kafka.topic}, "
          f"restore from {restore or 'nothing: empty state, reading the topic from its earliest offset'}", flush=True)
    # PyFlink starts the local mini-cluster's JVM with $JVM_ARGS (pyflink_gateway_server.py); flags
    # already in the environment come last, so they win.
    os.environ["JVM_ARGS"] = " ".join([*local_jvm_args(settings), os.environ.get("JVM_ARGS", "")]).strip()
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(settings, restore))
    build(env, settings, args.bounded, args.views.split(",") if args.views else None, restored=restore is not None)
    env.execute("tessera-stream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
