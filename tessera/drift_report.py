"""`tessera drift`: PSI and KS per feature between the offline store and the online store.

Prints a table (or JSON with --json), writes the report to <state_dir>/drift/last.json (the feature
API's /status page shows it) and exits 0 when no feature drifted, 1 when at least one is over the
threshold, 2 when there was nothing to compare (no offline rows in the window, no online rows, no
registry) or an argument is wrong.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from tessera.config import Settings
from tessera.definitions import DefinitionError, WindowedView, load_definitions
from tessera.windows import DAY_MS

# numpy, pandas and pyarrow (tessera.drift, tessera.drift_sources) are imported when the command
# runs, not when `tessera` builds its parser: every other command would pay for them.
DEFAULT_THRESHOLD = 0.2  # PSI: above 0.2 is conventionally a significant shift
DEFAULT_SAMPLE = 5_000
DEFAULT_REFERENCE_DAYS = 7
EXIT_OK, EXIT_DRIFT, EXIT_NO_DATA = 0, 1, 2


def report_path(settings: Settings) -> Path:
    return settings.state_dir / "drift" / "last.json"


def parse_moment(text: str) -> int:
    """'now', 'today', an ISO date or datetime (UTC unless it says otherwise) -> epoch ms."""
    if text in ("now", "today"):
        now = int(time.time() * 1000)
        return now if text == "now" else now // DAY_MS * DAY_MS
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'now', 'today' or an ISO date/time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--views", help="comma-separated feature views (default: every view)")
    p.add_argument("--reference-start", type=parse_moment, metavar="DATE",
                   help=f"start of the reference window, ISO date/time in UTC "
                        f"(default: {DEFAULT_REFERENCE_DAYS} days before --reference-end)")
    p.add_argument("--reference-end", type=parse_moment, metavar="DATE",
                   help="end of the reference window, exclusive (default: today 00:00 UTC, so today's "
                        "online values are compared with the days before)")
    p.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, metavar="N",
                   help=f"active entities sampled from Redis per view (default {DEFAULT_SAMPLE:,})")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"flag a feature whose PSI is above this (default {DEFAULT_THRESHOLD}; "
                        f"0.1-0.2 is a moderate shift)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")


def _view_report(settings: Settings, view: WindowedView, start_ms: int, end_ms: int, online: Any,
                 threshold: float) -> dict[str, Any]:
    from tessera.drift import compare
    from tessera.drift_sources import DEFAULT_INSTANTS, DriftDataError, reference_sample

    try:
        reference, lo, hi = reference_sample(settings, view, start_ms, end_ms, DEFAULT_INSTANTS)
    except DriftDataError as err:
        return {"view": view.name, "error": str(err), "features": []}
    if online is None or online.values.empty:
        return {"view": view.name, "error": f"no active online rows of {view.name!r} in Redis "
                                            f"(is the stream or `feast materialize` writing?)", "features": []}
    features = [compare(name, reference.values[name].to_numpy(), online.values[name].to_numpy(), threshold)
                for name in view.feature_names]
    return {"view": view.name, "error": None,
            "reference": {"start": _iso(lo), "end": _iso(hi), "values": len(reference.values),
                          "keys": reference.keys, "how": reference.note},
            "online": {"keys": online.keys, "how": online.note},
            "flagged": [f.feature for f in features if f.flagged],
            "features": [f.as_dict() for f in features]}


def build_report(settings: Settings, views: list[WindowedView], start_ms: int, end_ms: int, sample: int,
                 threshold: float) -> dict[str, Any]:
    from tessera.drift import MIN_SAMPLE
    from tessera.drift_sources import DEFAULT_INSTANTS, DriftDataError, online_samples

    try:
        online: dict[str, Any] = online_samples(settings, views, sample)
        online_error = None
    except DriftDataError as err:
        online, online_error = {}, str(err)
    reports = [{"view": view.name, "error": online_error, "features": []} if online_error else
               _view_report(settings, view, start_ms, end_ms, online.get(view.name), threshold) for view in views]
    flagged = [f"{r['view']}:{name}" for r in reports for name in r.get("flagged", [])]
    compared = [r for r in reports if r["error"] is None]
    return {"generated_at": _iso(int(time.time() * 1000)), "threshold": threshold,
            "passed": bool(compared) and not flagged, "flagged": flagged,
            "reference": {"start": _iso(start_ms), "end": _iso(end_ms), "instants": DEFAULT_INSTANTS},
            "sample": {"keys_per_view": sample, "min_values": MIN_SAMPLE}, "views": reports}


def write_report(settings: Settings, report: dict[str, Any]) -> Path:
    path = report_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)  # the status page never reads a half-written file
    return path


def _num(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_table(report: dict[str, Any]) -> str:
    lines = [f"drift: online values (Redis) against the offline store {report['reference']['start']} .. "
             f"{report['reference']['end']}; flagged when PSI > {report['threshold']}"]
    for view in report["views"]:
        if view["error"]:
            lines.append(f"\n{view['view']}: not compared: {view['error']}")
            continue
        ref, onl = view["reference"], view["online"]
        lines.append(f"\n{view['view']}: reference {ref['start']} .. {ref['end']}, {ref['values']:,} values "
                     f"({ref['how']}); online {onl['keys']:,} active keys ({onl['how']})")
        lines.append(f"  {'feature':<18} {'PSI':>7} {'KS':>6} {'null ref':>8} {'null now':>8} "
                     f"{'mean ref':>10} {'mean now':>10}  status")
        for f in view["features"]:
            status = {"drift": "DRIFT", "ok": "ok",
                      "insufficient": f"too few values (< {report['sample']['min_values']})"}[f["status"]]
            lines.append(f"  {f['feature']:<18} {_num(f['psi']):>7} {_num(f['ks']):>6} "
                         f"{f['reference_null']:>8.1%} {f['online_null']:>8.1%} "
                         f"{_num(f['reference_mean'], '.4g'):>10} {_num(f['online_mean'], '.4g'):>10}  {status}")
    flagged = report["flagged"]
    lines.append("\n" + (f"{len(flagged)} feature(s) drifted: {', '.join(flagged)}" if flagged
                         else "no feature drifted" if report["passed"] else "nothing was compared"))
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings, say: Callable[[str], None]) -> int:
    try:
        definitions = load_definitions(settings.feature_repo)
        names = [v.strip() for v in args.views.split(",") if v.strip()] if args.views else list(definitions.views)
        views = [definitions.view(name) for name in names]
    except DefinitionError as err:
        say(f"error: {err}")
        return EXIT_NO_DATA
    end = args.reference_end if args.reference_end is not None else int(time.time() * 1000) // DAY_MS * DAY_MS
    start = args.reference_start if args.reference_start is not None else end - DEFAULT_REFERENCE_DAYS * DAY_MS
    if start >= end:
        say(f"error: --reference-start {_iso(start)} is not before --reference-end {_iso(end)}")
        return EXIT_NO_DATA
    if args.sample < 1 or args.threshold <= 0:
        say("error: --sample must be at least 1 and --threshold above 0")
        return EXIT_NO_DATA
    report = build_report(settings, views, start, end, args.sample, args.threshold)
    path = write_report(settings, report)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    say(f"report written to {path}")
    if not any(v["error"] is None for v in report["views"]):
        return EXIT_NO_DATA
    return EXIT_DRIFT if report["flagged"] else EXIT_OK

