"""Soak: the feature API under a fixed request rate while the stream runs at a fixed event rate.

Runs its own Kafka and Redis (ports 32092-32094, state under /tmp), the Flink job and its writer,
and `tessera serve`. For `--minutes` it produces `--events-per-s` live events (event_time = now;
bench/event_pump.py generates up to `--plan-s` seconds of them first and sends them again, pass
after pass, with times moved on and ids renamed, so an hour's soak needs no hour of generating) and
sends `--rps` GET /features/user/{id}?feature_service=ads_ranking requests at a fixed rate
(open loop, latency from each request's due time; bench/loadgen.py). Every minute it prints the
requests answered, errors, p50/p99/max, the stream's lag, and every process's memory (RSS of the
process and its children). At the end: the goals, pass or fail.

    .venv/bin/python bench/soak.py [--minutes 10] [--rps 2000] [--events-per-s 5000] [--stream-nice N]

Before the load, every user and campaign gets one event (their times spread over the shortest window
before now, so that keys decay a few hundred a second, as in a live stream), so that the online store holds all of its
keys from the start: what grows after that is memory, not data.

Goals (issue 7): zero errors, p99 within the feature API's 5 ms each minute, memory flat (the last
minute's peak RSS within `--memory-slack` of the second minute's, per process; peaks, sampled every
second, because a process that works in batches has a saw-tooth RSS that one reading a minute lands
anywhere on), and the stream keeping
up: each minute's worst freshness (wall clock minus the newest as_of the writer has put in Redis,
sampled twice a second; the events are stamped with the time they are sent) within the view's
freshness budget; the "job fresh" column is the same for the job's latest rows on the features topic,
before the writer. `--stream-nice` runs the Flink job, its writer and the Kafka broker at that Unix
nice (`[flink] nice`, `[sink] nice`, `[kafka] nice`): on one machine the API's requests go first and the stream takes
the CPU left over, which the freshness goal holds to account. `--serving-priority N` runs the
request path at SCHED_FIFO N (`[serving] realtime_priority`, `[redis] realtime_priority`, and the
load generator, which stands in for callers on other machines): what meets the p99 goal on 2 cores.
With the request path at SCHED_FIFO, the stream's nice no longer shields the API (a FIFO task
preempts every nice level); it only ranks the stream against the event pump (nice 0, standing in for
producers elsewhere) and the archiver. At nice 10 that starved the job and its collector: young
collections of 0.3 to 0.5 s of CPU took 1 to 4 s of wall clock, and freshness was 5 to 25 s (stop 19).
At nice 0 they still took 2 to 4.5 times their CPU (User=0.41s Real=1.43s), and freshness missed its
5 s in 1 to 3 minutes of 10 (6.5 to 14 s); at nice -5 (as root) it met it in every minute (0.8 to
4.8 s, stop 23). So run the stream at -5 there and the archiver at 19:

    .venv/bin/python bench/soak.py --minutes 10 --stream-nice -5 --archive-nice 19 --serving-priority 50   # as root

Each minute also prints the Flink JVM's heap, the seconds with the most slow requests, and how long
the CPUs were taken away from this machine altogether (bench/cpu_stalls.py), in all and in those seconds.
Before the warm-up and after the last minute a full collection measures the job's live set: its
state, apart from the garbage its old generation holds until a full collection (--no-live-heap skips it).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import KafkaException

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The streaming package first: bench/feature_api.py puts bench/ (which holds a streaming.py) in front
# of sys.path when it is imported.
from streaming import control  # noqa: E402
from bench.feature_api import Server, http_request  # noqa: E402
from bench import jvm_heap  # noqa: E402
from bench.event_pump import EventPump  # noqa: E402
from bench.cpu_stalls import StallProbe, StallReport, summary as stall_summary  # noqa: E402
from bench.loadgen import HttpConn, fixed_rate, run  # noqa: E402
from bench.rss_peaks import RssPeaks  # noqa: E402
from bench.proc_tree import tree_cpu_s  # noqa: E402
from bench.streaming import tessera as tessera_cli  # noqa: E402
from tessera.config import load_settings  # noqa: E402
from tessera.services.cpu_priority import check_realtime, take_realtime  # noqa: E402

P99_GOAL_MS = 5.0
FRESHNESS_VIEW = "user_ad_activity"
LOAD_PROCESSES = ("event pump", "load gen")  # measured for their CPU, not held to the memory goal


@dataclass
class Minute:
    index: int
    ok: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    produced: int
    job_behind: int
    worst_freshness_ms: float
    worst_job_freshness_ms: float  # the job's rows on the features topic, before the writer
    rss_mb: dict[str, float] = field(default_factory=dict)  # the minute's peak (bench/rss_peaks.py)
    cores: dict[str, float] = field(default_factory=dict)  # CPU seconds per second over the minute
    heap: jvm_heap.HeapSample | None = None  # the Flink JVM's, at the minute's end: its RSS stays flat as the heap fills


def load_generator_cpu_s() -> float:
    """This process (the Python load generator) plus its finished children (the C or Go load generator's
    runs); not the live event pump, which has a column of its own."""
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


class NativeLoad:
    """One fixed-rate run of bench/loadgen_c or bench/loadgen_go (same flags and JSON; same
    open-loop rules as bench/loadgen.py), with the attributes of bench.loadgen.Result that the soak reads."""

    def __init__(self, binary: Path, port: int, users: int, rps: float, seconds: float, worst: int = 5,
                 realtime: int = 0) -> None:
        done = subprocess.run([str(binary), "-url", f"http://127.0.0.1:{port}/features/user/%d?feature_service=ads_ranking",
                               "-ids", str(users), "-rate", str(rps), "-seconds", str(seconds),
                               "-worst-seconds", str(worst), "-slow", f"{P99_GOAL_MS}ms"],
                              capture_output=True, text=True, check=True,
                              # The load generator stands in for callers on other machines: at the
                              # request path's priority, so the stream does not delay it either.
                              preexec_fn=(lambda: take_realtime(realtime, "--serving-priority")) if realtime else None)
        figures = json.loads(done.stdout)
        self.ok, self.failed, self.timed_out = figures["ok"], figures["failed"], figures["timed_out"]
        self.first_error = done.stderr.strip().splitlines()[-1] if self.failed + self.timed_out else ""
        self._ms = {50: figures["p50_ms"], 99: figures["p99_ms"], 100: figures["max_ms"]}
        # When the slow requests came: seconds past the minute tell a minute-boundary burst from noise.
        self.worst_seconds: list[tuple[int, int]] = [(w["unix_s"], w["slow"]) for w in figures["worst_seconds"]]

    def percentile_ms(self, p: int) -> float:
        return self._ms[p]


def build_loadgen(kind: str) -> Path:
    """bench/loadgen_c (with the C compiler) or bench/loadgen_go (with Go) built into .cache/bin."""
    tool = {"c": "cc", "go": "go"}[kind]
    if shutil.which(tool) is None:
        raise SystemExit(f"--loadgen {kind} needs `{tool}`; try another --loadgen")
    target = ROOT / ".cache" / "bin" / ("loadgen-c" if kind == "c" else "loadgen")
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "c":
        subprocess.run([tool, "-O2", "-Wall", "-o", str(target), str(ROOT / "bench" / "loadgen_c" / "loadgen.c")],
                       check=True)
    else:
        subprocess.run([tool, "build", "-o", str(target), "."], cwd=ROOT / "bench" / "loadgen_go", check=True,
                       env={**os.environ, "GOFLAGS": "-mod=mod"})
    return target


def seed_every_key(settings, users: int, campaigns: int, spread_ms: int) -> int:  # type: ignore[no-untyped-def]
    """One impression for each user and campaign id the generator and the load draw from, their times
    spread evenly over the `spread_ms` before now, in time order. Seeded at one instant, every key
    would leave its shortest window at one instant mid-soak too: a decay of every key at once that no
    live stream has (100,000 rows in a second, the writer 20 s behind). Spread over that window, they
    decay a few hundred a second, as a live stream's keys do. Sent before the job starts, so that no
    newer event makes them late."""
    from tessera.events import AdEvent
    from tessera.kafka_io import make_producer

    producer = make_producer(settings)
    now = int(time.time() * 1000)
    count = max(users, campaigns)
    for i in range(count):
        at = now - spread_ms + spread_ms * i // count
        event = AdEvent(f"soak-seed-{i:x}", "impression", at, i % users, 0, i % campaigns, 0.001)
        while True:
            try:
                producer.produce(settings.kafka.topic, event.to_json_bytes(), event.key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)
    return count


class FreshnessSampler:
    """Twice a second: wall clock minus the newest as_of the writer has published for `view` (the
    goal), and minus the newest as_of among the job's latest rows on the features topic
    (bench/job_freshness.py), which says on which side of the writer a missed goal lost its time."""

    def __init__(self, settings, view: str) -> None:  # type: ignore[no-untyped-def]
        import threading

        from bench.job_freshness import JobFreshness
        from tessera.services.redis_server import redis_client

        self._client, self._view = redis_client(settings), view
        self._job = JobFreshness(settings, view)
        self._samples: list[float] = []
        self._job_samples: list[float] = []
        self._stop = threading.Event()
        # Apart: a read of the topic takes 0.4 to 1.7 s on the loaded machine, which would thin the
        # goal's samples.
        for target, name in ((self._run, "freshness"), (self._run_job, "job freshness")):
            threading.Thread(target=target, daemon=True, name=name).start()

    def _run(self) -> None:
        from streaming.progress import parse_progress, progress_key

        while not self._stop.wait(0.5):
            try:
                progress = parse_progress(self._view, self._client.hgetall(progress_key(self._view)))
            except Exception:  # noqa: BLE001 - a missed sample is a gap, not a failure of the soak
                continue
            if progress is not None and progress.as_of_ms is not None:
                self._samples.append(time.time() * 1000 - progress.as_of_ms)

    def _run_job(self) -> None:
        while not self._stop.wait(0.5):
            try:
                job = self._job.sample_ms()
            except Exception:  # noqa: BLE001 - as above
                continue
            if job is not None:
                self._job_samples.append(job)
        self._job.close()

    def take_worst_ms(self) -> tuple[float, float]:
        """The worst (writer, job) samples since the last call."""
        samples, self._samples = self._samples, []
        job, self._job_samples = self._job_samples, []
        return max(samples, default=float("nan")), max(job, default=float("nan"))

    def stop(self) -> None:
        self._stop.set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rps", type=float, default=2000)
    parser.add_argument("--events-per-s", type=float, default=5000)
    parser.add_argument("--workers", type=int, default=2, help="API worker processes (default 2)")
    parser.add_argument("--users", type=int, default=100_000, help="ids requested, uniformly (default 100000)")
    parser.add_argument("--loadgen", choices=["c", "go", "python"], default="c",
                        help="c (bench/loadgen_c, the default: one thread and epoll, the least CPU taken from "
                             "what it measures), go (bench/loadgen_go: its runtime costs 0.35 cores at real-time "
                             "priority) or python (bench/loadgen.py)")
    parser.add_argument("--warmup-s", type=float, default=60,
                        help="load (stream and requests) before the measured minutes, printed apart (default 60)")
    parser.add_argument("--stream-nice", type=int, default=0,
                        help="the Flink job's, the writer's and the Kafka broker's Unix nice, -20 to 19 (default 0: equal priority)")
    parser.add_argument("--job-nice", type=int,
                        help="the Flink job's alone ([flink] nice; default: --stream-nice); below 0 (as root) "
                             "its collector's pauses, which stop the whole job, get the CPU ahead of the "
                             "other ordinary processes")
    parser.add_argument("--archive-nice", type=int,
                        help="the archiver's Unix nice ([sink] archive_nice; default: --stream-nice): it archives "
                             "raw events and may lag a few seconds, so 19 leaves the rest of the stream the CPU first")
    parser.add_argument("--worst-seconds", type=int, default=5,
                        help="each minute, list this many seconds with the most requests over the p99 goal "
                             "(to line them up with GC or checkpoint logs; default 5)")
    parser.add_argument("--serving-priority", type=int, default=0,
                        help="SCHED_FIFO priority (1-99) of the request path: the API's workers ([serving] "
                             "realtime_priority), Redis ([redis] realtime_priority) and the load generator, "
                             "which stands in for callers on other machines (default 0: ordinary; needs root)")
    parser.add_argument("--live-heap", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the Flink JVM's live set (jcmd GC.class_histogram, a full collection) before "
                             "the warm-up and after the last minute, so state growth shows apart from garbage "
                             "(default on; each collection pauses the job outside the counted minutes)")
    parser.add_argument("--live-heap-every", type=int, default=0, metavar="MINUTES",
                        help="also measure the live set after every MINUTES-th minute (its full collection then "
                             "pauses the job in the next counted minute): for a run long enough to show the state "
                             "level off once its longest by-the-minute window has filled (default 0: never)")
    parser.add_argument("--plan-s", type=float, default=720,
                        help="seconds of events generated before the load and sent again, pass after pass, with "
                             "times moved on and ids renamed, for as long as the soak lasts (bench/event_pump.py; "
                             "default 720: a 10-minute soak with its warm-up sends each event once)")
    parser.add_argument("--flink-heap", default="4g",
                        help="the Flink job's heap ([flink] local_heap; default 4g): its window state grows with "
                             "every key-minute of the 24 h windows, and at 5,000 events/s over 100,000 keys the "
                             "default 1g fills its old generation in minutes, then collects for seconds at a time")
    parser.add_argument("--stall-probe", action=argparse.BooleanOptionalAction, default=True,
                        help="run bench/cpu_stalls.py's FIFO-99 probe on each CPU and print, each minute and for "
                             "each of the worst seconds, how long the CPUs were away (default on)")
    parser.add_argument("--memory-slack", type=float, default=0.10,
                        help="allowed RSS growth from minute 2 to the last, per process (default 0.10)")
    args = parser.parse_args()

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM too runs the clean-up below: it stops the services it started

    signal.signal(signal.SIGTERM, interrupted)
    if args.serving_priority:
        check_realtime(args.serving_priority, "--serving-priority")  # a clear error now, not after the set-up
        if args.loadgen == "python":
            raise SystemExit("--serving-priority applies to the C and Go load generators only; drop --loadgen python")
    native_loadgen = build_loadgen(args.loadgen) if args.loadgen != "python" else None
    state = Path(tempfile.mkdtemp(prefix="tessera-soak-"))
    env = {"TESSERA_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:32092", "TESSERA_KAFKA__CONTROLLER_PORT": "32093",
           "TESSERA_REDIS__PORT": "32094", "TESSERA_PATHS__STATE_DIR": str(state / "state"),
           "TESSERA_PATHS__DATA_DIR": str(state / "data"), "TESSERA_PATHS__JAR_DIR": str(ROOT / ".cache" / "jars"),
           "TESSERA_FLINK__NICE": str(args.stream_nice if args.job_nice is None else args.job_nice), "TESSERA_SINK__NICE": str(args.stream_nice),
           "TESSERA_KAFKA__NICE": str(args.stream_nice),
           "TESSERA_SINK__ARCHIVE_NICE": str(args.stream_nice if args.archive_nice is None else args.archive_nice),
           "TESSERA_FLINK__LOCAL_HEAP": args.flink_heap,
           "TESSERA_SERVING__REALTIME_PRIORITY": str(args.serving_priority),
           "TESSERA_REDIS__REALTIME_PRIORITY": str(args.serving_priority)}
    os.environ.update(env)
    settings = load_settings(ROOT / "tessera.toml")
    from tessera.services.kafka_broker import KafkaBroker
    from tessera.services.redis_server import RedisServer

    port = 32080
    api = Server("tessera", [sys.executable, "-m", "tessera.cli", "serve", "--port", str(port),
                             "--workers", str(args.workers)], {**os.environ}, port, "/health", state / "api.log")
    print(f"state in {state}", flush=True)
    tessera_cli(env, "services", "up")
    tessera_cli(env, "apply")
    plan_s = min(args.plan_s, 1.2 * (args.warmup_s + 60 * args.minutes))  # a fifth to spare
    pump = EventPump(settings, args.events_per_s, plan_s)
    minutes: list[Minute] = []
    freshness: FreshnessSampler | None = None
    probe: StallProbe | None = None
    rss: RssPeaks | None = None
    try:
        from tessera.generator import GeneratorConfig

        spread_ms = shortest_window_ms(settings)
        seeded = seed_every_key(settings, args.users + 1, GeneratorConfig().campaigns, spread_ms)
        tessera_cli(env, "stream", "start", "--from-checkpoint", "none", "--wait", "240")
        print(f"seeded {seeded:,} keys (one event per user and campaign id, over the {spread_ms // 1000} s before "
              f"now); stream at nice {args.stream_nice}, job at {settings.flink.nice}, "
              f"archiver at {settings.sink.archive_nice}; "
              f"request path at {f'SCHED_FIFO {args.serving_priority}' if args.serving_priority else 'ordinary priority'}",
              flush=True)
        api.start()
        pids = {"kafka": KafkaBroker(settings).process.pid(), "redis": RedisServer(settings).process.pid(),
                "flink job": control.processes(settings)["stream-job"].pid(),
                "writer": control.processes(settings)["stream-sink"].pid(),
                "archive": control.processes(settings)["stream-archive"].pid(),
                "api": api.process.pid if api.process else None}
        print(f"generating {int(args.events_per_s * plan_s):,} events for the event pump ({plan_s:.0f} s, "
              "sent again with times moved on and ids renamed if the soak outlasts them)", flush=True)
        pump.start()
        pids |= {"event pump": pump.pid, "load gen": os.getpid()}
        freshness = FreshnessSampler(settings, FRESHNESS_VIEW)

        def cpu_s(name: str, pid: int | None) -> float:
            return load_generator_cpu_s() if name == "load gen" else tree_cpu_s(pid)
        def path_of() -> bytes:
            return http_request("GET", f"/features/user/{random.randint(1, args.users)}?feature_service=ads_ranking")

        def load(seconds: float) -> Any:
            if native_loadgen is None:
                return run(fixed_rate("127.0.0.1", port, HttpConn, path_of, args.rps, seconds, warmup_s=0.0))
            return NativeLoad(native_loadgen, port, args.users, args.rps, seconds, args.worst_seconds, args.serving_priority)
        flink_jvm = jvm_heap.java_pid(pids["flink job"])
        live_before = jvm_heap.live_heap(flink_jvm) if args.live_heap else None
        live_since = time.monotonic()
        if args.warmup_s > 0:
            warm = load(args.warmup_s)
            print(f"warm-up {args.warmup_s:.0f} s (not counted): {warm.ok:,} ok, {warm.failed + warm.timed_out:,} "
                  f"errors, p50 {warm.percentile_ms(50):.2f} ms, p99 {warm.percentile_ms(99):.2f} ms", flush=True)
        print(f"{'min':>3} {'ok':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8} {'events':>9} "
              f"{'job behind':>10} {'fresh ms':>8} {'job fresh':>9}  peak RSS MB / cores" + " ".join(f"{n:>14}" for n in pids), flush=True)
        cpu_before = {n: cpu_s(n, pid) for n, pid in pids.items()}
        heap_before = jvm_heap.sample(flink_jvm)
        freshness.take_worst_ms()  # the warm-up's samples are not counted
        probe = StallProbe().start() if args.stall_probe else None
        rss = RssPeaks(pids).start()
        for i in range(1, args.minutes + 1):
            produced_before = pump.produced
            began = time.monotonic()
            result = load(60.0)
            cpu_now = {n: cpu_s(n, pid) for n, pid in pids.items()}
            elapsed = time.monotonic() - began
            try:
                lag = {l.group: l.behind for l in control.lags(settings, timeout_s=2.0)}
            except KafkaException:  # a broker that does not answer: the minute's other figures still stand
                lag = {}
            minute = Minute(i, result.ok, result.failed + result.timed_out, result.percentile_ms(50),
                            result.percentile_ms(99), result.percentile_ms(100), pump.produced - produced_before,
                            lag.get("tessera-stream", -1), *freshness.take_worst_ms(),
                            rss.take(),
                            {n: (cpu_now[n] - cpu_before[n]) / elapsed for n in pids})
            cpu_before = cpu_now
            minute.heap = jvm_heap.sample(flink_jvm)
            minutes.append(minute)
            print(f"{i:>3} {minute.ok:>8,} {minute.errors:>6,} {minute.p50_ms:>7.2f} {minute.p99_ms:>7.2f} "
                  f"{minute.max_ms:>8.1f} {minute.produced:>9,} {minute.job_behind:>10,} {minute.worst_freshness_ms:>8,.0f}"
                  f" {minute.worst_job_freshness_ms:>9,.0f}"
                  "                 "
                  + " ".join(f"{minute.rss_mb[n]:>7,.0f}/{minute.cores[n]:>5.2f}c" for n in pids), flush=True)
            if minute.heap is not None and heap_before is not None:
                print(f"      flink heap: old generation {minute.heap.old_used_mb:,.0f} of "
                      f"{minute.heap.old_capacity_mb:,.0f} MB; {minute.heap.gc_s - heap_before.gc_s:.1f} s in "
                      f"{minute.heap.young_gcs - heap_before.young_gcs} young and "
                      f"{minute.heap.full_gcs - heap_before.full_gcs} full collections this minute", flush=True)
                heap_before = minute.heap
            if live_before is not None and args.live_heap_every and i % args.live_heap_every == 0 and i < args.minutes:
                live = jvm_heap.live_heap(flink_jvm)
                print(f"      flink live heap: {live.total_mb:,.0f} MB" if live else "      flink live heap: failed",
                      flush=True)
            if getattr(result, "first_error", ""):
                print(f"      {result.first_error}", flush=True)
            stalls = probe.take() if probe is not None else None
            if stalls is not None:
                print(f"      cpu stalls ({'FIFO-99' if stalls.realtime else 'normal priority'} probe, "
                      f"bench/cpu_stalls.py): {stall_summary(stalls.stalls)}", flush=True)
            if getattr(result, "worst_seconds", None):
                print("      most requests over the p99 goal in: "
                      + ", ".join(_second(at, n, stalls) for at, n in result.worst_seconds), flush=True)
        if live_before is not None:
            print_live_heap(live_before, jvm_heap.live_heap(flink_jvm), time.monotonic() - live_since, len(minutes))
        from tessera.kafka_io import topic_message_counts

        late = topic_message_counts(settings, [settings.kafka.late_topic], timeout_s=10)[settings.kafka.late_topic]
        print(f"\nlate events ({settings.kafka.late_topic}): {late:,} (the seed's and the load's events are all on "
              "time: more than 0: the job judged some late, and they are missing online)", flush=True)
    finally:
        if freshness is not None:
            freshness.stop()
        if probe is not None:
            probe.stop()
        if rss is not None:
            rss.stop()
        pump.stop_flag.set()
        pump.join(60)
        api.stop()
        # Each step on its own: a failed stream stop must not leave Kafka and Redis running.
        for step in (("stream", "stop"), ("services", "down")):
            try:
                tessera_cli(env, *step)
            except SystemExit as err:
                print(err, file=sys.stderr)
    return report(minutes, args, freshness_budget_ms(settings))


def print_live_heap(before: jvm_heap.LiveHeap, after: jvm_heap.LiveHeap | None, seconds: float, minutes: int) -> None:
    """The job's live set (its state, mostly) before the warm-up and after the last minute: the
    old generation's figures count garbage that no collection has looked at yet."""
    if after is None:
        print("flink live heap: the second histogram failed", flush=True)
        return
    rate = (after.total_mb - before.total_mb) / (seconds / 60)
    print(f"\nflink live heap (a full collection each, outside the counted minutes): {before.total_mb:,.0f} MB "
          f"before the warm-up -> {after.total_mb:,.0f} MB after minute {minutes} ({rate:+,.1f} MB a minute); "
          "largest: " + ", ".join(f"{name} {mb:,.0f} MB" for name, mb, _n in after.top), flush=True)


