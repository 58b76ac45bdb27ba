"""Step 3 of bench/batch.py: tessera's materializer against plain `feast materialize`, on the same
offline store, the same range and one Redis (a db each), every run in a capped child process.

rows/s = entity rows written (one per key) / wall seconds of the materialize call, for both; for
Feast the rows are counted in Redis afterwards. tessera's runs: into a fresh db (the figure), again
into the same db (every key already holds that row: the newer-row check skips all), with Feast's
skip_dedup (plain HSETs: what the check costs), and the last day alone (an incremental run). Every
view Feast finished is compared with tessera's byte for byte, key by key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time as clock, timedelta, timezone
from pathlib import Path
from typing import Callable

from bench.feast_children import ChildResult, run_child
from bench.tessera_children import run_materialize as run_tessera
from tessera.config import Settings

FEAST_DB, OURS_DB, PLAIN_DB, INCREMENTAL_DB = 0, 1, 2, 3
GOAL_ROWS_S = 100_000
Say = Callable[[str], None]


@dataclass
class Agreement:
    keys: int = 0        # keys holding the view in Feast's db
    identical: int = 0   # the view's fields byte for byte equal in tessera's db
    differing: int = 0
    missing: int = 0     # in Feast's db, not in tessera's
    extra: int = 0       # in tessera's db, not in Feast's


@dataclass
class MaterializeFigures:
    feast: dict[str, ChildResult] = field(default_factory=dict)
    feast_rows: dict[str, int] = field(default_factory=dict)
    ours: dict[str, ChildResult] = field(default_factory=dict)
    rerun: dict[str, ChildResult] = field(default_factory=dict)
    plain: dict[str, ChildResult] = field(default_factory=dict)
    incremental: dict[str, ChildResult] = field(default_factory=dict)
    agreement: dict[str, Agreement] = field(default_factory=dict)


def full_range(start: date, days: int) -> tuple[datetime, datetime]:
    """What bench/feast_children.child_materialize gives Feast: first day 00:00 to the day after the last."""
    first = datetime.combine(start, clock(), tzinfo=timezone.utc)
    return first, first + timedelta(days=days)


def with_db(env: dict[str, str], db: int) -> dict[str, str]:
    return {**env, "TESSERA_REDIS__DB": str(db)}


def on_db(settings: Settings, db: int) -> Settings:
    copy = settings.model_copy(deep=True)
    copy.redis.db = db
    return copy


def run_materialize(args, settings: Settings, views: list[str], env: dict[str, str], base: Path,
                    cap: Callable[[float, float], float], say: Say) -> MaterializeFigures:
    figures = MaterializeFigures()
    first, last = full_range(args.start, args.days)
    say(f"  plain `feast materialize` {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}, one view per child, "
        f"into db {FEAST_DB}:")
    for i, view in enumerate(views):
        limit = cap(args.materialize_cap_s, 60 * (len(views) - 1 - i) + 180)  # 180 s: tessera's runs below
        say(f"  {view} (caps {limit:.0f} s, {args.feast_memory_gb:g} GB RSS):")
        result = run_child(f"materialize {view}", ["materialize", "--view", view, "--start", args.start.isoformat(),
                                                   "--days", str(args.days)],
                           base / f"materialize-{view}", with_db(env, FEAST_DB), limit, args.feast_memory_gb)
        figures.feast[view] = result
        say(f"    -> {result.describe()}")
        if result.status == "failed":
            say(f"    last lines of its log:\n{result.log_tail}")
    figures.feast_rows = online_rows(on_db(settings, FEAST_DB))
    say(f"  rows in Redis by view: {figures.feast_rows}")

    runs = [("tessera materialize", OURS_DB, figures.ours, first, False),
            ("again, every key already online", OURS_DB, figures.rerun, first, False),
            ("with skip_dedup (no newer-row check)", PLAIN_DB, figures.plain, first, True),
            ("incremental: the last day", INCREMENTAL_DB, figures.incremental, last - timedelta(days=1), False)]
    for i, (label, db, into, begin, skip_dedup) in enumerate(runs):
        say(f"  {label}, {begin:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}, all views in one child, into db {db}:")
        into.update(run_tessera(views, begin, last, base / f"tessera-materialize-{i}", with_db(env, db),
                                cap(args.materialize_cap_s, 30 * (len(runs) - 1 - i)), args.feast_memory_gb,
                                skip_dedup))
        for view, result in into.items():
            say(f"    {view}: {ours_cell(result)}")
        if any(r.status != "ok" for r in into.values()):
            say(f"    last lines of its log:\n{next(iter(into.values())).log_tail}")
    finished = [v for v in views if figures.feast[v].status == "ok"]
    figures.agreement = agreement(on_db(settings, FEAST_DB), on_db(settings, OURS_DB), finished)
    for view, a in figures.agreement.items():
        say(f"  {view}: {a}")
    return figures


def online_rows(settings: Settings) -> dict[str, int]:
    """Rows in Redis per view: hashes holding that view's `_ts:<view>` field."""
    counts: dict[str, int] = {}
    for fields in _hashes(settings).values():
        for f in fields:
            if f.startswith(b"_ts:"):
                counts[f[4:].decode()] = counts.get(f[4:].decode(), 0) + 1
    return counts


