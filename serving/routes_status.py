"""`GET /status` (a page for people) and `GET /status.json` (the same data for machines).

Per feature view: freshness (stream clock minus newest as_of, against the view's budget), rows
written per second and consumer lag; the DLQ and late-event counts; the last `tessera parity` and
`tessera drift` reports (read from <state_dir>/parity/last.json and drift/last.json); request
latency percentiles from the API's own histograms. Each part has a state, green / amber / red
(grey: nothing to judge yet), and the page's overall state is the worst of them.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from serving.metrics import latency_summary
from serving.pipeline_probe import PipelineSnapshot
from serving.state import ServingState
from serving.status_page import render_page
from streaming.consumer_groups import ARCHIVE, JOB, SINK
from streaming.progress import ViewProgress
from tessera.windows import format_duration

router = APIRouter(tags=["operations"])

GREEN, AMBER, RED, GREY = "green", "amber", "red", "grey"
SEVERITY = {GREY: 0, GREEN: 1, AMBER: 2, RED: 3}
LAG_FACTOR_RED = 3            # freshness lag above budget is amber, above 3 budgets red
WRITER_SILENT_AMBER_MS = 10_000  # the writer reports every second; silence means it stopped
WRITER_SILENT_RED_MS = 60_000
CONSUMER_LAG_AMBER = 50_000   # messages; the job commits only on checkpoints (5 s of events)
CONSUMER_LAG_RED = 500_000
REPORT_OLD_MS = 24 * 3_600_000
STAGES = {JOB: "job", SINK: "writer", ARCHIVE: "archive"}


def worst(states: list[str]) -> str:
    return max(states, key=SEVERITY.__getitem__, default=GREY)


def _age(ms: int | None, now_ms: int) -> float | None:
    return None if ms is None else round(max(0, now_ms - ms) / 1000, 3)


def view_status(name: str, kind: str, budget_ms: int | None, progress: ViewProgress | None,
                now_ms: int) -> dict[str, Any]:
    out: dict[str, Any] = {"view": name, "kind": kind,
                           "freshness_budget": None if budget_ms is None else format_duration(budget_ms),
                           "freshness_budget_s": None if budget_ms is None else budget_ms / 1000}
    if kind != "streaming":
        return {**out, "state": GREY, "note": "batch view: written by `feast materialize`, not the stream"}
    if progress is None:
        return {**out, "state": RED, "note": "the stream writer has never reported: is `tessera stream start` "
                                             "running?"}
    lag_ms = progress.freshness_lag_ms
    silent_ms = max(0, now_ms - progress.updated_ms)
    out.update(as_of_ms=progress.as_of_ms, stream_clock_ms=progress.clock_ms,
               freshness_lag_s=None if lag_ms is None else lag_ms / 1000,
               as_of_age_s=_age(progress.as_of_ms, now_ms), rows_total=progress.rows_total,
               rows_per_s=round(progress.rows_per_s, 3), writer_reported_s_ago=round(silent_ms / 1000, 3))
    if silent_ms > WRITER_SILENT_RED_MS:
        return {**out, "state": RED, "note": f"the writer has not reported for {silent_ms / 1000:,.0f} s"}
    if lag_ms is None:
        return {**out, "state": AMBER, "note": "no row written yet"}
    budget = budget_ms or 0
    state = GREEN if lag_ms <= budget else AMBER if lag_ms <= LAG_FACTOR_RED * budget else RED
    if silent_ms > WRITER_SILENT_AMBER_MS:
        state = worst([state, AMBER])
    note = "within budget" if state == GREEN else f"{lag_ms / 1000:,.1f} s behind the stream clock"
    if silent_ms > WRITER_SILENT_AMBER_MS:
        note = f"the writer last reported {silent_ms / 1000:,.0f} s ago"
    return {**out, "state": state, "note": note}


def kafka_status(snapshot: PipelineSnapshot, now_ms: int) -> dict[str, Any]:
    kafka = snapshot.kafka
    if kafka is None:
        return {"state": GREY, "ok": None, "note": "not probed yet", "lags": [], "stale": snapshot.kafka_stale}
    out: dict[str, Any] = {"ok": kafka.ok, "checked_s_ago": _age(kafka.checked_ms, now_ms),
                           "stale": snapshot.kafka_stale, "dlq_messages": kafka.dlq_messages,
                           "late_messages": kafka.late_messages, "lags": []}
    if not kafka.ok:
        return {**out, "state": RED, "note": kafka.error or "unreachable"}
    for lag in kafka.lags:
        state = GREEN if lag.behind < CONSUMER_LAG_AMBER else AMBER if lag.behind < CONSUMER_LAG_RED else RED
        out["lags"].append({"group": lag.group, "stage": STAGES.get(lag.group, lag.group), "topic": lag.topic,
                            "committed": lag.committed, "end": lag.end, "behind": lag.behind, "state": state})
    state = worst([l["state"] for l in out["lags"]]) if out["lags"] else AMBER
    note = "consumer lag" if out["lags"] else "no consumer group has committed offsets yet"
    return {**out, "state": state, "note": note}


def read_report(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A report written by the CLI, or None and why not (missing is not an error)."""
    try:
        return json.loads(path.read_text()), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, f"{path}: {err}"


