"""A checkpoint is found again only under the streaming definitions it was taken with."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from streaming.checkpoints import definitions_fingerprint
from tessera.definitions import load_definitions

ROOT = Path(__file__).resolve().parents[2]


def test_fingerprint_follows_what_the_job_computes_not_the_wording() -> None:
    views = load_definitions(ROOT / "feature_repo").streaming_views()
    base = definitions_fingerprint(views)
    assert definitions_fingerprint(load_definitions(ROOT / "feature_repo").streaming_views()) == base
    reworded = [replace(views[0], description="said another way"), *views[1:]]
    assert definitions_fingerprint(reworded) == base
    by_the_minute = [replace(views[0], window_granularity={}), *views[1:]]
    later = [replace(views[0], allowed_lateness="30s"), *views[1:]]
    fewer = views[1:]
    assert len({base, *map(definitions_fingerprint, (by_the_minute, later, fewer))}) == 4
