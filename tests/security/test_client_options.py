"""Kafka SASL/TLS options reach every Kafka client, and Redis auth/TLS every Redis client.

* librdkafka clients (confluent-kafka) get `[kafka] client_options` as they are;
* the Flink job's Java clients get them translated (tessera/kafka_clients.py), safely quoted in
  the Flink SQL that declares the source, and set on every Kafka sink;
* a scan of the code finds no Kafka or Redis client built without those settings.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tessera.config import KafkaSettings, Settings
from tessera.kafka_clients import client_config, java_client_properties, sql_with_clause

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = 'pa"ss\\wo\'rd,=1'
SASL_SSL = {"security.protocol": "sasl_ssl", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "svc",
            "sasl.password": PASSWORD, "ssl.ca.location": "/etc/kafka/ca.pem",
            "ssl.endpoint.identification.algorithm": "none", "client.id": "tessera"}


def settings_with(options: dict[str, str], **kafka: Any) -> Settings:
    return Settings(kafka=KafkaSettings(bootstrap_servers="broker-1:9093,broker-2:9093", client_options=options,
                                        **kafka))


# --- the Java client (the Flink job) ------------------------------------------------------------

def test_sasl_ssl_is_translated_for_the_java_client() -> None:
    props = java_client_properties(settings_with(SASL_SSL).kafka)
    assert props["security.protocol"] == "SASL_SSL"
    assert props["sasl.mechanism"] == "SCRAM-SHA-512"
    assert props["sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                         'username="svc" password="pa\\"ss\\\\wo\'rd,=1";')
    assert props["ssl.truststore.type"] == "PEM" and props["ssl.truststore.location"] == "/etc/kafka/ca.pem"
    assert props["ssl.endpoint.identification.algorithm"] == ""
    assert props["client.id"] == "tessera"  # same name in both clients: passed on
    for librdkafka_only in ("sasl.username", "sasl.password", "sasl.mechanisms", "ssl.ca.location"):
        assert librdkafka_only not in props


def test_plain_is_the_default_mechanism_and_java_options_win() -> None:
    kafka = settings_with({"security.protocol": "SASL_PLAINTEXT", "sasl.username": "u", "sasl.password": "p"},
                          java_client_options={"sasl.login.refresh.window.factor": "0.9",
                                               "security.protocol": "SASL_SSL"}).kafka
    props = java_client_properties(kafka)
    assert props["sasl.jaas.config"].startswith("org.apache.kafka.common.security.plain.PlainLoginModule required ")
    assert props["security.protocol"] == "SASL_SSL" and props["sasl.login.refresh.window.factor"] == "0.9"


def test_client_certificate_travels_inline(tmp_path: Path) -> None:
    cert = tmp_path / "client.crt"
    key = tmp_path / "client.key"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    props = java_client_properties(settings_with({
        "security.protocol": "SSL", "ssl.certificate.location": str(cert), "ssl.key.location": str(key),
        "ssl.key.password": "kp"}).kafka)
    assert props["ssl.keystore.type"] == "PEM"
    assert props["ssl.keystore.certificate.chain"] == cert.read_text()
    assert props["ssl.keystore.key"] == key.read_text()
    assert props["ssl.key.password"] == "kp"


def test_unusable_key_settings_fail_clearly_without_the_key(tmp_path: Path) -> None:
    key = tmp_path / "rsa.key"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END RSA PRIVATE KEY-----\n")
    cert = tmp_path / "c.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="PKCS#8") as err:
        java_client_properties(settings_with({"ssl.certificate.location": str(cert),
                                              "ssl.key.location": str(key)}).kafka)
    assert "SECRETKEYMATERIAL" not in str(err.value)
    with pytest.raises(ValueError, match="both"):
        java_client_properties(settings_with({"ssl.key.location": str(key)}).kafka)
    with pytest.raises(ValueError, match="cannot read"):
        java_client_properties(settings_with({"ssl.certificate.location": str(tmp_path / "nope"),
                                              "ssl.key.location": str(key)}).kafka)
    with pytest.raises(ValueError, match="GSSAPI"):
        java_client_properties(settings_with({"sasl.mechanism": "GSSAPI", "sasl.username": "u"}).kafka)


def test_flink_sql_options_survive_flinks_parser() -> None:
    """The job declares its source in Flink SQL; a quote in a password must not end the string."""
    flink_python = ROOT / ".venv-flink" / "bin" / "python"
    if not flink_python.exists():
        pytest.skip("no .venv-flink (scripts/setup.sh)")
    props = {f"properties.{k}": v for k, v in java_client_properties(settings_with(SASL_SSL).kafka).items()}
    script = (
        "import json, sys\n"
        "from pyflink.table import EnvironmentSettings, TableEnvironment\n"
        "from tessera.kafka_clients import sql_with_clause\n"
        "options = json.loads(sys.stdin.read())\n"
        "t = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())\n"
        "t.execute_sql(f\"CREATE TEMPORARY TABLE x (a INT) WITH ({sql_with_clause(options)})\")\n"
        "table = t.get_current_catalog(), t.get_current_database()\n"
        "from pyflink.java_gateway import get_gateway\n"
        "catalog = t._j_tenv.getCatalogManager()\n"
        "path = get_gateway().jvm.org.apache.flink.table.catalog.ObjectIdentifier.of(table[0], table[1], 'x')\n"
        "got = dict(catalog.getTable(path).get().getResolvedTable().getOptions())\n"
        "print('OPTIONS=' + json.dumps(got))\n")
    done = subprocess.run(["nice", str(flink_python), "-c", script],
                          input=json.dumps({"connector": "datagen", **props}), capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = next((l for l in done.stdout.splitlines() if l.startswith("OPTIONS=")), None)
    assert line is not None, done.stderr[-3000:]
    got = json.loads(line.removeprefix("OPTIONS="))
    assert got == {"connector": "datagen", **props}


def test_sql_with_clause_quotes() -> None:
    assert sql_with_clause({"a'b": "it's"}) == "'a''b' = 'it''s'"


# --- librdkafka clients ---------------------------------------------------------------------------

class Captured:
    """Stands in for confluent-kafka's clients: records the configuration, answers nothing."""

    configs: list[dict[str, Any]] = []

    def __init__(self, config: dict[str, Any], **_: Any) -> None:
        Captured.configs.append(dict(config))

    def list_topics(self, *_: Any, **__: Any) -> Any:
        return type("Metadata", (), {"topics": {}})()

    def subscribe(self, *_: Any) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture()
