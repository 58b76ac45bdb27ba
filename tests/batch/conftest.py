"""One local SparkSession for the batch tests (a JVM start costs seconds on 2 cores)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from pyspark.sql import SparkSession

from batch.spark_session import spark_session
from tessera.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = spark_session(load_settings(ROOT / "tessera.toml"), "tessera-tests")
    yield session
    session.stop()


@pytest.fixture()
def batch_settings(tmp_path: Path) -> Settings:
    settings = load_settings(ROOT / "tessera.toml")
    settings.paths.data_dir = tmp_path / "data"
    settings.paths.state_dir = tmp_path / "state"
    return settings
