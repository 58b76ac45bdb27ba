"""Shared fixtures: the real Kafka + Redis stack (see tests/stack.py)."""
from tests.stack import stack, stack_settings  # noqa: F401  (pytest fixtures)
