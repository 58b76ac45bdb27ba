"""Where the job's checkpoints are, and which one a start restores: no Flink needed, so the CLI and
tests can ask too."""
from __future__ import annotations

from pathlib import Path

from tessera.config import Settings


# The JVM engine's state layout: bumped when its operators or keys change so that a checkpoint
# cannot restore (2: Java validation with a checkpointed clock, keys as (view, id) tuples).
JVM_STATE_VERSION = 2


def checkpoint_dir(settings: Settings) -> Path:
    """One folder per engine and state layout: a checkpoint of other operators cannot be restored, so
    a start after an upgrade finds none and replays the topic, as after an engine switch."""
    if settings.flink.engine == "python":
        name = "checkpoints"
    else:
        name = f"checkpoints-{settings.flink.engine}-v{JVM_STATE_VERSION}"
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
