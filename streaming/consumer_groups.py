"""Kafka consumer groups of the streaming path (importable without Flink or Feast)."""
JOB = "tessera-stream"        # the Flink job on ad_events; commits on checkpoints
SINK = "tessera-sink"         # the online/offline writer on tessera.features
ARCHIVE = "tessera-archive"   # the raw-history archiver on ad_events
