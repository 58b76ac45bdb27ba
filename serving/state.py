"""What one worker process shares between requests: the settings, the Redis reader, the plan."""
from __future__ import annotations

from dataclasses import dataclass

from serving.errors import ApiError
from serving.online_reader import OnlineReader
from serving.pipeline_probe import PipelineProbe
from serving.plan import LookupPlan
from serving.registry_watch import PlanHolder, RegistryWatcher
from tessera.config import Settings


@dataclass
class ServingState:
    settings: Settings
    reader: OnlineReader
    holder: PlanHolder
    watcher: RegistryWatcher
    probe: PipelineProbe | None = None  # the streaming path's progress and Kafka, for /metrics and /status

    def plan(self) -> LookupPlan:
        plan = self.holder.plan
        if plan is None:
            raise ApiError(503, "registry_not_loaded",
                           self.holder.last_error or "the Feast registry is not loaded yet; retry shortly",
                           headers={"Retry-After": "1"})
        return plan
