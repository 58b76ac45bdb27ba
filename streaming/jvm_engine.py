"""The JVM engine ([flink] engine = "jvm"): the per-event work runs as Java operators
(jars/aggregator, built by scripts/setup.sh) instead of PyFlink Python operators.

Python still builds the job: the Kafka source and the sinks, and the plan the Java Aggregate runs,
compiled here from the same declarations (ViewPlan.to_dict), so no feature is written in Java.
Validation, the stream clock and the dead-letter envelope are Java twins of tessera/events.py,
streaming/stream_clock.py and streaming/dead_letters.py, held to the same answers, reasons and
bytes by tests/streaming/test_jvm_validation.py. In PyFlink's process mode every event that crosses
to a Python worker costs a serialization each way, and every state access and timer a round trip:
Python operators capped the job at about 1,600 events/s, a Python validator alone at about 10,000.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pyflink.datastream import DataStream
from pyflink.java_gateway import get_gateway
from pyflink.util.java_utils import add_jars_to_context_class_loader

from streaming.aggregator import ViewPlan, plans_to_json
from tessera.config import Settings

JAR = "tessera-aggregator.jar"


def aggregator_jar(settings: Settings) -> Path:
    jar = settings.jar_dir / "aggregator" / JAR
    if not jar.is_file():
        raise SystemExit(f"[flink] engine = \"jvm\" needs {jar}: run scripts/setup.sh (it builds jars/aggregator)")
    return jar


def build(records: DataStream, plans: list[ViewPlan], settings: Settings, partitions: int, idle_ms: int,
          ready_file: Path) -> tuple[DataStream, DataStream, DataStream]:
    """Kafka records (value bytes, partition, Kafka timestamp) -> (feature rows, late events, dead
    letters), all JSON, computed in the JVM."""
    # pipeline.jars ships the jar to the cluster; the client's class loader needs it to build the graph.
    add_jars_to_context_class_loader([aggregator_jar(settings).as_uri()])
    topology = get_gateway().jvm.dev.tessera.stream.Topology
    validated = topology.validate(records._j_data_stream, partitions, idle_ms, str(ready_file))
    # Validate checkpoints the stream clock, so ids may be forgotten once late (ViewPlan.forget_at_lateness).
    plans = [replace(p, forget_at_lateness=True) for p in plans]
    rows = topology.aggregate(validated, plans_to_json(plans), settings.flink.coalesce_ms)
    return DataStream(rows), DataStream(topology.late(rows)), DataStream(topology.deadLetters(validated))
