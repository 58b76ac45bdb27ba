"""The feature API's security edges: API keys (several, from the environment and a file, compared
in constant time, never logged or echoed), the request body cap (413, JSON), and errors that
carry no stack trace and no secret, even when something inside breaks."""
from __future__ import annotations

import hmac
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from pydantic import SecretStr

import serving.auth
from serving.app import create_app
from serving.auth import ApiKeyError, KeyChecker, api_keys_of
from tessera.config import Settings
from tessera.services.redis_server import redis_client
from tests.serving.stack import ROOT, ServingStack, TestClient, free_port, subprocess_env

ENV_KEY = "env-key-7f3a9c2e"
FILE_KEYS = ("file-key-one-51c0", "file-key-two-b8e4")
ALL_KEYS = (ENV_KEY, *FILE_KEYS)
REDIS_SECRET = "redis-secret-for-error-tests"


def with_serving(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"serving": settings.serving.model_copy(update=changes)})


def write_key_file(folder: Path) -> Path:
    path = folder / "api_keys"
    path.write_text(f"# rotated 2026-11\n\n  {FILE_KEYS[0]}  \n{FILE_KEYS[1]}\n")
    path.chmod(0o600)
    return path


def body_and_headers(response: httpx.Response) -> str:
    return response.text + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())


# --- API keys -----------------------------------------------------------------------------------

@pytest.fixture()
def keyed(serving_stack: ServingStack, tmp_path: Path) -> Iterator[TestClient]:
    settings = with_serving(serving_stack.settings, api_key_file=write_key_file(tmp_path))
    with TestClient(create_app(settings, environ={"TESSERA_API_KEY": ENV_KEY})) as client:
        yield client


