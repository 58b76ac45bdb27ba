"""Real Kafka and Redis as local processes, started and stopped by `tessera services`."""
