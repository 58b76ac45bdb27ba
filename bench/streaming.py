"""Streaming benchmark: sustained events/s from Kafka to Redis, and freshness under load.

Runs its own Kafka and Redis (ports 31092-31094, state under /tmp) through `tessera services`, so a
running local stack is left alone.
  1. Throughput: N events are produced while the job is stopped; the job and the sink then drain
     the backlog; events/s = N / (time from the first feature row on Kafka to the last row written
     to Redis), so JVM and Python worker start-up are excluded. The job's own rate (to the last
     feature row on Kafka) is printed beside it, to show which side is the limit.
  2. Freshness: events at a fixed rate with event_time = now; probe events for dedicated users are
     timed from produce to their row being readable in Redis (Feast's layout, as Feast reads it).

    .venv/bin/python bench/streaming.py [--engine python|jvm] [--events 100000] [--rate 5000] [--seconds 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.proc_cpu import cpu_seconds, describe  # noqa: E402
from tessera.config import load_settings  # noqa: E402


def tessera(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tessera.cli", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"tessera {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=5_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--engine", choices=("python", "jvm"), help="[flink] engine (default: tessera.toml's)")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    env = {"TESSERA_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:31092", "TESSERA_KAFKA__CONTROLLER_PORT": "31093",
           "TESSERA_REDIS__PORT": "31094", "TESSERA_PATHS__STATE_DIR": str(state / "state"),
           "TESSERA_PATHS__DATA_DIR": str(state / "data"), "TESSERA_KAFKA__PARTITIONS": str(args.partitions),
           "TESSERA_PATHS__JAR_DIR": str(ROOT / ".cache" / "jars")}
    if args.engine:
        env["TESSERA_FLINK__ENGINE"] = args.engine
    os.environ.update(env)
    settings = load_settings(ROOT / "tessera.toml")
    from streaming import control
    from tessera.generator import EventGenerator, GeneratorConfig
    from tessera.kafka_io import RatePacer, produce
    from tessera.services.redis_server import redis_client

    print(f"state in {state}; engine {settings.flink.engine}")
    tessera(env, "services", "up")
    tessera(env, "apply")
    try:
        # 1. Throughput on a backlog. It ends at the present: a backlog an hour old would have the live
        # stream of part 2 move the clock past every backlog key's 5m and 1h leave boundaries at once,
        # and part 2 would measure that burst of decay rows instead of the steady state.
        start_ms = int(time.time() * 1000) - int(args.events / args.rate * 1000)
        gen = EventGenerator(GeneratorConfig(seed=1), start_ms, rate_per_s=args.rate)
        produce(settings, gen.batches(args.events))
        tessera(env, "stream", "start", "--from-checkpoint", "none")
        # (time, feature rows on Kafka, rows the sink has written), until the job has committed the
        # whole backlog (it commits on checkpoints) and the sink every row.
        samples: list[tuple[float, int, int]] = []
        cpu_at: dict[float, dict[str, float]] = {}
        while True:
            lags = {l.group: l for l in control.lags(settings)}
            job, sink = lags.get("tessera-stream"), lags.get("tessera-sink")
            if sink is not None:
                samples.append((time.monotonic(), sink.end, sink.committed))
                cpu_at[samples[-1][0]] = cpu_seconds(settings.state_dir)
            if job and job.behind == 0 and job.end > 0 and sink and sink.behind == 0 and sink.end > 0:
                break
            time.sleep(0.25)
        rows = samples[-1][1]
        first_row = next(t for t, end, _ in samples if end > 0)
        job_done = next(t for t, end, _ in samples if end == rows)
        sink_done = next(t for t, _, written in samples if written == rows)
        seconds = sink_done - first_row
        throughput = args.events / seconds if seconds > 0 else float("nan")
        job_rate = args.events / (job_done - first_row) if job_done > first_row else float("nan")
        print(f"throughput: {args.events:,} events in {seconds:.1f} s = {throughput:,.0f} events/s Kafka -> Redis "
              f"({rows:,} feature rows); the job alone: {job_rate:,.0f} events/s "
              f"(last feature row on Kafka after {job_done - first_row:.1f} s)")
        print(f"  CPU while draining: {describe(cpu_at[first_row], cpu_at[sink_done], args.events, seconds)}")

        if args.seconds <= 0:
            return 0
        # 2. Freshness at a fixed rate.
        client = redis_client(settings)
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from google.protobuf.timestamp_pb2 import Timestamp
        from tessera.events import AdEvent

        latencies: list[float] = []
        probes: dict[int, tuple[int, float]] = {}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set() or probes:
                for user, (event_time, sent) in list(probes.items()):
                    key = serialize_entity_key(EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=user)]),
                                               entity_key_serialization_version=3) + settings.feast.project.encode()
                    raw = client.hget(key, "_ts:user_ad_activity")
                    if raw:
                        ts = Timestamp()
                        ts.ParseFromString(raw)
                        if ts.seconds * 1000 + ts.nanos // 1_000_000 >= event_time:
                            latencies.append(time.monotonic() - sent)
                            del probes[user]
                if stop.is_set() and time.monotonic() > deadline:
                    break
                time.sleep(0.005)

        load = EventGenerator(GeneratorConfig(seed=2), int(time.time() * 1000), rate_per_s=args.rate)
        count = int(args.rate * args.seconds)
        pacer = RatePacer(args.rate)
        probe_every = max(1, int(args.rate / 10))  # ten probes a second
        from tessera.kafka_io import make_producer

        producer = make_producer(settings)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        sent = 0
        cpu_before, load_started = cpu_seconds(settings.state_dir), time.monotonic()
        for batch in load.batches(count, batch_size=int(args.rate)):
            for m in batch:
                pacer(sent)
                if sent % probe_every == 0:
                    user = 10_000_000 + sent
                    t = int(time.time() * 1000)
                    e = AdEvent(f"probe-{sent}", "impression", t, user, 1, 1, 0.001)
                    producer.produce(settings.kafka.topic, e.to_json_bytes(), e.key)
                    probes[user] = (t, time.monotonic())
                producer.produce(settings.kafka.topic, m.value, m.key)
                sent += 1
            producer.poll(0)
        producer.flush(30)
        del producer  # closed now: one left open logs a refused connection a second once the broker is down
        cpu_load = describe(cpu_before, cpu_seconds(settings.state_dir), sent, time.monotonic() - load_started)
        deadline = time.monotonic() + 60
        stop.set()
        watcher.join(65)
        if latencies:
            q = statistics.quantiles(latencies, n=100)
            print(f"freshness at {args.rate:,.0f} events/s for {args.seconds:.0f} s: {len(latencies)} probes, "
                  f"p50 {q[49] * 1000:,.0f} ms, p99 {q[98] * 1000:,.0f} ms, max {max(latencies) * 1000:,.0f} ms, "
                  f"{len(probes)} probes not visible within 60 s after the load ended")
            print(f"  CPU under load: {cpu_load}")
        else:
            print("freshness: no probe became visible")
    finally:
        tessera(env, "stream", "stop")
        tessera(env, "services", "down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