def _second(unix_s: int, slow: int, stalls: StallReport | None) -> str:
    """'12:49:17 (276)', with the CPU stalls of that second when the probe ran: '(276; stalled 9 ms)'."""
    at = time.strftime("%H:%M:%S", time.localtime(unix_s))
    if stalls is None:
        return f"{at} ({slow:,})"
    stalled = sum(s.late_ms for s in stalls.in_window(unix_s, unix_s + 1))
    return f"{at} ({slow:,}; stalled {stalled:.0f} ms)"


def report(minutes: list[Minute], args: argparse.Namespace, budget_ms: int) -> int:
    if not minutes:
        return 1
    errors = sum(m.errors for m in minutes)
    worst_p99 = max(m.p99_ms for m in minutes)
    rate = sum(m.produced for m in minutes) / (60 * len(minutes))
    print(f"\nevents produced: {rate:,.0f}/s on average (asked {args.events_per_s:,.0f}/s); "
          f"job behind at the end: {minutes[-1].job_behind:,} events")
    print(f"errors: {errors:,} {'(goal 0: met)' if errors == 0 else '(goal 0: NOT met)'}")
    cores = {n: sum(m.cores[n] for m in minutes) / len(minutes) for n in minutes[0].cores}
    print("CPU, cores on average: " + ", ".join(f"{n} {c:.2f}" for n, c in cores.items())
          + f"; total {sum(cores.values()):.2f} of {psutil.cpu_count()}")
    print(f"worst minute p99: {worst_p99:.2f} ms (goal <= {P99_GOAL_MS} ms: {'met' if worst_p99 <= P99_GOAL_MS else 'NOT met'})")
    worst_fresh = max(m.worst_freshness_ms for m in minutes)
    fresh = worst_fresh <= budget_ms  # a NaN (no sample) is not fresh
    print(f"worst freshness of {FRESHNESS_VIEW}: {worst_fresh:,.0f} ms (goal <= its budget, {budget_ms:,} ms: "
          f"{'met' if fresh else 'NOT met'}); stream at nice {args.stream_nice}; the job's rows on the features topic, "
          f"before the writer: worst {max(m.worst_job_freshness_ms for m in minutes):,.0f} ms")
    flat = True
    if len(minutes) >= 3:
        base, last = minutes[1], minutes[-1]
        for name in (n for n in base.rss_mb if n not in LOAD_PROCESSES):
            growth = last.rss_mb[name] / base.rss_mb[name] - 1 if base.rss_mb[name] else float("nan")
            ok = growth <= args.memory_slack
            flat &= ok
            print(f"memory {name:<9} {base.rss_mb[name]:>8,.0f} MB at minute 2 (peak) -> {last.rss_mb[name]:>8,.0f} MB "
                  f"at minute {last.index} ({growth:+.1%}{'' if ok else ', NOT flat'})")
    heaps = [m.heap for m in minutes if m.heap is not None]
    if len(heaps) >= 2:  # not a goal of its own: the old generation holds garbage until a full collection
        print(f"flink heap: old generation {heaps[0].old_used_mb:,.0f} -> {heaps[-1].old_used_mb:,.0f} MB of "
              f"{heaps[-1].old_capacity_mb:,.0f}; {heaps[-1].full_gcs - heaps[0].full_gcs} full collections, "
              f"{heaps[-1].gc_s - heaps[0].gc_s:.1f} s in collections from minute {minutes[0].index} to {minutes[-1].index}")
    return 0 if errors == 0 and worst_p99 <= P99_GOAL_MS and flat and fresh else 1


def shortest_window_ms(settings) -> int:  # type: ignore[no-untyped-def]
    from tessera.definitions import load_definitions

    return min(length for view in load_definitions(settings.feature_repo).streaming_views()
               for agg in view.aggregations for length in agg.window_lengths_ms())


def freshness_budget_ms(settings) -> int:  # type: ignore[no-untyped-def]
    from tessera.definitions import load_definitions

    budget = load_definitions(settings.feature_repo).views[FRESHNESS_VIEW].freshness_budget_ms
    assert budget is not None, f"{FRESHNESS_VIEW} has no freshness budget"
    return budget


if __name__ == "__main__":
    sys.exit(main())
