"""A real Apache Kafka broker (KRaft, one combined broker+controller node) from Maven jars."""
from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from tessera.config import Settings, split_host_port
from tessera.services.process import ManagedProcess, ServiceError, first_error, port_in_use, port_open, tail

_LOG4J = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRefs = stdout
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


_QUIET = logging.getLogger("tessera.kafka.probe")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def kafka_admin(settings: Settings, quiet: bool = False) -> AdminClient:
    """An admin client; `quiet` drops librdkafka's connection-refused chatter while we poll."""
    extra = {"logger": _QUIET} if quiet else {}
    return AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, **settings.kafka.client_options,
                        **extra})


def _server_properties(settings: Settings, log_dir: Path) -> str:
    k = settings.kafka
    host, port = split_host_port(k.bootstrap_servers.split(",")[0])
    # Sized for 2 cores: one partition for internal topics, replication 1, no rebalance delay.
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{host}:{k.controller_port}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{k.controller_port}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={log_dir}",
        f"num.partitions={k.partitions}",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        "num.network.threads=2",
        "num.io.threads=2",
        "log.retention.hours=168",
        "",
    ])


class KafkaBroker:
    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "kafka"
        self.process = ManagedProcess("kafka", settings.state_dir / "run",
                                      settings.state_dir / "logs" / "kafka.log")

    @property
    def address(self) -> str:
        return self.settings.kafka.bootstrap_servers

    def reachable(self, timeout_s: float = 1.0) -> bool:
        if self.settings.kafka.is_local:
            host, port = split_host_port(self.settings.kafka.bootstrap_servers.split(",")[0])
            if not port_open(host, port):
                return False
        try:
            kafka_admin(self.settings, quiet=True).list_topics(timeout=timeout_s)
            return True
        except KafkaException:
            return False

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java:
            raise ServiceError("java not found: install OpenJDK 17 or set JAVA_HOME")
        return java

    def _classpath(self) -> str:
        jars = self.settings.jar_dir / "kafka"
        if not any(jars.glob("kafka_2.13-*.jar")):
            raise ServiceError(f"no Kafka jars in {jars}: run scripts/setup.sh to fetch them from Maven Central")
        return f"{jars}/*"

    def _prepare(self) -> tuple[Path, list[str]]:
        self.home.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        props.write_text(_server_properties(self.settings, self.home / "data"))
        log4j = self.home / "log4j2.properties"
        log4j.write_text(_LOG4J)
        jvm = [self._java(), f"-Xmx{self.settings.kafka.heap}", f"-Xms{self.settings.kafka.heap}",
               "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={log4j}", "-cp", self._classpath()]
        cluster_id_file = self.home / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
            if cluster_id.startswith("-"):
                cluster_id = "A" + cluster_id[1:]
            cluster_id_file.write_text(cluster_id)
        format_cmd = [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id_file.read_text().strip(),
                      "-c", str(props), "--ignore-formatted"]
        done = subprocess.run(format_cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ServiceError(f"formatting Kafka storage failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return props, jvm

    def start(self, timeout_s: float = 120.0) -> str:
        k = self.settings.kafka
        if not k.is_local:
            if not self.reachable(timeout_s=5):
                raise ServiceError(f"remote Kafka at {k.bootstrap_servers} does not answer a metadata request")
            self.ensure_topics()
            return f"remote, reachable at {k.bootstrap_servers}"
        if self.process.pid() is not None and self.reachable():
            self.ensure_topics()
            return f"already running at {self.address} (pid {self.process.pid()})"
        host, port = split_host_port(k.bootstrap_servers.split(",")[0])
        for taken in (port, k.controller_port):
            if port_in_use(host, taken):
                raise ServiceError(f"port {taken} is taken by something tessera did not start; stop it or set "
                                   f"TESSERA_KAFKA__BOOTSTRAP_SERVERS / TESSERA_KAFKA__CONTROLLER_PORT")
        props, jvm = self._prepare()
        # The heap touched at start (-Xms = -Xmx already): G1 otherwise takes its regions into RSS one
        # by one for minutes, and a leak could not be told from a heap warming up (stop 19's soak:
        # +15.6% in 8 minutes; what grew was anonymous memory, not mapped files).
        pid = self.process.start([*jvm, "-XX:+AlwaysPreTouch", "kafka.Kafka", str(props)], cwd=self.home,
                                 nice=self.settings.kafka.nice, nice_setting="[kafka] nice")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.pid() is None:
                cause = first_error(self.process.log_file) or "no ERROR line in its log"
                raise ServiceError(f"the Kafka broker exited during start-up: {cause}\n"
                                   f"log {self.process.log_file}:\n{tail(self.process.log_file)}")
            if self.reachable(timeout_s=1.0):
                self.ensure_topics()
                return f"started at {self.address} (pid {pid})"
            time.sleep(0.2)
        self.process.stop(timeout_s=5)
        raise ServiceError(f"Kafka did not answer within {timeout_s:.0f} s; log {self.process.log_file}:\n"
                           f"{tail(self.process.log_file)}")

    def topic_configs(self) -> dict[str, dict[str, str]]:
        """The configs our topics need, by topic."""
        k = self.settings.kafka
        # The job's records carry event time as their Kafka timestamp, and retention goes by it: a
        # replay of events older than retention.ms (7 days) would see its feature rows, late events
        # and dead letters deleted at the broker's next retention check, before anyone read them.
        # The broker's append time makes retention count from when the job wrote them.
        appended = {"message.timestamp.type": "LogAppendTime"}
        # Dead letters carry the original base64-encoded: a third larger than the largest message.
        return {k.dlq_topic: {**appended, "max.message.bytes": str(k.dlq_max_message_bytes)},
                k.late_topic: appended, k.features_topic: appended}

    def ensure_topics(self) -> None:
        k = self.settings.kafka
        admin = kafka_admin(self.settings)
        existing = admin.list_topics(timeout=10).topics
        # Feature rows go through one partition: the writer must apply a key's rows in order.
        partitions = {k.topic: k.partitions, k.dlq_topic: k.partitions, k.late_topic: 1, k.features_topic: 1}
        configs = self.topic_configs()
        wanted = [NewTopic(t, num_partitions=n, replication_factor=1, config=configs.get(t, {}))
                  for t, n in partitions.items() if t not in existing]
        self._apply_configs(admin, {t: c for t, c in configs.items() if t in existing})
        if not wanted:
            return
        for topic, future in admin.create_topics(wanted, operation_timeout=30).items():
            try:
                future.result(timeout=30)
            except KafkaException as err:
                if "TOPIC_ALREADY_EXISTS" not in str(err):
                    raise ServiceError(f"creating topic {topic} failed: {err}") from err

    def _apply_configs(self, admin: AdminClient, configs: dict[str, dict[str, str]]) -> None:
        """Topics made before a config was set (an older stack) get it too; where the cluster does
        not let us (no ALTER right), say so and carry on."""
        resources = [ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
                         ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
                         for name, value in entries.items()])
                     for topic, entries in configs.items()]
        if not resources:
            return
        try:
            for future in admin.incremental_alter_configs(resources).values():
                future.result(timeout=30)
        except KafkaException as err:
            logging.getLogger("tessera.kafka").warning(
                "could not set %s (%s): dead letters near the broker's size limit may not fit, and output "
                "records stamped with old event times may be deleted by retention early", configs, err)

    def stop(self) -> str:
        return "stopped" if self.process.stop(timeout_s=30) else "not running (nothing of ours to stop)"

    def status(self) -> tuple[str, str]:
        pid = self.process.pid()
        up = self.reachable(timeout_s=1.0) if (pid or not self.settings.kafka.is_local) else False
        where = "remote" if not self.settings.kafka.is_local else (f"pid {pid}" if pid else "-")
        return ("up" if up else "down"), where