def _generated_ms(report: dict[str, Any]) -> int | None:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(str(report["generated_at"]).replace("Z", "+00:00")).timestamp() * 1000)
    except (KeyError, ValueError):
        return None


def parity_status(path: Path, now_ms: int) -> dict[str, Any]:
    report, error = read_report(path)
    if report is None:
        return {"state": RED if error else GREY, "note": error or "no parity run yet: run `tessera parity`",
                "report": None}
    generated = _generated_ms(report)
    age_ms = None if generated is None else now_ms - generated
    passed = bool(report.get("passed"))
    state = RED if not passed else AMBER if age_ms is not None and age_ms > REPORT_OLD_MS else GREEN
    views = []
    for v in report.get("views") or []:
        features = v.get("features") or []
        differences = sum(int(f.get(k) or 0) for f in features
                          for k in ("mismatched", "online_only_null", "offline_only_null"))
        views.append({"view": v.get("view"), "match_rate": v.get("match_rate"), "keys": v.get("keys"),
                      "settled": v.get("settled"), "unsettled": v.get("unsettled"), "differences": differences,
                      "explained": v.get("explained") or {}, "worst": (v.get("worst") or [])[:5]})
    note = "passed" if passed else f"failed: match rate {report.get('match_rate')} below {report.get('threshold')}"
    return {"state": state, "note": note, "generated_at": report.get("generated_at"),
            "age_s": None if age_ms is None else round(age_ms / 1000), "passed": passed,
            "match_rate": report.get("match_rate"), "threshold": report.get("threshold"), "views": views,
            "report": str(path)}


def drift_status(path: Path, now_ms: int) -> dict[str, Any]:
    report, error = read_report(path)
    if report is None:
        return {"state": RED if error else GREY, "note": error or "no drift run yet: run `tessera drift`",
                "report": None}
    generated = _generated_ms(report)
    flagged = list(report.get("flagged") or [])
    compared = [v for v in report.get("views") or [] if not v.get("error")]
    if not compared:
        state, note = GREY, "nothing was compared"
    elif flagged:
        state, note = AMBER, f"{len(flagged)} feature(s) drifted: {', '.join(flagged)}"
    else:
        state, note = GREEN, "no feature drifted"
    if state == GREEN and generated is not None and now_ms - generated > REPORT_OLD_MS:
        state = AMBER
    features = [{"view": v.get("view"), "feature": f.get("feature"), "psi": f.get("psi"), "ks": f.get("ks"),
                 "flagged": bool(f.get("flagged")), "status": f.get("status")}
                for v in compared for f in v.get("features") or []]
    return {"state": state, "note": note, "generated_at": report.get("generated_at"),
            "age_s": None if generated is None else round((now_ms - generated) / 1000),
            "threshold": report.get("threshold"), "flagged": flagged, "features": features,
            "errors": {v.get("view"): v.get("error") for v in report.get("views") or [] if v.get("error")},
            "report": str(path)}


async def status_data(state: ServingState) -> dict[str, Any]:
    assert state.probe is not None
    snapshot = await state.probe.snapshot()
    now_ms = int(time.time() * 1000)
    definitions = snapshot.definitions
    plan = state.holder.plan
    names = list(definitions.views) if definitions else sorted(plan.views) if plan else []
    views = []
    for name in names:
        declared = definitions.views.get(name) if definitions else None
        budget = declared.freshness_budget_ms if declared else plan.views[name].freshness_budget_ms if plan and \
            name in plan.views else None
        views.append(view_status(name, declared.kind if declared else "unknown", budget,
                                 snapshot.views.get(name), now_ms))
    kafka = kafka_status(snapshot, now_ms)
    state_dir = state.settings.state_dir
    parity = parity_status(state_dir / "parity" / "last.json", now_ms)
    drift = drift_status(state_dir / "drift" / "last.json", now_ms)
    # The page's own requests and 404s (a browser's /favicon.ico) would only crowd the table.
    latency = [r for r in latency_summary() if r["route"] not in ("/status", "/status.json", "unmatched")]
    overall = worst([*(v["state"] for v in views), kafka["state"], parity["state"], drift["state"]])
    return {"generated_at_ms": now_ms, "state": overall, "views_state": worst([v["state"] for v in views]),
            "views": views, "kafka": kafka, "parity": parity,
            "drift": drift, "latency": latency,
            "redis": {"ok": snapshot.redis_error is None, "error": snapshot.redis_error}}


@router.get("/status.json", summary="Freshness, lag, parity, drift and latency as JSON")
async def status_json(request: Request) -> Response:
    data = await status_data(request.app.state.serving)
    return Response(json.dumps(data), media_type="application/json")


@router.get("/status", response_class=HTMLResponse, summary="The status page: freshness, lag, parity, drift, latency")
async def status_page(request: Request) -> HTMLResponse:
    return HTMLResponse(render_page(await status_data(request.app.state.serving)))
