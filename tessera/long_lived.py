"""Keeping the garbage collector off what a long-running process loaded at start.

Feast, protobuf, pandas and pyarrow leave a million or more long-lived objects. A full collection
walks all of them: in the online writer under bench/soak.py's load that took up to 1.6 s, a stall
of the freshness path every few batches (its stage timings, "gc"). Frozen, they are never walked
again, and a collection costs what the work since start allocated.
"""
from __future__ import annotations

import gc


def freeze_long_lived() -> int:
    """Collect once, then move every object that survived into the permanent generation; returns
    how many objects are frozen. Call once the process has loaded what it keeps."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
