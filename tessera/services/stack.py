"""The whole local stack: bring every service up in order, report it, take it down."""
from __future__ import annotations

from typing import Callable, Protocol

from tessera.config import Settings
from tessera.services.kafka_broker import KafkaBroker
from tessera.services.redis_server import RedisServer


class Service(Protocol):
    name: str

    @property
    def address(self) -> str: ...
    def start(self) -> str: ...
    def stop(self) -> str: ...
    def status(self) -> tuple[str, str]: ...


def services(settings: Settings) -> list[Service]:
    return [RedisServer(settings), KafkaBroker(settings)]


def up(settings: Settings, say: Callable[[str], None] = print) -> None:
    for service in services(settings):
        say(f"{service.name:<6} {service.start()}")


def down(settings: Settings, say: Callable[[str], None] = print) -> None:
    for service in reversed(services(settings)):
        say(f"{service.name:<6} {service.stop()}")


def status(settings: Settings) -> list[tuple[str, str, str, str]]:
    """(service, up|down, address, pid or 'remote') for each service."""
    rows = []
    for service in services(settings):
        state, where = service.status()
        rows.append((service.name, state, service.address, where))
    return rows
