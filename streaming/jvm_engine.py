"""The JVM engine ([flink] engine = "jvm"): the per-event work after validation runs as Java
operators (jars/aggregator, built by scripts/setup.sh) instead of PyFlink Python operators.

Python still builds the job: the Kafka source, validation and the dead-letter envelope (one
implementation of the event schema, tessera/events.py), and the sinks. The plan the Java Aggregate
runs is compiled here from the same declarations (ViewPlan.to_dict), so no feature is written in Java.
Only the Python engine's keyed state and timers are replaced: in PyFlink's process mode every state
access and timer is a round trip between the JVM and the Python worker, which capped the job at
about 1,600 events/s.
"""
from __future__ import annotations

from pathlib import Path

from pyflink.common import Row, Types
from pyflink.datastream import DataStream
from pyflink.java_gateway import get_gateway
from pyflink.util.java_utils import add_jars_to_context_class_loader

from streaming.aggregator import ViewPlan, plans_to_json
from tessera.config import Settings
from tessera.events import AdEvent

JAR = "tessera-aggregator.jar"
# What the Python validator hands the JVM: an AdEvent and the stream clock (Event.java, Topology.FromRow).
EVENT_ROW = Types.ROW_NAMED(
    ["event_id", "event_type", "event_time", "user_id", "ad_id", "campaign_id", "cost", "clock"],
    [Types.STRING(), Types.STRING(), Types.LONG(), Types.LONG(), Types.LONG(), Types.LONG(), Types.DOUBLE(),
     Types.LONG()])


def aggregator_jar(settings: Settings) -> Path:
    jar = settings.jar_dir / "aggregator" / JAR
    if not jar.is_file():
        raise SystemExit(f"[flink] engine = \"jvm\" needs {jar}: run scripts/setup.sh (it builds jars/aggregator)")
    return jar


def event_row(event: AdEvent, clock: int | None) -> Row:
    return Row(event.event_id, event.event_type, event.event_time, event.user_id, event.ad_id, event.campaign_id,
               event.cost, clock)


def aggregate(validated: DataStream, plans: list[ViewPlan], settings: Settings) -> tuple[DataStream, DataStream]:
    """Validated event rows -> (feature rows as JSON, late events as JSON), computed in the JVM."""
    # pipeline.jars ships the jar to the cluster; the client's class loader needs it to build the graph.
    add_jars_to_context_class_loader([aggregator_jar(settings).as_uri()])
    topology = get_gateway().jvm.dev.tessera.stream.Topology
    rows = topology.aggregateRows(validated._j_data_stream, plans_to_json(plans))
    return DataStream(rows), DataStream(topology.late(rows))
