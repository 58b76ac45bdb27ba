"""`tessera`: one command for the local stack and the platform's jobs. See `tessera --help`."""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from tessera.config import Settings, load_settings
from tessera.definitions import DefinitionError
from tessera.windows import DAY_MS

Handler = Callable[[argparse.Namespace, Settings], int]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parse_start(text: str) -> int:
    """'now', an ISO date or datetime (UTC unless it says otherwise) -> epoch ms."""
    if text == "now":
        return int(time.time() * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--start {text!r} is not 'now' or an ISO date/time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


# --- services -----------------------------------------------------------------------------------

def cmd_services(args: argparse.Namespace, settings: Settings) -> int:
    from tessera.services import stack
    from tessera.services.process import ServiceError

    try:
        if args.action == "up":
            stack.up(settings)
        elif args.action == "down":
            stack.down(settings)
    except ServiceError as err:
        _log(f"error: {err}")
        return 1
    rows = stack.status(settings)
    print(f"{'service':<8} {'state':<6} {'address':<22} process")
    for name, state, address, where in rows:
        print(f"{name:<8} {state:<6} {address:<22} {where}")
    print(f"state, logs and pid files: {settings.state_dir}")
    if args.action == "status":
        return 0 if all(r[1] == "up" for r in rows) else 3
    return 0


# --- feast --------------------------------------------------------------------------------------

def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    from feast.repo_operations import apply_total

    from tessera.definitions import load_definitions
    from tessera.feast_objects import repo_config

    definitions = load_definitions(settings.feature_repo)  # fail here, naming the file, not in Feast
    for view in definitions.views:
        (settings.offline_store_dir / view).mkdir(parents=True, exist_ok=True)
    settings.registry_path.parent.mkdir(parents=True, exist_ok=True)
    sys.path.append(str(settings.feature_repo))  # Feast imports the repo's files as top-level modules
    apply_total(repo_config(settings), settings.feature_repo, skip_source_validation=True)
    _log(f"registered {len(definitions.views)} feature views in {settings.registry_path}")
    return 0


# --- generate -----------------------------------------------------------------------------------

def _generator_config(args: argparse.Namespace, settings: Settings):
    from tessera.definitions import load_definitions
    from tessera.generator import GeneratorConfig

    views = load_definitions(settings.feature_repo).streaming_views()
    # Out-of-order events stay within the tightest lateness, so they are on time for every view.
    lateness = min(v.allowed_lateness_ms for v in views) if views else 10_000
    return GeneratorConfig(seed=args.seed, users=args.users, campaigns=args.campaigns,
                           duplicates=args.duplicates, out_of_order=args.out_of_order, late=args.late,
                           invalid=args.invalid, allowed_lateness_ms=lateness)


class _Progress:
    def __init__(self, total: int, unit: str = "messages", every_s: float = 2.0) -> None:
        self.total, self.unit, self.every_s = total, unit, every_s
        self.started = self.last = time.monotonic()
        self.reported = -1

    def __call__(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if (not force and now - self.last < self.every_s) or (force and done == self.reported):
            return
        self.last, self.reported = now, done
        rate = done / max(now - self.started, 1e-9)
        _log(f"  {done:,}/{self.total:,} {self.unit} ({100 * done / max(self.total, 1):.0f}%), {rate:,.0f}/s")


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from tessera.generator import EventGenerator

    config = _generator_config(args, settings)
    if args.target == "kafka":
        from tessera.kafka_io import RatePacer, produce

        count = int(args.rate * args.duration)
        start = _parse_start(args.start)
        generator = EventGenerator(config, start, args.rate)
        progress = _Progress(count)
        _log(f"producing {count:,} messages to {settings.kafka.topic} at {settings.kafka.bootstrap_servers}, "
             f"{'paced at' if args.realtime else 'as fast as possible, event times spaced for'} {args.rate:,.0f}/s")
        report = produce(settings, generator.batches(count, batch_size=min(10_000, max(1, int(args.rate)))),
                         pace=RatePacer(args.rate) if args.realtime else None,
                         progress=lambda r: progress(r.sent))
        progress(report.sent, force=True)
        _log(f"delivered {report.delivered:,}, failed {report.failed:,}")
        for error in report.errors:
            _log(f"  delivery error: {error}")
        return 0 if report.failed == 0 else 1

    from tessera.raw_history import write_events

    start = _parse_start(args.start)
    count = int(args.rate * args.days * DAY_MS / 1000)
    generator = EventGenerator(config, start, args.rate)
    root = settings.raw_history_dir
    progress = _Progress(count, unit="events")
    writer = f"gen-{args.seed}-{start}"
    done = 0
    per_date: dict[str, int] = {}
    _log(f"writing {count:,} events ({args.days} day(s) from {args.start} at {args.rate}/s) to {root}")
    for sequence, batch in enumerate(generator.batches(count, batch_size=200_000)):
        # The raw history keeps what a consumer accepted: valid events, duplicates and late ones.
        events = [m.event for m in batch if m.event is not None]
        for date, n in write_events(root, events, writer, sequence).items():
            per_date[date] = per_date.get(date, 0) + n
        done += len(batch)
        progress(done)
    progress(done, force=True)
    for date in sorted(per_date):
        _log(f"  date={date}: {per_date[date]:,} events")
    return 0


# --- batch --------------------------------------------------------------------------------------

def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date

    from batch.backfill import BackfillError, backfill
    from batch.spark_session import spark_session
    from tessera.definitions import load_definitions

    definitions = load_definitions(settings.feature_repo)
    try:
        start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    except ValueError as err:
        _log(f"error: --start/--end must be ISO dates (YYYY-MM-DD): {err}")
        return 2
    began = time.monotonic()
    spark = spark_session(settings, "tessera-backfill")
    try:
        backfill(spark, settings, definitions, start, end, views=args.views.split(",") if args.views else None,
                 say=_log)
    except BackfillError as err:
        _log(f"error: {err}")
        return 1
    finally:
        spark.stop()
    _log(f"backfill done in {time.monotonic() - began:.1f} s")
    return 0


def cmd_materialize(args: argparse.Namespace, settings: Settings) -> int:
    from batch.materialize_cli import run

    return run(args, settings, _log)


def cmd_training_set(args: argparse.Namespace, settings: Settings) -> int:
    import pandas as pd

    from batch.training_set import TrainingSetError, build_training_set, write_training_set
    from tessera.definitions import load_definitions

    began = time.monotonic()
    try:
        rows = pd.read_parquet(args.entities)
    except (OSError, ValueError) as err:
        _log(f"error: cannot read --entities {args.entities}: {err}")
        return 2
    refs = [r.strip() for r in args.features.split(",") if r.strip()]
    try:
        frame = build_training_set(settings, load_definitions(settings.feature_repo), rows, refs,
                                   timestamp_column=args.timestamp_column)
    except TrainingSetError as err:
        _log(f"error: {err}")
        return 2
    write_training_set(frame, args.out)
    _log(f"wrote {len(frame):,} rows x {len(frame.columns)} columns to {args.out} "
         f"in {time.monotonic() - began:.1f} s")
    return 0


def _fraction(text: str) -> float:
    """'0.1', '10%' -> 0.1"""
    text = text.strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction (0.1) or a percentage (10%)") from None


def cmd_parity(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from tessera.definitions import load_definitions
    from tessera.parity import ParityError, ParityOptions, report_path, run_parity
    from tessera.parity_render import render

    options = ParityOptions(views=args.views.split(",") if args.views else None, fraction=args.sample,
                            max_keys=args.max_keys, threshold=args.threshold, worst=args.worst)
    try:
        report = run_parity(settings, load_definitions(settings.feature_repo), options, say=_log)
    except ParityError as err:
        _log(f"error: {err}")
        return 2
    if args.json == "-":
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
    _log(f"report: {args.json if args.json not in (None, '-') else report_path(settings)}")
    return 0 if report["passed"] else 1


def cmd_drift(args: argparse.Namespace, settings: Settings) -> int:
    from tessera.drift_report import run

    return run(args, settings, say=_log)


# --- serve --------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from serving.server import serve

    return serve(settings, config_file=args.config, host=args.host, port=args.port, workers=args.workers,
                 log_level=args.log_level, access_log=args.access_log)


# --- streaming ----------------------------------------------------------------------------------

def cmd_stream(args: argparse.Namespace, settings: Settings) -> int:
    from streaming import control
    from tessera.services.process import ServiceError

    try:
        if args.action == "start":
            for line in control.start(settings, from_checkpoint=args.from_checkpoint, wait_s=args.wait):
                print(line)
        elif args.action == "stop":
            for line in control.stop(settings, kill=args.kill):
                print(line)
    except ServiceError as err:
        _log(f"error: {err}")
        return 1
    for name, proc in control.processes(settings).items():
        pid = proc.pid()
        print(f"{name:<{control.NAME_WIDTH}} {'running, pid ' + str(pid) if pid else 'not running'}")
    from confluent_kafka import KafkaException

    try:
        for lag in control.lags(settings):
            print(f"{lag.group:<16} {lag.topic:<18} committed {lag.committed:,} of {lag.end:,} (behind {lag.behind:,})")
    except KafkaException as err:  # the processes' state above stands; only the lag is unknown
        _log(f"consumer lag unknown: Kafka at {settings.kafka.bootstrap_servers} does not answer ({err.args[0].str()})")
    return 0


# --- inspect ------------------------------------------------------------------------------------

def _proto_value(value: object) -> str:
    """A Feast ValueProto as text: null, an int, or a float to 6 significant digits."""
    kind = value.WhichOneof("val")  # type: ignore[attr-defined]
    if kind is None:
        return "None"
    v = getattr(value, kind)
    return f"{v:.6g}" if kind == "double_val" else str(v)


def cmd_features(args: argparse.Namespace, settings: Settings) -> int:
    """Print an entity's online feature vector (read through Feast's Redis online store)."""
    from datetime import datetime, timezone

    from feast import FeatureStore
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from tessera.definitions import load_definitions
    from tessera.feast_objects import repo_config

    definitions = load_definitions(settings.feature_repo)
    views = definitions.views_of(args.entity)
    if not views:
        _log(f"error: unknown entity {args.entity!r}; known: {', '.join(definitions.entities)}")
        return 2
    config = repo_config(settings)
    store = FeatureStore(repo_path=str(settings.feature_repo), config=config)
    online = RedisOnlineStore()
    rounds = 0
    while True:
        now = datetime.now(tz=timezone.utc)
        print(f"{args.entity} {args.id} at {now:%H:%M:%S}")
        for view in views:
            key = EntityKey(join_keys=[view.entity.join_key], entity_values=[Value(int64_val=args.id)])
            ts, values = online.online_read(config, store.get_feature_view(view.name), [key])[0]
            if not values or ts is None or ts.timestamp() == 0:  # Feast's answer for a key it has not seen
                print(f"  {view.name}: missing")
                continue
            age = (now - ts).total_seconds()
            shown = ", ".join(f"{name}={_proto_value(v)}" for name, v in values.items())
            print(f"  {view.name} as_of {ts:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" (age {age:,.1f} s): {shown}")
        rounds += 1
        if not args.watch or (args.rounds and rounds >= args.rounds):
            return 0
        time.sleep(args.watch)



def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from tessera.kafka_io import topic_message_counts

    topics = [settings.kafka.topic, settings.kafka.dlq_topic]
    for topic, count in topic_message_counts(settings, topics).items():
        print(f"{topic:<20} {'(missing)' if count < 0 else f'{count:,} messages'}")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    print(settings.redacted_json())  # no secrets on screen: passwords, SASL and key options starred
    return 0


# --- parser -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tessera",
        description="Tessera: Kafka events -> Flink aggregates -> Spark backfill -> Feast/Redis -> feature API.",
        epilog="Configuration: tessera.toml (or --config / TESSERA_CONFIG) with TESSERA_<SECTION>__<KEY> "
               "environment overrides, e.g. TESSERA_REDIS__PORT=6380.",
    )
    parser.add_argument("--config", type=Path, help="config file (default: nearest tessera.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("services", help="start, stop or show the local Kafka broker and Redis",
                       description="Real Kafka (KRaft) and Redis on loopback; remote addresses are only checked.")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(handler=cmd_services)

    p = sub.add_parser("apply", help="register the feature repository in Feast (feast apply, with tessera's config)")
    p.set_defaults(handler=cmd_apply)

    p = sub.add_parser("generate", help="synthetic ad events to Kafka or to the raw Parquet history",
                       description="Deterministic for a seed: Zipf-skewed users and campaigns, realistic CTR/CVR, "
                                   "optional duplicate, out-of-order, late and invalid messages.")
    p.add_argument("target", choices=["kafka", "history"])
    p.add_argument("--rate", type=float, default=1000.0, help="events per second of event time (default 1000)")
    p.add_argument("--duration", type=float, default=10.0, help="kafka: seconds of events (default 10)")
    p.add_argument("--days", type=float, default=1.0, help="history: days of events (default 1)")
    p.add_argument("--start", default=None, help="first event time: 'now' (kafka default) or ISO date "
                                                 "(history default: midnight UTC, --days before today)")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=True,
                   help="kafka: pace sends to wall-clock time (default) or send as fast as possible")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--campaigns", type=int, default=500)
    p.add_argument("--duplicates", type=float, default=0.0, help="fraction re-sent with the same event_id")
    p.add_argument("--out-of-order", type=float, default=0.0, help="fraction behind the stream, within lateness")
    p.add_argument("--late", type=float, default=0.0, help="fraction later than the allowed lateness")
    p.add_argument("--invalid", type=float, default=0.0, help="fraction of invalid messages (kafka only)")
    p.set_defaults(handler=cmd_generate)

    p = sub.add_parser("training-set", help="a point-in-time-correct training set from the offline store",
                       description="For each row (entity id, timestamp[, label...]) the value of every feature as "
                                   "of that timestamp; input order and columns are kept; features are named "
                                   "view__feature.")
    p.add_argument("--entities", type=Path, required=True, help="Parquet with the join key(s) and a timestamp")
    p.add_argument("--features", required=True, help="comma-separated view:feature or view (all its features)")
    p.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    p.add_argument("--timestamp-column", help="default: 'timestamp' or 'event_timestamp'")
    p.set_defaults(handler=cmd_training_set)

    p = sub.add_parser("stream", help="start, stop or show the Flink job, the online-store writer and the archiver",
                       description="The PyFlink job runs on a local mini-cluster by default (remote: [flink] conf "
                                   "execution.target=remote, rest.address, rest.port); the sink writes its rows "
                                   "into Feast's Redis online store and the offline store; the archiver writes every "
                                   "valid event into the raw history and publishes the stream clock. A restarted job resumes "
                                   "from its newest retained checkpoint of the same streaming views; without one (a first start, a switch "
                                   "of [flink] engine, or a changed streaming view in feature_repo/) it "
                                   "replays the topic from its earliest offset.")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--from-checkpoint", default="auto",
                   help="start: auto (the engine's newest checkpoint of these views, default), none (empty state: replays the topic "
                        "from its earliest offset), or a checkpoint path")
    p.add_argument("--kill", action="store_true", help="stop: kill at once instead of a graceful stop")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                   help="start: wait until the job has processed its first message (local mini-cluster; "
                        "it deploys its Python operators on the first record)")
    p.set_defaults(handler=cmd_stream)

    p = sub.add_parser("backfill", help="rebuild the offline store from the raw history with Spark",
                       description="Writes value(k, t) change points for every day in [--start, --end]; "
                                   "re-running a range replaces it. Spark master from [spark] in tessera.toml.")
    p.add_argument("--start", required=True, help="first UTC date, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="last UTC date, YYYY-MM-DD (inclusive)")
    p.add_argument("--views", help="comma-separated views (default: all)")
    p.set_defaults(handler=cmd_backfill)

    p = sub.add_parser("materialize", help="the offline store into Feast's Redis online store, fast",
                       description="Per key the newest offline row with event_timestamp in [--start, --end] "
                                   "(as `feast materialize`), in Feast's Redis layout; never replaces a newer "
                                   "online row. --incremental continues from the last run (tessera's or Feast's).")
    from batch.materialize_cli import add_arguments as materialize_arguments
    materialize_arguments(p)
    p.set_defaults(handler=cmd_materialize)

    p = sub.add_parser("features", help="print an entity's online feature vector, optionally every few seconds")
    p.add_argument("entity", help="user or campaign")
    p.add_argument("id", type=int)
    p.add_argument("--watch", type=float, default=0, help="repeat every this many seconds")
    p.add_argument("--rounds", type=int, default=0, help="with --watch: stop after this many (default: forever)")
    p.set_defaults(handler=cmd_features)

    p = sub.add_parser("topics", help="how many messages ad_events and its dead-letter topic hold")
    p.set_defaults(handler=cmd_topics)

    p = sub.add_parser("serve", help="run the feature API (FastAPI on uvicorn, one worker per core)",
                       description="GET /features/{entity}/{id}, POST /features/{entity}, /health, /metrics, /docs. "
                                   "Defaults from [serving] in tessera.toml; the registry is reloaded when "
                                   "`tessera apply` changes it. API key: TESSERA_API_KEY.")
    p.add_argument("--host", help="address to bind (default: [serving] host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: [serving] port, 8000)")
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--access-log", action="store_true", help="log every request (off: it costs throughput)")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser(
        "parity", help="check that online rows equal the Spark recomputation from the raw history",
        description="Sample keys by hash, read their online rows (as_of and values) from Redis, recompute "
                    "value(k, as_of) with the Spark backfill's plan from the raw event history, and report per "
                    "view and feature: matched, mismatched, online-only null, offline-only null, both null, "
                    "SMAPE and the worst keys, each difference explained (late event, not settled yet, writer "
                    "lag) where the data says why. Only settled rows (as_of older than the view's allowed "
                    "lateness behind the stream clock) count. Exit status: 0 at or above the threshold, 1 "
                    "below it (or nothing to compare), 2 on a usage error. The report is also written to "
                    "<state_dir>/parity/last.json, where the API's /status page reads it.")
    p.add_argument("--views", help="comma-separated views (default: all)")
    p.add_argument("--sample", type=_fraction, default=0.1, metavar="FRACTION",
                   help="fraction of keys to check, chosen by key hash (default 0.1; '25%%' works too)")
    p.add_argument("--max-keys", type=int, default=5_000, help="at most this many keys per view (default 5000)")
    p.add_argument("--threshold", type=_fraction, default=1.0,
                   help="minimum match rate of settled values (default 1.0, i.e. 100%%)")
    p.add_argument("--worst", type=int, default=10, help="differences to list per view (default 10)")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH ('-': JSON on stdout "
                                                  "instead of the table)")
    p.set_defaults(handler=cmd_parity)

    from tessera.drift_report import add_arguments as add_drift_arguments

    p = sub.add_parser(
        "drift", help="population stability index and KS per feature: online values against the offline store",
        description="Compare each feature's distribution among active entities sampled from Redis (SCAN) with "
                    "its distribution over a reference window of the offline store (each key's value at 24 "
                    "evenly spaced instants). Reports PSI (null is a bin of its own) and the Kolmogorov-Smirnov "
                    "statistic, and flags features whose PSI is above --threshold. Exit status: 0 nothing "
                    "flagged, 1 a feature drifted, 2 nothing to compare or a usage error. The report is also "
                    "written to <state_dir>/drift/last.json, where the API's /status page reads it.")
    add_drift_arguments(p)
    p.set_defaults(handler=cmd_drift)

    p = sub.add_parser("config", help="print the effective configuration")
    p.set_defaults(handler=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "target", None) and args.start is None:
        today = int(time.time() * 1000) // DAY_MS * DAY_MS
        args.start = "now" if args.target == "kafka" else \
            datetime.fromtimestamp((today - int(args.days) * DAY_MS) / 1000, tz=timezone.utc).date().isoformat()
    if args.config is None:
        return _run(args)
    # Feast imports feature_repo/feast_repo.py, which finds its config through TESSERA_CONFIG; set
    # for this command only, so a caller that runs main() in-process keeps its own environment.
    saved = os.environ.get("TESSERA_CONFIG")
    os.environ["TESSERA_CONFIG"] = str(args.config.resolve())
    try:
        return _run(args)
    finally:
        if saved is None:
            os.environ.pop("TESSERA_CONFIG", None)
        else:
            os.environ["TESSERA_CONFIG"] = saved


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except (ValueError, OSError) as err:  # TOML syntax, a mistyped setting (pydantic), a missing file
        where = args.config or os.environ.get("TESSERA_CONFIG") or "tessera.toml"
        _log(f"error: configuration {where}: {err}")
        return 2
    try:
        return args.handler(args, settings)
    except DefinitionError as err:  # feature_repo/views.py: the message names the file, line and field
        _log(f"error: {err}")
        return 2
    except KeyboardInterrupt:
        _log("interrupted")
        return 130

if __name__ == "__main__":
    sys.exit(main())
