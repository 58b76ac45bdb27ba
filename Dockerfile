# The platform image for docker-compose.yml: the tessera CLI with Feast and PySpark (in /app/.venv),
# the Flink job's own environment (/app/.venv-flink), the Flink Kafka connector jar and the JVM engine's
# operators (jars/aggregator, compiled here: hence the JDK).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md tessera.toml ./
COPY jars ./jars
COPY scripts ./scripts
COPY tessera ./tessera
COPY streaming ./streaming
COPY batch ./batch
COPY serving ./serving
COPY feature_repo ./feature_repo
# Same set-up path as on a bare machine (redis-server is not needed in the image: Redis is a service).
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir uv \
    && .venv/bin/uv pip install -p .venv/bin/python -e ".[platform]" \
    && .venv/bin/uv venv -p python3.11 .venv-flink && .venv/bin/uv pip install -p .venv-flink/bin/python -e ".[stream]" \
    && mvn -q -B -f jars/flink/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=.cache/jars/flink \
    && mvn -q -B -f jars/aggregator/pom.xml package && mkdir -p .cache/jars/aggregator \
    && cp .cache/build/aggregator/tessera-aggregator.jar .cache/jars/aggregator/
ENV PATH=/app/.venv/bin:$PATH TESSERA_CONFIG=/app/tessera.toml
