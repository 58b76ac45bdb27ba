"""`tessera stream start|stop|status`: the Flink job (in .venv-flink), the online writer and the
archiver (here) as background processes, with pid files and logs beside the other services."""
from __future__ import annotations

import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streaming.consumer_groups import Lag
from tessera.config import Settings
from tessera.services.process import ManagedProcess, ServiceError


def _process(settings: Settings, name: str) -> ManagedProcess:
    return ManagedProcess(name, settings.state_dir / "run", settings.state_dir / "logs" / f"{name}.log")


PROCESSES = ("stream-job", "stream-sink", "stream-archive")
NAME_WIDTH = max(map(len, PROCESSES))  # the column their names take in what start, stop and status print


def processes(settings: Settings) -> dict[str, ManagedProcess]:
    return {name: _process(settings, name) for name in PROCESSES}


def start(settings: Settings, from_checkpoint: str = "auto", wait_s: float = 0) -> list[str]:
    from tessera.definitions import load_definitions

    load_definitions(settings.feature_repo)  # a broken views.py fails here, named, not in the job's log
    flink_python = settings.resolve(settings.flink.python)
    if not flink_python.exists():
        raise ServiceError(f"the Flink environment {flink_python} is missing: run scripts/setup.sh")
    env = {"TESSERA_CONFIG": os.environ.get("TESSERA_CONFIG", str(settings.root / "tessera.toml"))}
    said = []
    procs = processes(settings)
    commands = {  # name: (command, its nice, the setting that gives it)
        "stream-job": ([str(flink_python), "-m", "streaming.job", "--from-checkpoint", from_checkpoint],
                       settings.flink.nice, "[flink] nice"),
        "stream-sink": ([sys.executable, "-m", "streaming.sink"], settings.sink.nice, "[sink] nice"),
        "stream-archive": ([sys.executable, "-m", "streaming.archive"], settings.sink.archive_nice,
                           "[sink] archive_nice"),
    }
    ready = settings.state_dir / "run" / "stream-job.ready"  # written by the job's first operator
    if procs["stream-job"].pid() is None:
        ready.unlink(missing_ok=True)
    for name, (command, nice, nice_setting) in commands.items():
        proc = procs[name]
        if proc.pid() is not None:
            said.append(f"{name:<{NAME_WIDTH}} already running (pid {proc.pid()}), log {proc.log_file}")
            continue
        pid = proc.start(command, env=env, cwd=settings.root, nice=nice, nice_setting=nice_setting)
        said.append(f"{name:<{NAME_WIDTH}} started (pid {pid}{f', nice {nice}' if nice else ''}), log {proc.log_file}")
        if name == "stream-job":
            said.append(f"{'':<{NAME_WIDTH}} {_starting_point(settings, from_checkpoint)}")
    if wait_s > 0:
        deadline = time.monotonic() + wait_s
        while not ready.exists():
            if procs["stream-job"].pid() is None:
                raise ServiceError(f"the Flink job exited while starting; see {procs['stream-job'].log_file}")
            if time.monotonic() > deadline:
                raise ServiceError(f"the Flink job processed no message within {wait_s:.0f} s (is anything "
                                   f"producing to {settings.kafka.topic}?); "
                                   f"see {procs['stream-job'].log_file}")
            time.sleep(0.5)
        said.append(f"{'stream-job':<{NAME_WIDTH}} processing ad_events")
    return said


def _starting_point(settings: Settings, from_checkpoint: str) -> str:
    from streaming.checkpoints import restore_point

    restore = restore_point(settings, from_checkpoint)
    if restore is not None:
        return f"restoring from {restore}"
    return (f"no checkpoint of the {settings.flink.engine} engine and these streaming views to restore (the first "
            f"start, or the first since the engine or a view's definition changed): empty state, so it replays "
            f"{settings.kafka.topic} from its earliest offset")


def stop(settings: Settings, kill: bool = False) -> list[str]:
    said = []
    for name, proc in processes(settings).items():
        stopped = proc.stop(timeout_s=0.5 if kill else 30)
        said.append(f"{name:<{NAME_WIDTH}} {'stopped' if stopped else 'not running'}")
    return said


def lags(settings: Settings, timeout_s: float = 10.0) -> list[Lag]:
    """Committed offset vs end offset for the job, the online writer and the archiver; each Kafka
    call waits at most `timeout_s` (the feature API's /metrics passes a short one)."""
    from streaming.consumer_groups import ARCHIVE as ARCHIVE_GROUP, JOB as GROUP_ID, SINK as SINK_GROUP

    k = settings.kafka
    out = []
    for group, topic in ((GROUP_ID, k.topic), (SINK_GROUP, k.features_topic), (ARCHIVE_GROUP, k.topic)):
        consumer = Consumer({"bootstrap.servers": k.bootstrap_servers, "group.id": group,
                             "enable.auto.commit": False, **k.client_options})
        try:
            meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            parts = [TopicPartition(topic, p) for p in meta.partitions]
            try:
                committed = consumer.committed(parts, timeout=timeout_s)
            except KafkaException as err:  # e.g. the group coordinator is still loading
                print(f"{group}: committed offsets not available yet ({err.args[0].str()})", file=sys.stderr)
                continue
            total_committed = total_end = 0
            for tp in committed:
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout_s)
                total_end += high
                total_committed += max(tp.offset, 0)
            out.append(Lag(group, topic, total_committed, total_end))
        finally:
            consumer.close()
    return out