def _hashes(settings: Settings) -> dict[bytes, dict[bytes, bytes]]:
    from tessera.services.redis_server import redis_client

    client = redis_client(settings, timeout_s=60)
    out: dict[bytes, dict[bytes, bytes]] = {}
    batch: list[bytes] = []

    def flush() -> None:
        with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.hgetall(key)  # type: ignore[arg-type]  # the client takes bytes keys too
            out.update(zip(batch, pipe.execute()))
        batch.clear()

    for key in client.scan_iter(count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            flush()
    flush()
    return out


def agreement(feast: Settings, ours: Settings, views: list[str]) -> dict[str, Agreement]:
    """Per view, its fields (its `_ts:` field and its features' hashed names) in both dbs, key by key."""
    from feast import FeatureStore

    from batch.online_layout import field_name
    from tessera.feast_objects import repo_config

    if not views:
        return {}
    store = FeatureStore(config=repo_config(feast))
    theirs_all, mine_all = _hashes(feast), _hashes(ours)
    out = {}
    for view in views:
        names = {f"_ts:{view}".encode(), *(field_name(view, f.name) for f in store.get_feature_view(view).features)}
        theirs = {k: sub for k, h in theirs_all.items() if (sub := {n: v for n, v in h.items() if n in names})}
        mine = {k: sub for k, h in mine_all.items() if (sub := {n: v for n, v in h.items() if n in names})}
        a = Agreement(keys=len(theirs), missing=len(theirs.keys() - mine.keys()),
                      extra=len(mine.keys() - theirs.keys()))
        for key in theirs.keys() & mine.keys():
            if theirs[key] == mine[key]:
                a.identical += 1
            else:
                a.differing += 1
        out[view] = a
    return out


# --- the summary ---------------------------------------------------------------------------------

def rate(result: ChildResult | None, rows: int | None = None) -> float | None:
    """rows/s of a finished run over the whole call (tessera's rows: its keys)."""
    if result is None or result.status != "ok":
        return None
    rows = result.payload["keys"] if rows is None else rows
    return rows / result.seconds if result.seconds > 0 else None


def ours_cell(result: ChildResult | None) -> str:
    if result is None:
        return "not run"
    if result.status != "ok":
        return result.describe()
    p = result.payload
    return (f"{rate(result):,.0f} rows/s ({p['keys']:,} rows, {result.seconds:.1f} s: read {p['read_s']:.1f} s "
            f"[{p['offline_rows']:,} offline rows] + write {p['write_s']:.1f} s; {p['written']:,} written, "
            f"{p['kept_newer']:,} kept newer)")


def _total(runs: dict[str, ChildResult], rows: Callable[[str, ChildResult], int]) -> tuple[int, float] | None:
    if not runs or any(r.status != "ok" for r in runs.values()):
        return None
    return sum(rows(v, r) for v, r in runs.items()), sum(r.seconds for r in runs.values())


def summary_rows(m: MaterializeFigures, verdict: Callable[[bool | None], str]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for view, feast in m.feast.items():
        ours = m.ours.get(view)
        mine, theirs = rate(ours), rate(feast, m.feast_rows.get(view, 0))
        speed = "-" if mine is None or theirs is None else f"{mine / theirs:,.1f}x Feast"
        feast_text = f"{m.feast_rows.get(view, 0):,} rows, {feast.describe()}" + (
            f" = {theirs:,.0f} rows/s" if theirs is not None else "")
        out.append((f"materialize {view}", ours_cell(ours), feast_text, f">= {GOAL_ROWS_S:,} rows/s", speed))
    ours_total = _total(m.ours, lambda v, r: r.payload["keys"])
    feast_total = _total(m.feast, lambda v, r: m.feast_rows.get(v, 0))
    ours_rate = ours_total[0] / ours_total[1] if ours_total else None
    out.append(("materialize, all views: rows/s (read + write)",
                f"{ours_rate:,.0f} rows/s ({ours_total[0]:,} rows, {ours_total[1]:.1f} s)" if ours_total else
                "not every view finished",
                f"{feast_total[0] / feast_total[1]:,.0f} rows/s ({feast_total[0]:,} rows, {feast_total[1]:.1f} s)"
                if feast_total and feast_total[1] > 0 else "not every view finished",
                f">= {GOAL_ROWS_S:,} rows/s", verdict(None if ours_rate is None else ours_rate >= GOAL_ROWS_S)))
    write_total = _phase_total(m.ours, "write")
    out.append(("  of which writing into Redis (encode + Lua check + HSET)",
                f"{write_total:,.0f} rows/s" if write_total else "-", "-", f">= {GOAL_ROWS_S:,} rows/s",
                verdict(None if write_total is None else write_total >= GOAL_ROWS_S)))
    plain_total = _phase_total(m.plain, "write")
    cost = "-"
    if plain_total and write_total:
        cost = (f"the check costs {100 * (1 - write_total / plain_total):.0f}% of write throughput"
                if write_total < plain_total else "no cost measurable in this run")
    out.append(("  writing with skip_dedup (plain HSET, no check)", f"{plain_total:,.0f} rows/s" if plain_total
                else "-", "-", "report", cost))
    rerun_total = _phase_total(m.rerun, "write")
    out.append(("  re-run, every key already online (all skipped)",
                f"{rerun_total:,.0f} rows/s (write phase)" if rerun_total else "-", "-", "report", "-"))
    incremental = _total(m.incremental, lambda v, r: r.payload["keys"])
    out.append(("materialize incremental, last day, all views",
                f"{incremental[0] / incremental[1]:,.0f} rows/s ({incremental[0]:,} rows, {incremental[1]:.1f} s)"
                if incremental and incremental[1] > 0 else "not every view finished",
                "not run (Feast's file store reads every file whatever the range)", f">= {GOAL_ROWS_S:,} rows/s",
                verdict(None if not incremental else incremental[0] / incremental[1] >= GOAL_ROWS_S)))
    for view, a in m.agreement.items():
        out.append((f"  online rows equal Feast's: {view}", f"{a.identical:,} of {a.keys:,} keys byte-identical",
                    f"{a.differing:,} differ, {a.missing:,} missing, {a.extra:,} extra", "all identical",
                    verdict(a.keys > 0 and a.identical == a.keys and a.extra == 0)))
    if not m.agreement:
        out.append(("  online rows equal Feast's", "not checked: no Feast view finished", "-", "-", "n/a"))
    return out


def _phase_total(runs: dict[str, ChildResult], phase: str) -> float | None:
    if not runs or any(r.status != "ok" for r in runs.values()):
        return None
    seconds = sum(r.payload[f"{phase}_s"] for r in runs.values())
    return sum(r.payload["keys"] for r in runs.values()) / seconds if seconds > 0 else None

