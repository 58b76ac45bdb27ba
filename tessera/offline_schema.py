"""The offline store's time columns, named once for the backfill, the stream writer, Feast's file
sources and the readers (no Feast import: the Spark side and the index use them too)."""
from __future__ import annotations

# Offline rows carry the time they are the value for (`as_of`) and when they were written.
EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created"
