"""tessera's side of the batch benchmark, run in child processes exactly like Feast's
(bench/feast_children.py), so both sides are timed the same way and their peak RSS is measured by the
same sampler."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd

from bench.feast_children import SAMPLE_ROWS, TRAINING_VIEWS, ChildResult, run_child
from tessera.config import load_settings


def child_training(io_dir: Path) -> None:
    """In the child: build_training_set on rows.parquet, timed around the call."""
    from batch.training_set import build_training_set
    from tessera.definitions import load_definitions

    settings = load_settings()
    definitions = load_definitions(settings.feature_repo)
    rows = pd.read_parquet(io_dir / "rows.parquet")
    began = time.perf_counter()
    frame = build_training_set(settings, definitions, rows, list(TRAINING_VIEWS))
    seconds = time.perf_counter() - began
    frame[frame["row_id"] < SAMPLE_ROWS].to_parquet(io_dir / "sample.parquet", index=False)
    (io_dir / "result.json").write_text(json.dumps({"seconds": seconds, "rows_in": len(rows),
                                                    "rows_out": len(frame)}))


def run_training(rows: pd.DataFrame, io_dir: Path, env: dict[str, str], cap_s: float,
                 memory_gb: float) -> ChildResult:
    io_dir.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(io_dir / "rows.parquet", index=False)
    return run_child(f"tessera {len(rows):,} rows", ["training-tessera"], io_dir, env, cap_s, memory_gb)


def child_materialize(io_dir: Path, start: datetime, end: datetime, views: list[str], skip_dedup: bool) -> None:
    """In the child: batch.materialize over [start, end], one call per view (each timed whole: read,
    write and the registry record, as Feast's), into the Redis db of the environment's settings."""
    from batch.materialize import Materializer

    materializer = Materializer(load_settings(), skip_dedup=skip_dedup)
    out = {}
    for view in views:
        began = time.perf_counter()
        [result] = materializer.materialize([view], start, end, say=lambda line: print(line, flush=True))
        out[view] = {"seconds": time.perf_counter() - began, "keys": result.keys, "written": result.written,
                     "kept_newer": result.kept_newer, "offline_rows": result.offline_rows,
                     "read_s": result.read_s, "write_s": result.write_s}
    (io_dir / "result.json").write_text(json.dumps({"views": out}))


def run_materialize(views: list[str], start: datetime, end: datetime, io_dir: Path, env: dict[str, str],
                    cap_s: float, memory_gb: float, skip_dedup: bool = False) -> dict[str, ChildResult]:
    """One child for all views; per view its figures (the child's wall time and peak RSS are shared)."""
    args = ["materialize-tessera", "--view", ",".join(views), "--range", start.isoformat(), end.isoformat()]
    result = run_child("tessera materialize", args + (["--skip-dedup"] if skip_dedup else []), io_dir, env,
                       cap_s, memory_gb)
    if result.status != "ok":
        return {view: result for view in views}
    return {view: replace(result, payload=figures) for view, figures in result.payload["views"].items()}
