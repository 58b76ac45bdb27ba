"""What the /status tests write before they look: the writer's progress in Redis (through the sink's
own ProgressPublisher), a failing parity report and a drift report with one flagged feature."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from streaming.aggregator import FeatureRow
from streaming.progress import ClockPublisher, ProgressPublisher, progress_key
from tessera.config import Settings
from tessera.services.redis_server import redis_client

FRESH_LAG_MS = 1_000     # user_ad_activity: within its 5 s budget
STALE_LAG_MS = 60_000    # campaign_delivery: over 3 budgets behind


def publish_progress(settings: Settings) -> int:
    """user_ad_activity fresh, campaign_delivery far behind; returns the stream clock used."""
    clock = int(time.time() * 1000)
    client = redis_client(settings)
    views = ["user_ad_activity", "campaign_delivery"]
    client.delete(*(progress_key(v) for v in views))  # rows_total adds up across runs otherwise
    publisher = ProgressPublisher(client, views)
    publisher.note([FeatureRow("user_ad_activity", k, clock - FRESH_LAG_MS - k, {}) for k in range(3)])
    publisher.note([FeatureRow("campaign_delivery", 10, clock - STALE_LAG_MS, {})])
    assert publisher.maybe_publish(force=True)
    clock_publisher = ClockPublisher(client, views)
    clock_publisher.note(clock)
    assert clock_publisher.maybe_publish(force=True)
    return clock


def _iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_parity_report(settings: Settings) -> Path:
    """The shape `tessera parity` writes: campaign_delivery fails, with one named worst key."""
    report = {
        "generated_at": _iso_now(), "passed": False, "threshold": 1.0, "match_rate": 0.975,
        "stream_clock_ms": int(time.time() * 1000), "sample": {"fraction": 0.1},
        "views": [
            {"view": "user_ad_activity", "keys": 40, "rows": 40, "settled": 38, "unsettled": 2, "match_rate": 1.0,
             "features": [{"feature": "impressions_5m", "matched": 38, "mismatched": 0, "online_only_null": 0,
                           "offline_only_null": 0, "both_null": 0, "smape": 0.0, "match_rate": 1.0}],
             "worst": [], "explained": {"late_event": 0, "not_settled": 0, "writer_lag": 0, "unexplained": 0}},
            {"view": "campaign_delivery", "keys": 20, "rows": 20, "settled": 20, "unsettled": 0, "match_rate": 0.95,
             "features": [{"feature": "clicks_1h", "matched": 19, "mismatched": 1, "online_only_null": 0,
                           "offline_only_null": 0, "both_null": 0, "smape": 0.01, "match_rate": 0.95}],
             "worst": [{"key": 424242, "feature": "clicks_1h", "online": 3, "offline": 4,
                        "as_of_ms": 1764000000000, "reason": "unexplained"}],
             "explained": {"late_event": 0, "not_settled": 0, "writer_lag": 0, "unexplained": 1}},
        ]}
    path = settings.state_dir / "parity" / "last.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    return path


def write_drift_report(settings: Settings) -> Path:
    """A report as `tessera drift` writes it: spend_1h drifted, clicks_1h did not."""
    from tessera.drift import compare
    from tessera.drift_report import write_report
    import numpy as np

    rng = np.random.default_rng(3)
    spend = compare("spend_1h", rng.lognormal(0, 1, 2000), rng.lognormal(1.2, 1, 2000), threshold=0.2)
    clicks = compare("clicks_1h", rng.poisson(2, 2000), rng.poisson(2, 2000), threshold=0.2)
    report = {"generated_at": _iso_now(), "threshold": 0.2, "passed": False, "flagged": ["user_ad_activity:spend_1h"],
              "reference": {"start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z", "instants": 24},
              "sample": {"keys_per_view": 5000, "min_values": 100},
              "views": [{"view": "user_ad_activity", "error": None, "flagged": ["spend_1h"],
                         "features": [spend.as_dict(), clicks.as_dict()]}]}
    assert spend.flagged and not clicks.flagged
    return write_report(settings, report)
