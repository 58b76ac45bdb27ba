"""Running the JVM engine's classes (jars/aggregator) without a cluster: a JVM, the jar and flink-dist."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JAR = ROOT / ".cache" / "jars" / "aggregator" / "tessera-aggregator.jar"


def _flink_dist() -> Path:
    found = sorted(ROOT.glob(".venv-flink/lib/python*/site-packages/pyflink/lib/flink-dist-*.jar"))
    if not found:
        pytest.fail("no flink-dist jar in .venv-flink: run scripts/setup.sh")
    return found[0]


def run_main(main_class: str, args: list[str], stdin: str) -> list[str]:
    """The class's stdout lines for `stdin`; fails the test if java, the jar or the run fails."""
    if shutil.which("java") is None or not JAR.is_file():
        pytest.fail(f"java or {JAR} missing: run scripts/setup.sh")
    done = subprocess.run(["java", "-Xmx512m", "-cp", f"{JAR}:{_flink_dist()}", f"dev.tessera.stream.{main_class}",
                           *args], input=stdin, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()
