"""The local job JVM's flags are ones this machine's java accepts, with the values meant.

A misspelt -XX flag stops the JVM at start ("Unrecognized VM option"), which would surface only as
a stream job that never came up; here java itself reads the flags back."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from streaming.local_jvm import local_jvm_args
from tessera.config import Settings


def final_flags(args: list[str]) -> dict[str, str]:
    """-XX:+PrintFlagsFinal's table as name -> value."""
    if shutil.which("java") is None:
        pytest.fail("no java on PATH: run scripts/setup.sh")
    done = subprocess.run(["java", *args, "-XX:+PrintFlagsFinal", "-version"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    flags = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "=":
            flags[parts[1]] = parts[3]
    return flags


def test_the_parallel_collector_promotes_what_survives_a_young_collection() -> None:
    settings = Settings().model_copy(deep=True)
    settings.flink.local_heap = "256m"  # the default pre-touches 1 GB: the flags are the same
    flags = final_flags(local_jvm_args(settings))
    assert flags["UseParallelGC"] == "true"
    assert flags["MaxTenuringThreshold"] == "0"
    assert flags["MaxHeapSize"] == str(256 * 2**20)


def test_the_g1_choice_leaves_tenuring_to_g1() -> None:
    settings = Settings().model_copy(deep=True)
    settings.flink.local_heap = ""
    settings.flink.local_gc = "g1"
    flags = final_flags(local_jvm_args(settings))
    assert flags["UseG1GC"] == "true"
    assert flags["MaxTenuringThreshold"] == "15"


@pytest.mark.parametrize("choice, flag", [("shenandoah", "UseShenandoahGC"), ("z", "UseZGC")])
def test_the_concurrent_choices_are_collectors_this_java_has(choice: str, flag: str) -> None:
    settings = Settings().model_copy(deep=True)
    settings.flink.local_heap = "256m"
    settings.flink.local_gc = choice  # type: ignore[assignment]
    flags = final_flags(local_jvm_args(settings))
    assert flags[flag] == "true"
    assert flags["UseParallelGC"] == "false"
