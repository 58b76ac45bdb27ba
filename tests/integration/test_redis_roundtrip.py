"""The Redis that `tessera services up` started is real Redis: commands round-trip."""
from __future__ import annotations

from tessera.config import Settings
from tessera.services.redis_server import redis_client


def test_redis_round_trip(stack_settings: Settings) -> None:
    client = redis_client(stack_settings)
    client.hset("tessera:test", mapping={"a": b"\x00\x01binary", "b": "2"})
    assert client.hgetall("tessera:test") == {b"a": b"\x00\x01binary", b"b": b"2"}
    pipe = client.pipeline(transaction=False)
    pipe.hmget("tessera:test", ["a", "missing"])
    pipe.delete("tessera:test")
    assert pipe.execute() == [[b"\x00\x01binary", None], 1]
    assert "redis_version" in client.info("server")
