"""Where the job's checkpoints are, and which one a start restores: no Flink needed, so the CLI and
tests can ask too."""
from __future__ import annotations

from pathlib import Path

from tessera.config import Settings


def checkpoint_dir(settings: Settings) -> Path:
    """One folder per engine: a checkpoint of one engine's operators cannot be restored by the other."""
    name = "checkpoints" if settings.flink.engine == "python" else f"checkpoints-{settings.flink.engine}"
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
