"""Shared fixtures: the real Kafka + Redis stack (see tests/stack.py)."""
from tests.stack import stack, stack_settings  # noqa: F401  (pytest fixtures)

import os
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def _tessera_config_restored() -> Iterator[None]:
    """`tessera --config F` run in-process exports TESSERA_CONFIG for Feast's sake; it must not leak
    into the tests after it, which would all read F."""
    saved = os.environ.get("TESSERA_CONFIG")
    yield
    if saved is None:
        os.environ.pop("TESSERA_CONFIG", None)
    else:
        os.environ["TESSERA_CONFIG"] = saved
