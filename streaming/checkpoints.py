"""Where the job's checkpoints are, and which one a start restores: no Flink needed, so the CLI and
tests can ask too."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from streaming.aggregator import ViewPlan, plans_to_json
from tessera.config import Settings
from tessera.definitions import WindowedView, load_definitions


# The JVM engine's state layout: bumped when its operators or keys change so that a checkpoint
# cannot restore (2: Java validation with a checkpointed clock, keys as (view, id) tuples).
JVM_STATE_VERSION = 2


def definitions_fingerprint(views: Iterable[WindowedView]) -> str:
    """A short hash of what the job computes from these views (their compiled plans: windows, their
    granularities, filters, lateness; not descriptions). A checkpoint's buckets are right only for
    the definitions they were counted with: restored under others, a changed window would mix
    events counted both ways until the old ones had all left."""
    plans = [ViewPlan.compile(v) for v in views]
    return hashlib.sha256(plans_to_json(plans).encode()).hexdigest()[:12]


def checkpoint_dir(settings: Settings) -> Path:
    """One folder per engine, state layout and feature definitions: a checkpoint of other operators
    or other definitions cannot be restored, so a start after an upgrade or a change to a streaming
    view finds none and replays the topic, as after an engine switch."""
    fingerprint = definitions_fingerprint(load_definitions(settings.feature_repo).streaming_views())
    if settings.flink.engine == "python":
        name = f"checkpoints-{fingerprint}"
    else:
        name = f"checkpoints-{settings.flink.engine}-v{JVM_STATE_VERSION}-{fingerprint}"
    return settings.state_dir / "flink" / name


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest completed checkpoint (one with _metadata) under any job id."""
    done = [p.parent for p in folder.glob("*/chk-*/_metadata")]
    return max(done, key=lambda p: (p.stat().st_mtime, int(p.name.split("-")[1])), default=None)


def restore_point(settings: Settings, from_checkpoint: str) -> Path | None:
    """'auto': the engine's newest checkpoint; 'none': nothing; else the given path."""
    if from_checkpoint == "auto":
        return latest_checkpoint(checkpoint_dir(settings))
    if from_checkpoint == "none":
        return None
    return Path(from_checkpoint)
