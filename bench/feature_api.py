"""Benchmark the feature API against `feast serve` and raw Redis, side by side in one run.

    .venv/bin/python bench/feature_api.py            # 100,000 users, ~4 minutes
    .venv/bin/python bench/feature_api.py --users 20000 --duration 5   # quicker

Everything runs on loopback in a temporary directory: its own Redis (tessera's RedisServer), its
own registry (`tessera apply`), 100,000 users written through Feast's `write_to_online_store`.
Targets, each asked for the `ads_ranking` feature service (2 views, 16 features) of random users:
  * tessera serve, 2 workers
  * feast serve -w 2 --no-access-log (the tuned form), on the same Redis and registry
  * raw Redis: the exact HMGET the API sends, from the load generator itself (the floor)
Measured: peak throughput (wrk, 32 connections; the Redis floor with the Python closed loop),
latency at a fixed 2,000 req/s (open loop, bench/loadgen.py), and batches of 100 ids at 100 req/s.
Needs `wrk` (Debian: apt-get install -y wrk).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402  (bench/ is a folder of scripts, not a package)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SERVICE = "ads_ranking"
GOALS = {"throughput_x_feast": 4.0, "p99_ms_at_2000": 5.0, "batch_p99_ms": 15.0}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the stack: Redis, registry, rows -------------------------------------------------------------

def make_settings(base: Path, redis_port: int):
    from tessera.config import load_settings

    return load_settings(ROOT / "tessera.toml",
                         paths={"state_dir": str(base / "state"), "data_dir": str(base / "data")},
                         redis={"host": "127.0.0.1", "port": redis_port, "db": 0},
                         serving={"api_key": None})


def stack_env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update({"TESSERA_CONFIG": str(ROOT / "tessera.toml"), "TESSERA_PATHS__STATE_DIR": str(settings.state_dir),
                "TESSERA_PATHS__DATA_DIR": str(settings.data_dir), "TESSERA_REDIS__PORT": str(settings.redis.port)})
    return env


def populate(store, users: int, batch: int = 10_000) -> float:
    """Realistic rows for every user through Feast's own writer; returns the seconds it took."""
    rng = np.random.default_rng(7)
    now = pd.Timestamp.now(tz="UTC")
    yesterday = (now - pd.Timedelta(days=1)).normalize() + pd.Timedelta(hours=23, minutes=59, seconds=59)
    started = time.monotonic()
    for low in range(1, users + 1, batch):
        ids = np.arange(low, min(users, low + batch - 1) + 1)
        n = len(ids)
        imps = {w: rng.poisson(lam, n) for w, lam in (("5m", 1), ("1h", 12), ("24h", 150))}
        clicks = {w: rng.binomial(imps[w], 0.03) for w in imps}
        activity = pd.DataFrame({
            "user_id": ids, "event_timestamp": now, "created": now,
            **{f"impressions_{w}": imps[w] for w in imps}, **{f"clicks_{w}": clicks[w] for w in clicks},
            "conversions_1h": rng.binomial(clicks["1h"], 0.1), "conversions_24h": rng.binomial(clicks["24h"], 0.1),
            "spend_1h": imps["1h"] * 0.002, "spend_24h": imps["24h"] * 0.002,
            # null when there were no impressions, as the definitions say
            "ctr_1h": np.where(imps["1h"] > 0, clicks["1h"] / np.maximum(imps["1h"], 1), np.nan),
            "ctr_24h": np.where(imps["24h"] > 0, clicks["24h"] / np.maximum(imps["24h"], 1), np.nan),
        })
        store.write_to_online_store("user_ad_activity", activity)
        profile = pd.DataFrame({"user_id": ids, "event_timestamp": yesterday, "created": yesterday,
                                "impressions_30d": rng.poisson(3000, n), "clicks_30d": rng.poisson(90, n),
                                "spend_30d": rng.gamma(2.0, 3.0, n), "active_days_30d": rng.integers(1, 31, n)})
        store.write_to_online_store("user_profile_daily", profile)
        say(f"  wrote {ids[-1]:,}/{users:,} users")
    return time.monotonic() - started


