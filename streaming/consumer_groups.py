"""Kafka consumer groups of the streaming path (importable without Flink or Feast)."""
from __future__ import annotations

from dataclasses import dataclass

JOB = "tessera-stream"        # the Flink job on ad_events; commits on checkpoints
SINK = "tessera-sink"         # the online/offline writer on tessera.features
ARCHIVE = "tessera-archive"   # the raw-history archiver on ad_events


@dataclass(frozen=True)
class Lag:
    """A group's committed offsets against the end of the topic it reads, summed over partitions."""

    group: str
    topic: str
    committed: int
    end: int

    @property
    def behind(self) -> int:
        return max(0, self.end - self.committed)
