"""/status.json and the pipeline gauges of /metrics, in process, against real Redis; Kafka is a port
nobody listens on, so these also show that neither hangs when the broker is down."""
from __future__ import annotations

import time
from typing import Iterator

import pytest

from serving.app import create_app
from streaming.aggregator import FeatureRow
from streaming.progress import ClockPublisher, ProgressPublisher, parse_progress, progress_key
from tessera.config import Settings
from tessera.services.redis_server import redis_client
from tests.serving.stack import ServingStack, TestClient, free_port
from tests.serving.status_fixtures import (FRESH_LAG_MS, STALE_LAG_MS, publish_progress, write_drift_report,
                                          write_parity_report)


def without_kafka(settings: Settings) -> Settings:
    dead = settings.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    return settings.model_copy(update={"kafka": dead})


def status_when_kafka_probed(client: TestClient, path: str = "/status.json") -> dict:
    """The first probe of a dead broker takes its timeout; until then Kafka is "not probed yet"."""
    deadline = time.monotonic() + 15
    while True:
        started = time.monotonic()
        data = client.get(path).json()
        assert time.monotonic() - started < 3, "a dead broker must not hold the page"
        if data["kafka"]["state"] != "grey" or time.monotonic() > deadline:
            return data
        time.sleep(0.2)


@pytest.fixture()
def status_client(serving_stack: ServingStack) -> Iterator[tuple[TestClient, Settings, int]]:
    settings = without_kafka(serving_stack.settings)
    clock = publish_progress(settings)
    write_parity_report(settings)
    write_drift_report(settings)
    with TestClient(create_app(settings, environ={})) as client:
        yield client, settings, clock


def test_status_json_judges_each_part(status_client) -> None:
    client, _, clock = status_client
    for _ in range(5):
        assert client.get("/features/user/1").status_code == 200
    data = status_when_kafka_probed(client)
    views = {v["view"]: v for v in data["views"]}
    assert set(views) == {"user_ad_activity", "campaign_delivery", "user_profile_daily"}
    fresh, stale = views["user_ad_activity"], views["campaign_delivery"]
    assert fresh["state"] == "green" and fresh["freshness_lag_s"] == pytest.approx(FRESH_LAG_MS / 1000, abs=0.01)
    assert stale["state"] == "red" and stale["freshness_lag_s"] == pytest.approx(STALE_LAG_MS / 1000)
    assert fresh["rows_total"] == 3 and stale["rows_total"] == 1
    assert views["user_profile_daily"]["state"] == "grey"  # batch: not the stream's to judge
    assert data["kafka"]["state"] == "red" and data["kafka"]["ok"] is False
    assert data["parity"]["state"] == "red" and data["parity"]["passed"] is False
    parity_views = {v["view"]: v for v in data["parity"]["views"]}
    assert parity_views["campaign_delivery"]["differences"] == 1
    assert parity_views["campaign_delivery"]["worst"][0]["key"] == 424242
    assert data["drift"]["state"] == "amber" and data["drift"]["flagged"] == ["user_ad_activity:spend_1h"]
    latency = {(r["method"], r["route"]): r for r in data["latency"]}
    features = latency[("GET", "/features/{entity}/{entity_id}")]
    assert features["count"] >= 5 and 0 < features["p50_ms"] <= features["p99_ms"]
    assert data["state"] == "red"


def test_status_without_reports_says_so(serving_stack: ServingStack, tmp_path) -> None:
    settings = without_kafka(serving_stack.settings)
    settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={"state_dir": tmp_path})})
    with TestClient(create_app(settings, environ={})) as client:
        data = client.get("/status.json").json()
        page = client.get("/status")
    assert data["parity"]["state"] == "grey" and "tessera parity" in data["parity"]["note"]
    assert data["drift"]["state"] == "grey" and "tessera drift" in data["drift"]["note"]
    assert page.status_code == 200 and "no parity run yet" in page.text


def test_metrics_export_freshness_and_kafka_down(status_client) -> None:
    client, _, clock = status_client
    status_when_kafka_probed(client)
    started = time.monotonic()
    text = client.get("/metrics").text
    assert time.monotonic() - started < 3
    lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
             if line and not line.startswith("#")}
    assert lines['tessera_view_freshness_lag_seconds{view="user_ad_activity"}'] == pytest.approx(1.0, abs=0.01)
    assert lines['tessera_view_freshness_lag_seconds{view="campaign_delivery"}'] == pytest.approx(60.0)
    assert lines['tessera_view_freshness_budget_seconds{view="user_ad_activity"}'] == 5.0
    assert lines['tessera_view_stream_clock_timestamp_seconds{view="user_ad_activity"}'] == pytest.approx(clock / 1000)
    assert lines['tessera_view_rows_written_total{view="user_ad_activity"}'] == 3.0
    assert 'tessera_view_rows_written_per_second{view="user_ad_activity"}' in lines
    assert lines["tessera_kafka_up"] == 0.0 and lines["tessera_pipeline_redis_up"] == 1.0
    assert not any(name.startswith("tessera_kafka_consumer_lag_messages") for name in lines)  # unknown, not 0
    assert any(name.startswith("tessera_api_requests_total") for name in lines)  # the API's own are still there
    # Cached: a second scrape right after does not probe again, and says the same.
    again = client.get("/metrics").text
    assert 'tessera_view_freshness_lag_seconds{view="campaign_delivery"} 60.0' in again


def test_progress_never_goes_back_and_counts_across_runs(serving_stack: ServingStack) -> None:
    client = redis_client(serving_stack.settings)
    view = "probe_view_progress"
    client.delete(progress_key(view))
    first, first_clock = ProgressPublisher(client, [view]), ClockPublisher(client, [view])
    first.note([FeatureRow(view, 1, 5_000, {}), FeatureRow(view, 2, 7_000, {})])
    first_clock.note(9_000)
    assert first.maybe_publish(force=True) and first_clock.maybe_publish(force=True)
    # A restarted writer and archiver replay older rows and events: as_of and the clock stay, the
    # count adds up.
    second, second_clock = ProgressPublisher(client, [view]), ClockPublisher(client, [view])
    second.note([FeatureRow(view, 1, 4_000, {})])
    second_clock.note(6_000)
    assert second.maybe_publish(force=True) and second_clock.maybe_publish(force=True)
    progress = parse_progress(view, client.hgetall(progress_key(view)))
    assert progress is not None
    assert (progress.as_of_ms, progress.clock_ms, progress.rows_total) == (7_000, 9_000, 3)
    assert progress.freshness_lag_ms == 2_000
    assert not second.maybe_publish() and not second_clock.maybe_publish()  # within a second: not again
    assert parse_progress(view, {}) is None
    client.delete(progress_key(view))