# --- servers ----------------------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    health: str
    log: Path
    process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180) -> None:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}{self.health}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not healthy after {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the group we started: the server and its workers
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def feast_repo(base: Path, settings) -> Path:
    """A feature_store.yaml for `feast serve` with the same registry and Redis as ours."""
    repo = base / "feast_serve_repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        f"project: {settings.feast.project}\nprovider: local\n"
        f"registry:\n  registry_type: file\n  path: {settings.registry_path}\n  cache_ttl_seconds: 60\n"
        # JSON is YAML: a JSON string keeps the connection string's escapes (a password's \u002c) intact.
        f"online_store:\n  type: redis\n  connection_string: {json.dumps(settings.redis.feast_connection_string)}\n"
        f"offline_store:\n  type: file\nentity_key_serialization_version: 3\n")
    return repo


# --- checks -----------------------------------------------------------------------------------------

def sdk_values(store, ids: list[int]) -> dict[int, dict[str, object]]:
    service = store.get_feature_service(SERVICE)
    frame = store.get_online_features(features=service, entity_rows=[{"user_id": i} for i in ids],
                                      full_feature_names=True).to_dict()
    names = [n for n in frame if n != "user_id"]
    return {i: {n.replace("__", ":", 1): frame[n][k] for n in names} for k, i in enumerate(ids)}


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    return a == b and type(a) is type(b)


def verify(store, tessera_port: int, feast_port: int | None, users: int, sample: int = 200) -> str:
    ids = random.Random(3).sample(range(1, users + 1), sample)
    expected = sdk_values(store, ids)
    batch = httpx.post(f"http://127.0.0.1:{tessera_port}/features/user?feature_service={SERVICE}",
                       json={"ids": ids}, timeout=30).json()["results"]
    for entry in batch:
        got, want = entry["features"], expected[entry["id"]]
        assert set(got) == set(want) and all(same(got[k], want[k]) or (got[k] is None and want[k] != want[k])
                                             for k in want), f"user {entry['id']}: API {got} != SDK {want}"
    report = f"tessera API == Feast SDK for {sample} random users x 16 features"
    if feast_port is not None:
        body = httpx.post(f"http://127.0.0.1:{feast_port}/get-online-features", timeout=30,
                          json={"feature_service": SERVICE, "entities": {"user_id": ids},
                                "full_feature_names": True}).json()
        names = [n.replace("__", ":", 1) for n in body["metadata"]["feature_names"]]
        for column, name in zip(body["results"], names):
            if name == "user_id":
                continue
            for k, i in enumerate(ids):
                assert same(column["values"][k], expected[i][name]) or \
                    (column["values"][k] is None and expected[i][name] != expected[i][name]), (i, name)
        report += "; feast serve == Feast SDK too"
    return report


def wait_for_quiet(below: float, max_wait_s: float) -> None:
    """On a shared machine, wait (bounded) for other work's load to drop before a target's turn."""
    if below <= 0:
        return
    deadline = time.monotonic() + max_wait_s
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        say(f"  load average {os.getloadavg()[0]:.2f} >= {below}: waiting for the machine to quieten")
        time.sleep(10)


# --- measurements -----------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    peak_rps: float = float("nan")
    peak_note: str = ""
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    fixed_rate: float = float("nan")
    fixed_errors: int = 0
    batch_p50_ms: float = float("nan")
    batch_p99_ms: float = float("nan")
    batch_errors: int = 0
    load: float = float("nan")  # the machine's 1-minute load average when this target's turn began


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url: str, script: Path, connections: int, duration_s: int) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx + socket errors) from one wrk run."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=duration_s + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)\.000%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    if not pct:
        pct = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    bad += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rps, pct.get("50", float("nan")), pct.get("99", float("nan")), bad