def captured(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import streaming.control
    import streaming.kafka_batches
    import tessera.kafka_io
    import tessera.services.kafka_broker

    Captured.configs = []
    for module in (tessera.kafka_io, streaming.kafka_batches, streaming.control, tessera.services.kafka_broker):
        for name in ("Producer", "Consumer", "AdminClient"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, Captured)
    monkeypatch.setattr("confluent_kafka.Consumer", Captured)  # imported inside functions
    return Captured.configs


def test_every_librdkafka_client_gets_the_options(captured: list[dict[str, Any]]) -> None:
    from streaming import control, kafka_batches
    from tessera import kafka_io
    from tessera.services.kafka_broker import kafka_admin

    settings = settings_with(SASL_SSL)
    kafka_io.make_producer(settings)
    kafka_io.topic_message_counts(settings, ["ad_events"])
    kafka_batches.group_consumer(settings, "g", "t")  # the online writer's and the archiver's
    control.lags(settings)
    kafka_admin(settings)
    kafka_admin(settings, quiet=True)
    assert len(captured) >= 8
    for config in captured:
        assert config["bootstrap.servers"] == "broker-1:9093,broker-2:9093"
        assert {k: config[k] for k in SASL_SSL} == SASL_SSL, config


def test_client_config_lets_the_operator_win() -> None:
    config = client_config(settings_with({"linger.ms": "50"}), **{"linger.ms": 5, "group.id": "g"})
    assert config == {"bootstrap.servers": "broker-1:9093,broker-2:9093", "linger.ms": "50", "group.id": "g"}


# --- nobody builds a client around the settings ---------------------------------------------------

SOURCE_DIRS = ("tessera", "streaming", "serving", "batch", "bench")


def _calls(names: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(file, line, source of the enclosing function) of every call to one of `names`."""
    found = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text()
            tree = ast.parse(source)
            scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in names:
                    continue
                around = [s for s in scopes if s.lineno <= node.lineno <= (s.end_lineno or s.lineno)]
                scope = min(around, key=lambda s: (s.end_lineno or 0) - s.lineno, default=node)
                found.append((str(path.relative_to(ROOT)), node.lineno, ast.get_source_segment(source, scope) or ""))
    return found


def test_no_kafka_client_without_the_client_options() -> None:
    calls = _calls(("Producer", "Consumer", "AdminClient"))
    assert calls, "the scan found no Kafka client at all"
    bare = [(path, line) for path, line, text in calls
            if "client_options" not in text and "client_config(" not in text]
    assert not bare, f"Kafka clients built without [kafka] client_options: {bare}"


def test_no_redis_client_without_the_redis_settings() -> None:
    calls = _calls(("Redis", "StrictRedis", "ConnectionPool", "from_url", "RedisCluster"))
    bare = [(path, line) for path, line, text in calls if "client_kwargs()" not in text]
    assert not bare, f"Redis clients built without RedisSettings.client_kwargs(): {bare}"


def test_the_flink_job_sets_the_java_properties_on_source_and_sinks() -> None:
    source = (ROOT / "streaming" / "job.py").read_text()
    assert source.count("java_client_properties(k)") >= 2, "the Kafka source and the sinks both need them"
    assert "sql_with_clause(" in source


# --- `tessera config` shows no secret -------------------------------------------------------------

def test_tessera_config_stars_every_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tessera.cli import main

    monkeypatch.setenv("TESSERA_KAFKA__CLIENT_OPTIONS", json.dumps(SASL_SSL | {"ssl.key.password": "kp-secret"}))
    monkeypatch.setenv("TESSERA_KAFKA__JAVA_CLIENT_OPTIONS", json.dumps({"sasl.jaas.config": "jaas-secret"}))
    monkeypatch.setenv("TESSERA_REDIS__PASSWORD", "redis-secret")
    monkeypatch.setenv("TESSERA_SERVING__API_KEY", "api-secret")
    assert main(["--config", str(ROOT / "tessera.toml"), "config"]) == 0
    shown = capsys.readouterr().out
    for secret in (PASSWORD, "kp-secret", "jaas-secret", "redis-secret", "api-secret"):
        assert secret not in shown and json.dumps(secret)[1:-1] not in shown
    config = json.loads(shown)
    assert config["kafka"]["client_options"]["security.protocol"] == "sasl_ssl"  # the rest stays readable
    assert config["kafka"]["client_options"]["sasl.password"] == "**********"
