"""Tessera: a streaming feature platform (Kafka -> Flink -> Spark -> Feast/Redis -> FastAPI)."""
