# The platform image for docker-compose.yml: the tessera CLI with Feast, PySpark and Java 17.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md tessera.toml ./
COPY tessera ./tessera
COPY streaming ./streaming
COPY batch ./batch
COPY serving ./serving
COPY feature_repo ./feature_repo
RUN pip install --no-cache-dir ".[platform]"
ENV TESSERA_CONFIG=/app/tessera.toml
