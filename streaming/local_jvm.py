"""The local mini-cluster JVM's flags: its heap and collector, from `[flink] local_heap` and `local_gc`.

Apart from streaming/job.py so that it can be read and tested without PyFlink."""
from __future__ import annotations

from tessera.config import Settings


def local_jvm_args(settings: Settings) -> list[str]:
    """Heap fixed and pre-touched (when set), and the collector's flags."""
    flink = settings.flink
    args = [f"-Xms{flink.local_heap}", f"-Xmx{flink.local_heap}", "-XX:+AlwaysPreTouch"] if flink.local_heap else []
    # MaxTenuringThreshold=0: what survives a young collection goes to the old generation at once.
    # What survives here is keyed state (a key's new buckets, its arrays as they double), which
    # lives for its longest window. Copied between survivor spaces first, it made the soak's first
    # minutes' young pauses 0.5 to 0.6 s of CPU and 1.6 to 3 s of wall clock; promoted at once,
    # 0.1 to 0.3 s of CPU (stop 19, bench/soak.py; the host was quieter in the second run).
    parallel = ["-XX:+UseParallelGC", "-XX:MaxTenuringThreshold=0"]
    # The concurrent collectors trade CPU for pauses: the job's young pauses (0.2 to 0.9 s of wall
    # clock on a busy host) and its catch-up after each are the spikes of its freshness.
    args += {"parallel": parallel, "g1": ["-XX:+UseG1GC"], "shenandoah": ["-XX:+UseShenandoahGC"],
             "z": ["-XX:+UseZGC"], "": []}[flink.local_gc]
    return args