def lua_get(path_of_id: str, users: int) -> str:
    return (f"math.randomseed(os.time())\n"
            f"request = function()\n  local id = math.random(1, {users})\n"
            f"  return wrk.format('GET', {path_of_id})\nend\n")


def lua_post(path: str, body_of_id: str, users: int) -> str:
    return (f"math.randomseed(os.time())\nwrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n"
            f"request = function()\n  local id = math.random(1, {users})\n"
            f"  return wrk.format('POST', '{path}', nil, {body_of_id})\nend\n")


def measure_http(row: Row, port: int, script: Path, single: Callable[[], bytes], batch: Callable[[], bytes],
                 args: argparse.Namespace) -> None:
    url = f"http://127.0.0.1:{port}/"
    wait_for_quiet(args.quiet_below, args.quiet_wait)
    row.load = os.getloadavg()[0]
    say(f"{row.name}: peak throughput (wrk, {args.connections} connections, {args.duration} s)")
    wrk(url, script, args.connections, 2)  # warm-up: connections, caches, JIT-free but lazy imports
    row.peak_rps, p50, p99, bad = wrk(url, script, args.connections, args.duration)
    row.peak_note = f"p50 {p50:.1f} / p99 {p99:.1f} ms at peak" + (f", {bad} errors" if bad else "")
    say(f"{row.name}: {args.rate:,} req/s fixed rate for {args.duration} s")
    fixed = loadgen.run(loadgen.fixed_rate("127.0.0.1", port, loadgen.HttpConn, single, args.rate, args.duration))
    row.p50_ms, row.p99_ms = fixed.percentile_ms(50), fixed.percentile_ms(99)
    row.fixed_rate, row.fixed_errors = fixed.rate, fixed.failed + fixed.timed_out
    say(f"{row.name}: batches of {args.batch_ids} ids at {args.batch_rate} req/s for {args.duration} s")
    batched = loadgen.run(loadgen.fixed_rate("127.0.0.1", port, loadgen.HttpConn, batch, args.batch_rate,
                                             args.duration))
    row.batch_p50_ms, row.batch_p99_ms = batched.percentile_ms(50), batched.percentile_ms(99)
    row.batch_errors = batched.failed + batched.timed_out


def http_request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def measure_redis(row: Row, settings, users: int, args: argparse.Namespace) -> None:
    from serving.plan import plan_loader

    plan = plan_loader(settings)()
    selection = plan.select("user", None, SERVICE)
    keys = [selection.entity.redis_key(i) for i in range(1, users + 1)]
    fields = selection.fields
    rng = random.Random(11)
    single = lambda: loadgen.resp_command(b"HMGET", keys[rng.randrange(users)], *fields)  # noqa: E731
    batch = lambda: b"".join(loadgen.resp_command(b"HMGET", keys[rng.randrange(users)], *fields)  # noqa: E731
                             for _ in range(args.batch_ids))
    port = settings.redis.port
    wait_for_quiet(args.quiet_below, args.quiet_wait)
    row.load = os.getloadavg()[0]
    say(f"{row.name}: peak throughput (Python closed loop, {args.connections} connections)")
    peak = loadgen.run(loadgen.closed_loop("127.0.0.1", port, loadgen.RespConn, single, args.connections,
                                           args.duration))
    row.peak_rps = peak.rate
    row.peak_note = "bound by the Python client"
    fixed = loadgen.run(loadgen.fixed_rate("127.0.0.1", port, loadgen.RespConn, single, args.rate, args.duration))
    row.p50_ms, row.p99_ms, row.fixed_rate = fixed.percentile_ms(50), fixed.percentile_ms(99), fixed.rate
    row.fixed_errors = fixed.failed + fixed.timed_out
    batched = loadgen.run(loadgen.fixed_rate("127.0.0.1", port, loadgen.RespConn, batch, args.batch_rate,
                                             args.duration, replies=args.batch_ids))
    row.batch_p50_ms, row.batch_p99_ms = batched.percentile_ms(50), batched.percentile_ms(99)
    row.batch_errors = batched.failed + batched.timed_out


