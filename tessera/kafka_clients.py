"""Kafka client configuration from [kafka], for both kinds of client the platform runs.

`[kafka] client_options` are librdkafka options (confluent-kafka: the generator, the sink, the
admin checks). The Flink job's Kafka connector is the Java client, which names the same security
settings differently, so `java_client_properties` translates them:

    librdkafka                                  Java client
    security.protocol                           security.protocol
    sasl.mechanism(s), sasl.username/password   sasl.mechanism, sasl.jaas.config (PLAIN, SCRAM-SHA-256/512)
    ssl.ca.location / ssl.ca.pem                ssl.truststore.type=PEM + ssl.truststore.location / .certificates
    ssl.certificate.location + ssl.key.location ssl.keystore.type=PEM + ssl.keystore.certificate.chain/.key
    ssl.key.password                            ssl.key.password
    ssl.endpoint.identification.algorithm       the same ("none" becomes "")

Any other option is passed on by the same name; `[kafka] java_client_options` are applied last,
for what has no librdkafka spelling (e.g. a Kerberos or OAuth `sasl.jaas.config`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tessera.config import KafkaSettings, Settings

_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
# librdkafka options consumed by the translation (not passed on under their own names).
_TRANSLATED = frozenset({
    "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password",
    "ssl.ca.location", "ssl.ca.pem", "ssl.certificate.location", "ssl.certificate.pem", "ssl.key.location",
    "ssl.key.pem", "ssl.key.password", "ssl.endpoint.identification.algorithm",
})


def client_config(settings: Settings, **defaults: Any) -> dict[str, Any]:
    """A confluent-kafka configuration: bootstrap servers, the caller's defaults, then the
    operator's client_options (which win: they carry the cluster's security settings)."""
    return {"bootstrap.servers": settings.kafka.bootstrap_servers, **defaults, **settings.kafka.client_options}


def _jaas_quote(value: str) -> str:
    # Kafka parses JAAS options with a StreamTokenizer: double quotes, backslash escapes.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pem(options: dict[str, str], location_key: str, pem_key: str) -> str | None:
    if pem_key in options:
        return options[pem_key]
    if location_key in options:
        path = Path(options[location_key]).expanduser()
        try:
            return path.read_text()
        except OSError as err:
            raise ValueError(f"[kafka] client_options {location_key}={str(path)!r}: cannot read it "
                             f"({err.strerror})") from None
    return None


def _sasl(options: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    mechanism = options.get("sasl.mechanism", options.get("sasl.mechanisms"))
    if mechanism is not None:
        out["sasl.mechanism"] = mechanism.upper()
    if "sasl.username" in options or "sasl.password" in options:
        module = _JAAS_MODULES.get((mechanism or "PLAIN").upper())
        if module is None:
            raise ValueError(f"[kafka] client_options: sasl.username/password work with {', '.join(_JAAS_MODULES)}, "
                             f"not sasl.mechanism={mechanism!r}; give java_client_options sasl.jaas.config instead")
        out["sasl.jaas.config"] = (f"{module} required username={_jaas_quote(options.get('sasl.username', ''))} "
                                   f"password={_jaas_quote(options.get('sasl.password', ''))};")
    return out


def _ssl(options: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if "ssl.ca.pem" in options:
        out.update({"ssl.truststore.type": "PEM", "ssl.truststore.certificates": options["ssl.ca.pem"]})
    elif "ssl.ca.location" in options:
        out.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": options["ssl.ca.location"]})
    certificate = _pem(options, "ssl.certificate.location", "ssl.certificate.pem")
    key = _pem(options, "ssl.key.location", "ssl.key.pem")
    if (certificate is None) != (key is None):
        raise ValueError("[kafka] client_options: a client certificate needs both ssl.certificate.* and ssl.key.*")
    if certificate is not None and key is not None:
        if "BEGIN RSA PRIVATE KEY" in key or "BEGIN EC PRIVATE KEY" in key:
            # Said without the key's content: the message may be logged.
            raise ValueError("[kafka] client_options ssl.key.*: the Java client reads PKCS#8 keys only; convert "
                             "it with `openssl pkcs8 -topk8 -in key.pem -out key.pk8.pem`")
        # Inline, so the job carries them to a remote Flink cluster too.
        out.update({"ssl.keystore.type": "PEM", "ssl.keystore.certificate.chain": certificate,
                    "ssl.keystore.key": key})
    if "ssl.key.password" in options:
        out["ssl.key.password"] = options["ssl.key.password"]
    if "ssl.endpoint.identification.algorithm" in options:
        algorithm = options["ssl.endpoint.identification.algorithm"]
        out["ssl.endpoint.identification.algorithm"] = "" if algorithm.lower() == "none" else algorithm
    return out


def java_client_properties(kafka: KafkaSettings) -> dict[str, str]:
    """Properties for Kafka's Java client (the Flink connector's source and sinks)."""
    options = {key: str(value) for key, value in kafka.client_options.items()}
    out = {key: value for key, value in options.items() if key not in _TRANSLATED}
    if "security.protocol" in options:
        out["security.protocol"] = options["security.protocol"].upper()
    out.update(_sasl(options))
    out.update(_ssl(options))
    out.update({key: str(value) for key, value in kafka.java_client_options.items()})
    return out


def sql_string(value: str) -> str:
    """A Flink SQL string literal: single quotes doubled, everything else (newlines too) as is."""
    return "'" + value.replace("'", "''") + "'"


def sql_with_clause(options: dict[str, str]) -> str:
    """The body of a Flink SQL `WITH (...)`, safe for any option value (passwords, PEM text)."""
    return ", ".join(f"{sql_string(key)} = {sql_string(value)}" for key, value in options.items())
