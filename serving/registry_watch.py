"""Reload the lookup plan when `feast apply` rewrites the registry, off the request path.

A background task polls the registry file's stat (cheap, on the event loop). On a change it waits
one more poll for the file to settle (Feast rewrites the file in place, so a reader can catch it
half-written), compiles the new plan in a thread, and swaps it in with one assignment. Requests
in flight keep the plan they started with; a registry that fails to load leaves the old plan
serving and is retried on the next change.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Callable

from serving.metrics import REGISTRY_RELOADS
from serving.plan import LookupPlan

log = logging.getLogger("tessera.serving")

Signature = tuple[int, int, int]  # (mtime_ns, size, inode)


def file_signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class PlanHolder:
    """The current plan. Readers take `holder.plan` once per request; writers replace it whole."""

    def __init__(self) -> None:
        self.plan: LookupPlan | None = None
        self.last_error: str | None = None


class RegistryWatcher:
    def __init__(self, holder: PlanHolder, registry_path: Path, load: Callable[[], LookupPlan],
                 poll_s: float) -> None:
        self.holder, self.registry_path, self.load, self.poll_s = holder, registry_path, load, poll_s
        self.loaded: Signature | None = None
        self._pending: Signature | None = None
        self._failed: Signature | None = None
        self._task: asyncio.Task[None] | None = None

    async def load_now(self) -> bool:
        """Load whatever the registry holds now (at start-up). False if there is none yet."""
        signature = file_signature(self.registry_path)
        if signature is None:
            self.holder.last_error = f"no registry at {self.registry_path}: run `tessera apply`"
            log.warning("%s; serving starts without a plan and picks it up when it appears",
                        self.holder.last_error)
            return False
        return await self._reload(signature)

    async def _reload(self, signature: Signature) -> bool:
        try:
            plan = await asyncio.to_thread(self.load)
        except Exception as err:  # a half-written or broken registry must not stop the watcher
            REGISTRY_RELOADS.labels("failed").inc()
            self.holder.last_error = f"registry {self.registry_path} did not load: {type(err).__name__}: {err}"
            log.warning("%s; still serving the previous plan", self.holder.last_error)
            self._failed = signature  # retried when the file changes again, not on every poll
            return False
        if file_signature(self.registry_path) != signature:
            return False  # rewritten while we read it: the next poll loads the newer one
        self.holder.plan, self.holder.last_error, self.loaded = plan, None, signature
        REGISTRY_RELOADS.labels("loaded").inc()
        log.info("registry loaded (version %s): %d entities, %d views, %d feature services%s",
                 plan.registry.version_id or "-", len(plan.entities), len(plan.views), len(plan.services),
                 "".join(f"\n  warning: {w}" for w in plan.warnings))
        return True

    async def poll_once(self) -> None:
        signature = file_signature(self.registry_path)
        if signature is None or signature in (self.loaded, self._failed):
            self._pending = None
            return
        if signature != self._pending:
            self._pending = signature  # seen changing: let it settle for one poll
            return
        if await self._reload(signature):
            self._pending = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.poll_once()
            except Exception:  # never let the watcher die silently
                log.exception("registry watcher: unexpected error; polling on")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="registry-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