def test_every_configured_key_works_and_nothing_else(keyed: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for key in ALL_KEYS:
        assert keyed.get("/features/user/1", headers={"X-API-Key": key}).status_code == 200
        assert keyed.post("/features/user", json={"ids": [1]}, headers={"X-API-Key": key}).status_code == 200
    near_misses = ["", " ", "# rotated 2026-11", FILE_KEYS[0] + " ", FILE_KEYS[0][:-1], FILE_KEYS[0].upper(),
                   ENV_KEY + FILE_KEYS[0], "\u00e9" + ENV_KEY, f"{FILE_KEYS[0]}\n{FILE_KEYS[1]}"[:40]]
    for wrong in near_misses:
        headers = {"X-API-Key": wrong.encode("utf-8")}
        for response in (keyed.get("/features/user/1", headers=headers),
                         keyed.post("/features/user", json={"ids": [1]}, headers=headers)):
            assert response.status_code == 401 and response.json()["error"] == "unauthorized"
            for key in ALL_KEYS:
                assert key not in body_and_headers(response)
    for key in ALL_KEYS:
        assert key not in caplog.text


def test_every_key_is_compared_whatever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: the time taken does not tell which key, or whether any, matched."""
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(serving.auth.hmac, "compare_digest", counting)
    checker = KeyChecker(ALL_KEYS)
    for given, expected in ((ALL_KEYS[0], True), (ALL_KEYS[-1], True), ("nope", False)):
        calls.clear()
        assert checker.accepts(given) is expected
        assert len(calls) == len(ALL_KEYS)
    assert checker.accepts(None) is False


def test_key_sources(serving_stack: ServingStack, tmp_path: Path) -> None:
    base = serving_stack.settings
    assert api_keys_of(base, {}) == ()
    assert api_keys_of(base, {"TESSERA_API_KEY": ENV_KEY}) == (ENV_KEY,)
    from_settings = with_serving(base, api_key=SecretStr("settings-key"), api_key_file=write_key_file(tmp_path))
    assert set(api_keys_of(from_settings, {"TESSERA_API_KEY": ENV_KEY})) == {"settings-key", *FILE_KEYS}
    relative = with_serving(base, api_key_file=Path("keys/api_keys")).model_copy(update={"root": tmp_path})
    (tmp_path / "keys").mkdir()
    write_key_file(tmp_path / "keys")
    assert api_keys_of(relative, {}) == FILE_KEYS  # relative to the config file's folder


@pytest.mark.parametrize("content", [None, "", "# only a comment\n\n   \n"])
def test_an_unusable_key_file_stops_the_start_naming_the_file(serving_stack: ServingStack, tmp_path: Path,
                                                             content: str | None) -> None:
    path = tmp_path / "keys.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ApiKeyError, match=str(path)):
        create_app(with_serving(serving_stack.settings, api_key_file=path), environ={})


# --- body size ----------------------------------------------------------------------------------

@pytest.fixture()
def capped(serving_stack: ServingStack) -> Iterator[TestClient]:
    with TestClient(create_app(with_serving(serving_stack.settings, max_body_bytes=1_000), environ={})) as client:
        yield client


def test_a_body_over_the_cap_is_413_json(capped: TestClient) -> None:
    big = b'{"ids": [' + b"1," * 600 + b"1]}"
    response = capped.post("/features/user", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": 413, "error": "body_too_large",
                               "message": "the request body is over the server's limit of 1,000 bytes"}


def test_a_chunked_body_over_the_cap_is_413(capped: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"ids": ['
        for _ in range(100):
            yield b"1,2,3,4,5,"
        yield b"1]}"

    response = capped.post("/features/user", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"


def test_a_body_within_the_cap_is_served(capped: TestClient) -> None:
    small = capped.post("/features/user", json={"ids": [1, 2]})
    assert small.status_code == 200 and len(small.json()["results"]) == 2
    exact = b'{"ids": [' + b" " * (1_000 - 12) + b"1]}"
    assert len(exact) == 1_000
    assert capped.post("/features/user", content=exact, headers={"content-type": "application/json"}).status_code == 200
    assert capped.get("/features/user/1").status_code == 200  # no body: untouched


def test_the_cap_is_counted_in_metrics(capped: TestClient) -> None:
    capped.post("/features/user", content=b"x" * 2_000, headers={"content-type": "application/json"})
    assert 'status="413"' in capped.get("/metrics").text


# --- no stack traces, no secrets ----------------------------------------------------------------

LEAKS = ("Traceback", 'File "', REDIS_SECRET, "secret-in-exception", "RuntimeError", "KeyError")
TRACE_LINE = re.compile(r"\.py\b|line \d+")


def assert_clean(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) <= {"status", "error", "message", "name"} and body["status"] == response.status_code
    for leak in LEAKS:
        assert leak not in response.text, (leak, response.text)
    assert not TRACE_LINE.search(response.text), response.text


@pytest.fixture()
def raw_client(serving_stack: ServingStack) -> Iterator[TestClient]:
    # raise_server_exceptions=False: see what a real client would get from a bug.
    with TestClient(create_app(serving_stack.settings, environ={}), raise_server_exceptions=False) as client:
        yield client


def test_an_internal_error_is_a_bare_json_500(raw_client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    state = raw_client.app.state.serving

    async def broken(*_: object) -> None:
        raise RuntimeError(f"secret-in-exception {REDIS_SECRET}")

    monkeypatch.setattr(state.reader, "read", broken)
    for response in (raw_client.get("/features/user/1"), raw_client.post("/features/user", json={"ids": [1]})):
        assert response.status_code == 500
        assert response.json()["error"] == "internal_error"
        assert_clean(response)
    monkeypatch.undo()

    def broken_select(*_: object) -> None:
        raise KeyError("secret-in-exception")

    monkeypatch.setattr(type(state.holder.plan), "select", broken_select)
    response = raw_client.get("/features/user/1")
    assert response.status_code == 500
    assert_clean(response)


def test_corrupt_data_in_redis_is_a_502_not_a_crash(raw_client: TestClient, serving_stack: ServingStack) -> None:
    plan = raw_client.app.state.serving.holder.plan
    selection = plan.select("user", "user_ad_activity:clicks_1h", None)
    key = selection.entity.redis_key(31_337)
    client = redis_client(serving_stack.settings)
    try:
        client.hset(key, mapping={selection.fields[0]: b"\xff\xff\xff", selection.fields[-1]: b"\x08"})
        response = raw_client.get("/features/user/31337?features=user_ad_activity:clicks_1h")
    finally:
        client.delete(key)
    assert response.status_code == 502 and response.json()["error"] == "redis_error"
    assert_clean(response)


def test_redis_down_errors_name_no_secret(serving_stack: ServingStack) -> None:
    settings = serving_stack.settings.model_copy(update={"redis": serving_stack.settings.redis.model_copy(
        update={"port": free_port(), "password": SecretStr(REDIS_SECRET)})})
    with TestClient(create_app(with_serving(settings, api_key=SecretStr("k")), environ={})) as client:
        for response in (client.get("/features/user/1", headers={"X-API-Key": "k"}),
                         client.post("/features/user", json={"ids": [1]}, headers={"X-API-Key": "k"}),
                         client.get("/health")):
            assert response.status_code == 503
            assert REDIS_SECRET not in response.text and "Traceback" not in response.text
        for public in ("/openapi.json", "/metrics", "/health", "/docs", "/status", "/status.json"):
            text = client.get(public).text
            assert REDIS_SECRET not in text and '"k"' not in text


@pytest.mark.parametrize("request_args", [
    ("GET", "/features/user/1?features=" + "x" * 5_000, None),
    ("POST", "/features/user", b"\xff\xfe{"),
    ("POST", "/features/user", b'{"ids": [' + b"[" * 5_000 + b"]}"),
    ("POST", "/features/user", b'{"ids": [1e999999]}'),
    ("POST", "/features/user", b'{"ids": [' + b"9" * 5_000 + b"]}"),
    ("GET", "/features/%00/1", None),
    ("GET", "/features/user/%F0%9F%98%80", None),
])
def test_hostile_requests_get_clean_4xx(raw_client: TestClient, request_args: tuple) -> None:
    method, url, body = request_args
    response = raw_client.request(method, url, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert_clean(response)


# --- `tessera serve` itself: keys never reach its output --------------------------------------------

def test_served_keys_never_reach_the_logs(serving_stack: ServingStack, tmp_path: Path) -> None:
    key_file = write_key_file(tmp_path)
    port = free_port()
    env = {**os.environ, **subprocess_env(serving_stack.settings), "TESSERA_API_KEY": ENV_KEY,
           "TESSERA_SERVING__API_KEY_FILE": str(key_file)}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tessera.cli", "serve", "--port", str(port), "--workers",
                                    "1", "--access-log", "--log-level", "debug"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.25)
        responses = []
        for key in ALL_KEYS:
            responses.append(httpx.get(f"{base}/features/user/1", headers={"X-API-Key": key}))
            responses.append(httpx.get(f"{base}/features/driver/1", headers={"X-API-Key": key}))
            responses.append(httpx.post(f"{base}/features/user", json={"ids": ["x"]}, headers={"X-API-Key": key}))
            responses.append(httpx.get(f"{base}/features/user/1", headers={"X-API-Key": key[:-1]}))
        assert [r.status_code for r in responses] == [200, 404, 422, 401] * len(ALL_KEYS)
        for response in responses:
            for key in ALL_KEYS:
                assert key not in body_and_headers(response)
    finally:
        os.kill(process.pid, signal.SIGTERM)  # ours, started above
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log.read_text()
    assert "GET /features/user/1" in output  # the access log was on
    for key in ALL_KEYS:
        assert key not in output


def test_serve_refuses_an_empty_key_file_in_one_line(serving_stack: ServingStack, tmp_path: Path) -> None:
    empty = tmp_path / "empty_keys"
    empty.write_text("# nothing yet\n")
    env = {**os.environ, **subprocess_env(serving_stack.settings), "TESSERA_SERVING__API_KEY_FILE": str(empty)}
    done = subprocess.run([sys.executable, "-m", "tessera.cli", "serve", "--port", str(free_port())], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert str(empty) in done.stderr and "Traceback" not in done.stderr
