"""The HTML of /status: one self-contained page (inline CSS and server-rendered SVG charts, no
script, nothing fetched from elsewhere) so it works offline and behind any proxy.

Every section and row carries `data-state` (green, amber, red, grey) beside its visible badge,
for people with colour blindness (the badge says it in words) and for tests.
"""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from typing import Any, Iterable, NamedTuple

COLORS = {"green": "#2e7d32", "amber": "#e69500", "red": "#c62828", "grey": "#8a8a8a"}
WORDS = {"green": "OK", "amber": "WARN", "red": "FAIL", "grey": "N/A"}
REFRESH_S = 10


class Bar(NamedTuple):
    label: str
    value: float
    state: str
    text: str  # the value as shown beside the bar


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float | int | None, spec: str = ",.3g", unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:{spec}}{unit}"


def _when(ms: int | None) -> str:
    if ms is None:
        return "–"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def badge(state: str) -> str:
    return f'<span class="badge" data-state="{_e(state)}" style="background:{COLORS.get(state, "#888")}">' \
           f'{WORDS.get(state, state)}</span>'


def bar_chart(name: str, title: str, bars: list[Bar], marker: float | None = None, marker_label: str = "",
              label_width: int = 230) -> str:
    """Horizontal bars, one per row, scaled to the largest value (or the marker, if larger)."""
    if not bars:
        return f'<p class="empty">{_e(title)}: nothing to chart yet.</p>'
    row, plot, right = 22, 340, 90
    top = 20 if marker is not None else 6
    width, height = label_width + plot + right, top + row * len(bars) + 6
    scale_max = max([b.value for b in bars] + [marker or 0]) or 1.0
    parts = [f'<svg class="chart" data-chart="{_e(name)}" role="img" aria-label="{_e(title)}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{_e(title)}</title>"]
    for i, bar in enumerate(bars):
        y = top + i * row
        length = max(1.0, plot * max(0.0, bar.value) / scale_max)
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" class="lbl">{_e(bar.label)}</text>')
        parts.append(f'<rect class="bar" data-state="{_e(bar.state)}" x="{label_width}" y="{y + 3}" '
                     f'width="{length:.1f}" height="{row - 6}" fill="{COLORS.get(bar.state, "#888")}" rx="2"/>')
        parts.append(f'<text x="{label_width + length + 4:.1f}" y="{y + 15}" class="val">{_e(bar.text)}</text>')
    if marker is not None:
        x = label_width + plot * marker / scale_max
        parts.append(f'<line x1="{x:.1f}" y1="12" x2="{x:.1f}" y2="{height - 2}" stroke="#333" '
                     f'stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x:.1f}" y="10" text-anchor="middle" class="val">{_e(marker_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def table(headers: Iterable[str], rows: Iterable[tuple[str, list[str]]], name: str) -> str:
    """`rows` are (state, cells); cells are already-escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(f'<tr data-in="{_e(name)}" data-state="{_e(state)}">' + "".join(f"<td>{c}</td>" for c in cells)
                   + "</tr>" for state, cells in rows)
    return f'<table data-table="{_e(name)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section(key: str, title: str, state: str, note: str, body: str) -> str:
    return (f'<section id="{_e(key)}" data-state="{_e(state)}"><h2>{badge(state)} {_e(title)}</h2>'
            f'<p class="note">{_e(note)}</p>{body}</section>')


def _views(data: dict[str, Any]) -> str:
    views = data["views"]
    rows = [(v["state"], [f'<span class="view">{_e(v["view"])}</span>', badge(v["state"]), _e(v["kind"]),
                          _num(v.get("freshness_lag_s"), ",.1f", " s"), _e(v.get("freshness_budget") or "–"),
                          _num(v.get("as_of_age_s"), ",.1f", " s"), _num(v.get("rows_per_s"), ",.1f"),
                          _num(v.get("rows_total"), ","), _e(v.get("note", ""))])
            for v in views]
    streaming = [v for v in views if v.get("freshness_lag_s") is not None]
    # One marker: the largest budget (the streaming views usually share one).
    budget = max((v["freshness_budget_s"] or 0 for v in streaming), default=None)
    chart = bar_chart("freshness", "Freshness lag behind the stream clock (s)",
                      [Bar(v["view"], v["freshness_lag_s"], v["state"], f'{v["freshness_lag_s"]:,.1f} s')
                       for v in streaming],
                      marker=budget, marker_label=f"budget {budget:g} s" if budget is not None else "")
    body = table(["view", "state", "kind", "freshness lag", "budget", "as_of age (wall clock)", "rows/s",
                  "rows written", "note"], rows, "views") + chart
    return section("views", "Feature views: freshness", data["views_state"],
                   "Freshness lag = the stream clock (newest event time seen) minus the newest as_of written.", body)


def _kafka(data: dict[str, Any]) -> str:
    k = data["kafka"]
    rows = [(l["state"], [_e(l["stage"]), _e(l["group"]), _e(l["topic"]), _num(l["behind"], ","),
                          _num(l["committed"], ","), _num(l["end"], ",")]) for l in k.get("lags", [])]
    chart = bar_chart("consumer-lag", "Consumer lag (messages behind)",
                      [Bar(f'{l["stage"]} ({l["topic"]})', l["behind"], l["state"], f'{l["behind"]:,}')
                       for l in k.get("lags", [])])
    counts = (f'<p class="counts">dead letters: <b data-count="dlq">{_num(k.get("dlq_messages"), ",")}</b> · '
              f'late events: <b data-count="late">{_num(k.get("late_messages"), ",")}</b>'
              f'{" · (values from an earlier probe)" if k.get("stale") else ""}</p>')
    body = counts + (table(["stage", "group", "topic", "behind", "committed", "end"], rows, "lags") + chart
                     if rows else "")
    return section("kafka", "Kafka: consumer lag, dead letters, late events", k["state"], k.get("note", ""), body)


def _parity(data: dict[str, Any]) -> str:
    p = data["parity"]
    if p.get("report") is None:
        return section("parity", "Parity: online vs offline", p["state"], p["note"], "")
    threshold = p.get("threshold") or 0
    rows, bars = [], []
    for v in p["views"]:
        rate = v.get("match_rate")
        state = "grey" if rate is None else "green" if rate >= threshold else "red"
        explained = ", ".join(f"{k} {n}" for k, n in (v.get("explained") or {}).items() if n) or "–"
        rows.append((state, [f'<span class="view">{_e(v["view"])}</span>', badge(state),
                             _num(None if rate is None else 100 * rate, ".2f", " %"), _num(v.get("settled"), ","),
                             _num(v.get("unsettled"), ","), _num(v.get("differences"), ","), _e(explained)]))
        if rate is not None:
            bars.append(Bar(v["view"], 100 * rate, state, f"{100 * rate:.2f} %"))
    worst = [(w, v["view"]) for v in p["views"] for w in v.get("worst") or []][:10]
    worst_rows = [("red", [_e(view), _e(w.get("key")), _e(w.get("feature")), _e(w.get("online")),
                           _e(w.get("offline")), _e(w.get("reason"))]) for w, view in worst]
    body = (f'<p>match rate <b data-value="match-rate">{_num(None if p.get("match_rate") is None else 100 * p["match_rate"], ".2f", " %")}</b>'
            f' (threshold {_num(100 * threshold, ".2f", " %")}), run at {_e(p.get("generated_at"))}</p>'
            + table(["view", "state", "match rate", "settled", "unsettled", "differences", "explained"], rows,
                    "parity")
            + bar_chart("parity", "Match rate of settled values (%)", bars, marker=100 * threshold,
                        marker_label="threshold")
            + (("<h3>Worst differences</h3>" + table(["view", "key", "feature", "online", "offline", "reason"],
                                                      worst_rows, "parity-worst")) if worst_rows else ""))
    return section("parity", "Parity: online vs offline", p["state"], p["note"], body)


def _drift(data: dict[str, Any]) -> str:
    d = data["drift"]
    if d.get("report") is None:
        return section("drift", "Drift: online vs offline distributions", d["state"], d["note"], "")
    threshold = d.get("threshold") or 0
    bars = [Bar(f'{f["view"]}:{f["feature"]}', f["psi"], "amber" if f["flagged"] else "green",
                f'{f["psi"]:.3f}') for f in d["features"] if f.get("psi") is not None]
    flagged = [("amber", [_e(f["view"]), f'<span class="feature">{_e(f["feature"])}</span>', _num(f["psi"], ".3f"),
                          _num(f.get("ks"), ".3f")]) for f in d["features"] if f["flagged"]]
    errors = "".join(f"<li>{_e(view)}: {_e(err)}</li>" for view, err in (d.get("errors") or {}).items())
    body = (f"<p>PSI per feature (flagged above {threshold:g}), run at {_e(d.get('generated_at'))}</p>"
            + (table(["view", "feature", "PSI", "KS"], flagged, "drift-flagged") if flagged else "")
            + bar_chart("drift", "Population stability index", bars, marker=threshold, marker_label="threshold",
                        label_width=280)
            + (f"<ul class='errors'>{errors}</ul>" if errors else ""))
    return section("drift", "Drift: online vs offline distributions", d["state"], d["note"], body)


def _latency(data: dict[str, Any]) -> str:
    rows, bars = [], []
    for r in data["latency"]:
        route = f'{r["method"]} {r["route"]}'
        rows.append(("grey", [_e(route), _num(r["count"], ","), _num(r.get("p50_ms"), ",.2f", " ms"),
                              _num(r.get("p90_ms"), ",.2f", " ms"), _num(r.get("p99_ms"), ",.2f", " ms"),
                              _num(r.get("mean_ms"), ",.2f", " ms")]))
        for q in ("p50", "p90", "p99"):
            value = r.get(f"{q}_ms")
            if value is not None:
                bars.append(Bar(f"{route} {q}", value, "green" if value < 10 else "amber", f"{value:,.2f} ms"))
    body = (table(["route", "requests", "p50", "p90", "p99", "mean"], rows, "latency")
            + bar_chart("latency", "Request latency percentiles (ms)", bars, label_width=330)) if rows else ""
    return section("latency", "Request latency (since the API started, all workers)", "grey",
                   "From the API's own histograms; percentiles interpolated within buckets.", body)


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em} h2{font-size:1.15em;margin:0 0 .3em} h3{font-size:1em}
section{border:1px solid #ddd;border-left:6px solid #8a8a8a;border-radius:4px;padding:.8em 1em;margin:1em 0}
section[data-state=green]{border-left-color:#2e7d32} section[data-state=amber]{border-left-color:#e69500}
section[data-state=red]{border-left-color:#c62828}
.badge{color:#fff;border-radius:3px;padding:1px 7px;font-size:.8em;font-weight:600}
table{border-collapse:collapse;margin:.5em 0} td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left}
th{font-weight:600;background:#fafafa} .note{color:#555;margin:.2em 0 .6em}
svg.chart{display:block;margin:.6em 0} svg .lbl{font-size:12px;fill:#333} svg .val{font-size:11px;fill:#333}
"""


def render_page(data: dict[str, Any]) -> str:
    overall = data["state"]
    redis = "" if data["redis"]["ok"] else f'<p class="note">Redis: {_e(data["redis"]["error"])}</p>'
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH_S}"><link rel="icon" href="data:,"><title>Tessera status: {WORDS.get(overall)}</title>'
            f"<style>{STYLE}</style></head>"
            f'<body data-state="{_e(overall)}"><h1>{badge(overall)} Tessera status</h1>'
            f'<p class="note">generated {_when(data["generated_at_ms"])}; refreshes every {REFRESH_S} s; '
            f'<a href="/status.json">JSON</a> · <a href="/metrics">metrics</a></p>{redis}'
            + _views(data) + _kafka(data) + _parity(data) + _drift(data) + _latency(data)
            + "</body></html>")
