"""`tessera materialize`: the command-line face of batch/materialize.py.

Building the parser imports nothing heavy (every `tessera` command builds it); Feast and pyarrow
are imported when the command runs.
"""
from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from tessera.config import Settings

if TYPE_CHECKING:
    from batch.materialize import ViewResult


class UsageError(ValueError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", help="first event_timestamp to materialize: ISO date or date-time (UTC unless "
                                        "it says otherwise)")
    parser.add_argument("--end", help="last event_timestamp (inclusive, as Feast): ISO date/time or 'now' "
                                      "(default with --incremental: now)")
    parser.add_argument("--incremental", action="store_true",
                        help="from where the last materialization of each view ended (tessera's or Feast's), "
                             "else from the start of the offline history")
    parser.add_argument("--views", help="comma-separated feature views (default: all online views)")


def parse_moment(text: str, option: str) -> datetime:
    if text == "now":
        return datetime.now(tz=timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not an ISO date/time (e.g. 2025-06-02 or "
                         f"2025-06-02T12:00:00Z) or 'now'") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def run(args: argparse.Namespace, settings: Settings, log: Callable[[str], None]) -> int:
    views = [v.strip() for v in args.views.split(",") if v.strip()] if args.views else None
    began = time.monotonic()
    try:
        if args.incremental:
            if args.start:
                raise UsageError("--incremental takes its start from the last run; drop --start")
            end = parse_moment(args.end or "now", "--end")
        else:
            if not args.start or not args.end:
                raise UsageError("give --start and --end, or --incremental")
            start, end = parse_moment(args.start, "--start"), parse_moment(args.end, "--end")
    except UsageError as err:
        log(f"error: {err}")
        return 2
    from batch.materialize import Materializer, MaterializeError

    try:
        materializer = Materializer(settings)
        if args.incremental:
            results = materializer.materialize_incremental(views, end, say=log)
        else:
            results = materializer.materialize(views, start, end, say=log)
    except MaterializeError as err:
        log(f"error: {err}")
        return 2
    print_summary(results)
    log(f"materialize done in {time.monotonic() - began:.1f} s")
    return 0


def print_summary(results: list["ViewResult"]) -> None:
    if not results:
        print("nothing to materialize")
        return
    print(f"{'view':<20} {'offline rows':>13} {'keys':>9} {'written':>9} {'kept newer':>10} {'seconds':>8} "
          f"{'rows/s':>9}")
    for r in results:
        print(f"{r.view:<20} {r.offline_rows:>13,} {r.keys:>9,} {r.written:>9,} {r.kept_newer:>10,} "
              f"{r.seconds:>8.1f} {r.rows_per_s:>9,.0f}")
