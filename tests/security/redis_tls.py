"""A throwaway certificate authority and a TLS-only redis-server for the security tests.

Certificates are made by the openssl command line in the test's tmp dir: a CA, a server
certificate for 127.0.0.1/localhost and a client certificate (the server asks for one).
"""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tessera.services.redis_server import config_quote


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> Certificates:
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=tessera-test-ca", cwd=folder)
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, extension in (("server", ["-extfile", "server.ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=tessera-test-{name}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *extension, cwd=folder)
    return Certificates(folder / "ca.crt", folder / "server.crt", folder / "server.key",
                        folder / "client.crt", folder / "client.key")


class TlsRedis:
    """redis-server listening on TLS only (no plain port), asking for a client certificate and a
    password. Started and stopped by this test, by its own pid."""

    def __init__(self, folder: Path, port: int, password: str, certs: Certificates) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (scripts/setup.sh)"
        conf = folder / "redis-tls.conf"
        conf.write_text("\n".join([
            "port 0", f"tls-port {port}", "bind 127.0.0.1", f"dir {folder}", 'save ""', "appendonly no",
            f"tls-cert-file {certs.server_cert}", f"tls-key-file {certs.server_key}",
            f"tls-ca-cert-file {certs.ca}", "tls-auth-clients yes", f"requirepass {config_quote(password)}", ""]))
        conf.chmod(0o600)
        self.port = port
        self.log = folder / "redis-tls.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([binary, str(conf)], stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(password, certs)

    def _wait_ready(self, password: str, certs: Certificates) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.port, password=password, ssl=True,
                             ssl_ca_certs=str(certs.ca), ssl_certfile=str(certs.client_cert),
                             ssl_keyfile=str(certs.client_key), socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server (TLS) exited: {self.log.read_text()[-2000:]}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"redis-server (TLS) did not answer: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
