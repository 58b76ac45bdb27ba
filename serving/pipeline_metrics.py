"""Prometheus gauges of the streaming path, made from one PipelineSnapshot at scrape time.

Per feature view (streaming views; the job and the writer serve them all):
  tessera_view_freshness_lag_seconds          stream clock minus the newest as_of written
  tessera_view_freshness_budget_seconds       the view's declared budget, for alert rules
  tessera_view_newest_as_of_timestamp_seconds newest as_of written (epoch s)
  tessera_view_stream_clock_timestamp_seconds newest valid event time the writer has seen (epoch s)
  tessera_view_rows_written_total             rows written, over every run of the writer
  tessera_view_rows_written_per_second        over the writer's last 10 s
  tessera_view_writer_report_age_seconds      since the writer last reported (a stopped writer grows it)
Kafka (shared by the views):
  tessera_kafka_up                            1 when the last probe reached the broker
  tessera_kafka_consumer_lag_messages         end offset minus committed offset, by group and topic
  tessera_dlq_messages, tessera_late_event_messages   messages the DLQ and late topics hold
  tessera_pipeline_redis_up                   1 when the writer's progress could be read from Redis
"""
from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from serving.pipeline_probe import PipelineSnapshot


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class SnapshotCollector:
    def __init__(self, snapshot: PipelineSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        lag = _gauge("tessera_view_freshness_lag_seconds", "Stream clock minus the newest as_of written", ["view"])
        budget = _gauge("tessera_view_freshness_budget_seconds", "The view's freshness budget", ["view"])
        as_of = _gauge("tessera_view_newest_as_of_timestamp_seconds", "Newest as_of written (epoch s)", ["view"])
        clock = _gauge("tessera_view_stream_clock_timestamp_seconds",
                       "Newest valid event time the writer has seen (epoch s)", ["view"])
        rows = CounterMetricFamily("tessera_view_rows_written", "Rows written to the online store", labels=["view"])
        rate = _gauge("tessera_view_rows_written_per_second", "Rows written per second (last 10 s)", ["view"])
        silent = _gauge("tessera_view_writer_report_age_seconds", "Seconds since the writer last reported",
                        ["view"])
        definitions = snap.definitions
        for name, progress in sorted(snap.views.items()):
            if definitions is not None and name in definitions.views:
                budget.add_metric([name], definitions.views[name].freshness_budget_ms / 1000)
            if progress is None:
                continue
            if progress.freshness_lag_ms is not None:
                lag.add_metric([name], progress.freshness_lag_ms / 1000)
            if progress.as_of_ms is not None:
                as_of.add_metric([name], progress.as_of_ms / 1000)
            if progress.clock_ms is not None:
                clock.add_metric([name], progress.clock_ms / 1000)
            rows.add_metric([name], progress.rows_total)
            rate.add_metric([name], progress.rows_per_s)
            silent.add_metric([name], max(0, snap.taken_ms - progress.updated_ms) / 1000)
        yield from (lag, budget, as_of, clock, rows, rate, silent)

        redis_up = _gauge("tessera_pipeline_redis_up", "1 when the writer's progress could be read from Redis")
        redis_up.add_metric([], 0 if snap.redis_error else 1)
        yield redis_up
        kafka = snap.kafka
        up = _gauge("tessera_kafka_up", "1 when the last Kafka probe reached the broker")
        up.add_metric([], 1 if kafka is not None and kafka.ok else 0)
        yield up
        if kafka is None or not kafka.ok:
            return  # no numbers rather than stale ones presented as current
        behind = _gauge("tessera_kafka_consumer_lag_messages", "End offset minus committed offset",
                        ["group", "topic"])
        for group in kafka.lags:
            behind.add_metric([group.group, group.topic], group.behind)
        yield behind
        for metric, value, doc in (("tessera_dlq_messages", kafka.dlq_messages, "Messages the DLQ topic holds"),
                                   ("tessera_late_event_messages", kafka.late_messages,
                                    "Messages the late-events topic holds")):
            if value is not None:
                family = _gauge(metric, doc)
                family.add_metric([], value)
                yield family
