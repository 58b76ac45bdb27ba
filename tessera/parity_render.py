"""A parity report (the JSON of tessera.parity) as a table for the terminal."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

HEADERS = ("feature", "matched", "mismatched", "online-only null", "offline-only null", "both null", "SMAPE")
COUNTS = ("matched", "mismatched", "online_only_null", "offline_only_null", "both_null")


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  " + "  ".join(cells))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


def render(report: dict[str, Any]) -> str:
    lines = [f"parity at stream clock {_when(report['stream_clock_ms'])} UTC "
             f"(sample {report['sample']['fraction']:.0%} of keys by hash, at most {report['sample']['max_keys']:,}; "
             f"{report['late_events']:,} late events on record)"]
    for view in report["views"]:
        lines.append("")
        lines.append(f"{view['view']}: {view['keys']:,} keys, {view['rows']:,} online rows "
                     f"({view['settled']:,} settled, {view['unsettled']:,} not settled yet, "
                     f"{view['missing_online']:,} keys without one); "
                     + (f"{view['compared']:,} settled values, {view['match_rate']:.2%} match" if view["compared"]
                        else "no settled values to compare"))
        if view["compared"]:
            rows = [HEADERS] + [(f["feature"], *(f"{f[c]:,}" for c in COUNTS), f"{f['smape']:.3g}")
                                for f in view["features"]]
            lines += _table(rows)
        if view["worst"]:
            lines.append("  worst differences:")
            worst = [("key", "feature", "online", "offline", "as_of (UTC)", "why")] + [
                (str(d["key"]), d["feature"], _fmt(d["online"]), _fmt(d["offline"]), _when(d["as_of_ms"]),
                 d["reason"].replace("_", " ")) for d in view["worst"]]
            lines += ["  " + line for line in _table(worst)]
            explained = ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in view["explained"].items() if n)
            lines.append(f"  rows with differences: {explained}")
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines.append("")
    if not report["compared"]:
        lines.append(f"parity {verdict}: no settled online values to compare (is the stream running, and has it "
                     f"passed the allowed lateness?)")
    else:
        lines.append(f"parity {verdict}: {report['match_rate']:.4%} of {report['compared']:,} settled values match "
                     f"(threshold {report['threshold']:.2%}) in {report['seconds']:.1f} s")
    return "\n".join(lines)
