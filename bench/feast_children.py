"""Feast's side of the batch benchmark, run in child processes that a wall-clock cap and a memory
cap can stop, so a blow-up of Feast's file offline store is reported, not suffered."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from tessera.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
TRAINING_VIEWS = ("user_ad_activity", "user_profile_daily")
SAMPLE_ROWS = 1_000


def say(message: str) -> None:
    print(message, flush=True)


def feature_refs(definitions) -> list[str]:
    return [f.ref for v in TRAINING_VIEWS for f in definitions.view(v).features]


@dataclass
class ChildResult:
    status: str  # "ok", "timeout", "memory", "failed"
    wall_s: float
    peak_rss_gb: float
    cap_s: float
    memory_gb: float
    payload: dict = field(default_factory=dict)
    log_tail: str = ""

    @property
    def seconds(self) -> float:
        """What the child measured when it finished, else the wall time until it was stopped."""
        return float(self.payload["seconds"]) if self.status == "ok" else self.wall_s

    def describe(self) -> str:
        """How the child ended, for a report cell."""
        if self.status == "ok":
            return f"{self.seconds:,.1f} s (peak RSS {self.peak_rss_gb:.1f} GB)"
        if self.status == "timeout":
            return f"killed at the {self.cap_s:.0f} s cap (peak RSS {self.peak_rss_gb:.1f} GB)"
        if self.status == "memory":
            return f"killed at the {self.memory_gb:g} GB RSS cap after {self.wall_s:.0f} s"
        return f"failed after {self.wall_s:.0f} s"


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def run_child(label: str, child_args: list[str], io_dir: Path, env: dict[str, str], cap_s: float,
              memory_gb: float) -> ChildResult:
    """Run bench/batch.py in --child mode, killing it (only it, by pid) past cap_s or memory_gb."""
    io_dir.mkdir(parents=True, exist_ok=True)
    log = io_dir / "child.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "batch.py"), "--child", *child_args,
                                 "--io", str(io_dir)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    began, last_note, peak, status = time.perf_counter(), time.perf_counter(), 0, "ok"
    while proc.poll() is None:
        peak = max(peak, rss_bytes(proc.pid))
        elapsed = time.perf_counter() - began
        if elapsed > cap_s or peak > memory_gb * 2**30:
            status = "timeout" if elapsed > cap_s else "memory"
            proc.kill()
            proc.wait()
            break
        if time.perf_counter() - last_note >= 30:
            last_note = time.perf_counter()
            say(f"    {label}: {elapsed:.0f} s, RSS {rss_bytes(proc.pid) / 2**30:.1f} GB")
        time.sleep(0.25)
    wall = time.perf_counter() - began
    result_file = io_dir / "result.json"
    if status == "ok" and (proc.returncode != 0 or not result_file.exists()):
        status = "failed"
    payload = json.loads(result_file.read_text()) if status == "ok" else {}
    tail = "" if status == "ok" else "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    return ChildResult(status, wall, peak / 2**30, cap_s, memory_gb, payload, tail)


def child_historical(io_dir: Path) -> None:
    """In the child: Feast's get_historical_features on rows.parquet, timed from the call to to_df()."""
    from feast import FeatureStore

    from tessera.definitions import load_definitions
    from tessera.feast_objects import repo_config

    settings = load_settings()
    store = FeatureStore(config=repo_config(settings))
    refs = feature_refs(load_definitions(settings.feature_repo))
    rows = pd.read_parquet(io_dir / "rows.parquet")
    began = time.perf_counter()
    frame = store.get_historical_features(entity_df=rows, features=refs, full_feature_names=True).to_df()
    seconds = time.perf_counter() - began
    frame[frame["row_id"] < SAMPLE_ROWS].to_parquet(io_dir / "sample.parquet", index=False)
    (io_dir / "result.json").write_text(json.dumps({"seconds": seconds, "rows_in": len(rows),
                                                    "rows_out": len(frame)}))


def run_feast_historical(rows: pd.DataFrame, io_dir: Path, env: dict[str, str], cap_s: float,
                         memory_gb: float) -> ChildResult:
    io_dir.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(io_dir / "rows.parquet", index=False)
    return run_child(f"Feast {len(rows):,} rows", ["historical"], io_dir, env, cap_s, memory_gb)


def child_materialize(io_dir: Path, start: date, end: date, view: str) -> None:
    from feast import FeatureStore

    from tessera.feast_objects import repo_config

    store = FeatureStore(config=repo_config(load_settings()))
    first = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    last = datetime(end.year, end.month, end.day, tzinfo=timezone.utc) + timedelta(days=1)
    began = time.perf_counter()
    store.materialize(start_date=first, end_date=last, feature_views=[view])
    (io_dir / "result.json").write_text(json.dumps({"seconds": time.perf_counter() - began}))