# --- report -----------------------------------------------------------------------------------------

def table(rows: list[Row], args: argparse.Namespace) -> str:
    head = (f"{'target':<44} {'peak req/s':>11} {f'p50 @{args.rate}/s':>12} {f'p99 @{args.rate}/s':>12} "
            f"{'achieved':>9} {'err':>5} {f'batch{args.batch_ids} p50':>12} {f'batch{args.batch_ids} p99':>12} {'err':>4} "
            f"{'load':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name:<44} {r.peak_rps:>11,.0f} {r.p50_ms:>9.2f} ms {r.p99_ms:>9.2f} ms "
                     f"{r.fixed_rate:>9,.0f} {r.fixed_errors:>5} {r.batch_p50_ms:>9.2f} ms {r.batch_p99_ms:>9.2f} ms "
                     f"{r.batch_errors:>4} {r.load:>5.2f}")
    lines.append("")
    lines.extend(f"  {r.name}: peak {r.peak_note}" for r in rows if r.peak_note)
    lines.append("  load: the 1-minute load average when the target's turn began (2 cores; other work shares them)")
    lines.append("  err: non-2xx answers and requests unanswered 5 s after the run (a server that cannot keep up)")
    return "\n".join(lines)


def goals(tessera: Row, feast: Row) -> str:
    ratio = tessera.peak_rps / feast.peak_rps
    checks = [
        (f"throughput >= {GOALS['throughput_x_feast']:.0f}x feast serve", f"{ratio:.1f}x",
         ratio >= GOALS["throughput_x_feast"]),
        (f"p99 <= {GOALS['p99_ms_at_2000']:.0f} ms at 2,000 req/s", f"{tessera.p99_ms:.2f} ms",
         tessera.p99_ms <= GOALS["p99_ms_at_2000"] and tessera.fixed_errors == 0),
        (f"batched (100 ids, 100 req/s) p99 <= {GOALS['batch_p99_ms']:.0f} ms", f"{tessera.batch_p99_ms:.2f} ms",
         tessera.batch_p99_ms <= GOALS["batch_p99_ms"] and tessera.batch_errors == 0),
    ]
    return "\n".join(f"  [{'PASS' if ok else 'MISS'}] {goal}: {value}" for goal, value, ok in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for peak throughput")
    parser.add_argument("--rate", type=int, default=2000, help="fixed rate, req/s (default 2000)")
    parser.add_argument("--batch-ids", type=int, default=100)
    parser.add_argument("--batch-rate", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-feast", action="store_true", help="measure tessera and Redis only")
    parser.add_argument("--feast-recycling-off", action="store_true",
                        help="also measure feast serve with --max-requests 0 (its workers otherwise restart every "
                             "~1,000 requests)")
    parser.add_argument("--quiet-below", type=float, default=0.0,
                        help="before each target, wait until the 1-minute load average is below this (0: don't)")
    parser.add_argument("--quiet-wait", type=float, default=120.0, help="longest wait for that, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        say("wrk is not installed: apt-get install -y wrk (Debian)")
        return 2

    from feast import FeatureStore

    from tessera.feast_objects import repo_config
    from tessera.services.redis_server import RedisServer

    base = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    settings = make_settings(base, free_port())
    env = stack_env(settings)
    redis = RedisServer(settings)
    servers: list[Server] = []
    rows: list[Row] = []
    try:
        say(f"Redis: {redis.start()}")
        applied = subprocess.run([PY, "-m", "tessera.cli", "apply"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert applied.returncode == 0, applied.stderr
        store = FeatureStore(config=repo_config(settings))
        say(f"writing {args.users:,} users x 2 views through Feast's write_to_online_store")
        took = populate(store, args.users)
        say(f"populated in {took:.1f} s ({2 * args.users / took:,.0f} rows/s)")

        users = args.users
        script_dir = base / "lua"
        script_dir.mkdir()
        tessera_lua = script_dir / "tessera.lua"
        tessera_lua.write_text(lua_get(f"'/features/user/' .. id .. '?feature_service={SERVICE}'", users))
        feast_lua = script_dir / "feast.lua"
        feast_lua.write_text(lua_post("/get-online-features",
                                      f"'{{\"feature_service\":\"{SERVICE}\",\"entities\":{{\"user_id\":[' .. id .. ']}}}}'",
                                      users))
        rng = random.Random(5)

        def tessera_single() -> bytes:
            return http_request("GET", f"/features/user/{rng.randint(1, users)}?feature_service={SERVICE}")

        def tessera_batch() -> bytes:
            ids = [rng.randint(1, users) for _ in range(args.batch_ids)]
            return http_request("POST", f"/features/user?feature_service={SERVICE}", json.dumps({"ids": ids}).encode())

        def feast_single() -> bytes:
            body = {"feature_service": SERVICE, "entities": {"user_id": [rng.randint(1, users)]}}
            return http_request("POST", "/get-online-features", json.dumps(body).encode())

        def feast_batch() -> bytes:
            body = {"feature_service": SERVICE, "entities": {"user_id": [rng.randint(1, users)
                                                                          for _ in range(args.batch_ids)]}}
            return http_request("POST", "/get-online-features", json.dumps(body).encode())

        # tessera
        tport = free_port()
        tessera = Server(f"tessera serve ({args.workers} workers)",
                         [PY, "-m", "tessera.cli", "serve", "--port", str(tport), "--workers", str(args.workers),
                          "--log-level", "warning"], env, tport, "/health", base / "tessera.log")
        servers.append(tessera)
        say(f"starting {tessera.name}")
        tessera.start()

        feast_variants = [] if args.skip_feast else [("feast serve -w 2 --no-access-log", [])]
        if args.feast_recycling_off and not args.skip_feast:
            feast_variants.append(("feast serve -w 2 --no-access-log --max-requests 0", ["--max-requests", "0"]))
        fport = free_port() if feast_variants else None
        feast_dir = feast_repo(base, settings) if feast_variants else None
        if feast_variants:
            first = Server(feast_variants[0][0], [str(Path(PY).parent / "feast"), "-c", str(feast_dir), "serve",
                                                  "-p", str(fport), "-w", str(args.workers), "--no-access-log"],
                           env, fport, "/health", base / "feast.log")
            servers.append(first)
            say(f"starting {first.name}")
            first.start()
        say(verify(store, tport, fport, users))
        if feast_variants:
            first.stop()

        row = Row(tessera.name)
        measure_http(row, tport, tessera_lua, tessera_single, tessera_batch, args)
        rows.append(row)
        tessera.stop()

        for name, extra in feast_variants:
            server = Server(name, [str(Path(PY).parent / "feast"), "-c", str(feast_dir), "serve", "-p", str(fport),
                                   "-w", str(args.workers), "--no-access-log", *extra],
                            env, fport, "/health", base / f"feast{len(servers)}.log")
            servers.append(server)
            say(f"starting {name}")
            server.start()
            row = Row(name)
            measure_http(row, fport, feast_lua, feast_single, feast_batch, args)
            rows.append(row)
            server.stop()

        row = Row("raw Redis HMGET (floor, same command)")
        measure_redis(row, settings, users, args)
        rows.append(row)

        print()
        print(f"Feature API benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores, "
              f"load average now {os.getloadavg()[0]:.2f}, {users:,} users, feature service {SERVICE} "
              f"(2 views, 16 features), random ids, loopback")
        print(table(rows, args))
        if not args.skip_feast:
            print("\nGoals (tessera vs the tuned feast serve):")
            print(goals(rows[0], rows[1]))
        return 0
    finally:
        for server in servers:
            server.stop()
        redis.stop()
        if args.keep:
            say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
