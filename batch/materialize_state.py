"""Where each view's last materialization ended, kept under the state dir (per Feast project), so
`tessera materialize --incremental` continues from there."""
from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path


class MaterializeState:
    def __init__(self, state_dir: Path, project: str) -> None:
        self.path = state_dir / "materialize" / f"{project}.json"

    def _load(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def last_end(self, view: str) -> datetime | None:
        stamp = self._load().get(view)
        return datetime.fromisoformat(stamp) if stamp else None

    def record(self, view: str, end: datetime) -> None:
        ends = self._load()
        previous = ends.get(view)
        # Never move backwards: an explicit older range re-run must not make --incremental redo work.
        if previous is None or datetime.fromisoformat(previous) < end:
            ends[view] = end.isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ends, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)
