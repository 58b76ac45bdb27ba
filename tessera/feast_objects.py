"""Compile the declarations of `feature_repo/views.py` into Feast objects, and the settings into
Feast's RepoConfig, so Feast's registry and online store follow the one definition and one config."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.repo_config import RepoConfig
from feast.types import Float64, Int64

from tessera.config import Settings
from tessera.definitions import Definitions, WindowedView
from tessera.offline_schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP

FEAST_DTYPES = {"int64": Int64, "float64": Float64}


@dataclass(frozen=True)
class FeastObjects:
    entities: dict[str, Entity]
    feature_views: dict[str, FeatureView]
    feature_services: dict[str, FeatureService]
    push_sources: dict[str, PushSource]

    def by_name(self) -> dict[str, Any]:
        """Module-level names for the Feast repo file: Feast collects objects by scanning globals."""
        out: dict[str, Any] = {}
        for group in (self.entities, self.feature_views, self.feature_services, self.push_sources):
            out.update({name.replace("-", "_"): obj for name, obj in group.items()})
        return out


def offline_source(view: WindowedView, settings: Settings) -> FileSource:
    return FileSource(
        name=f"{view.name}_offline",
        path=str(settings.offline_store_dir / view.name),
        timestamp_field=EVENT_TIMESTAMP,
        created_timestamp_column=CREATED_TIMESTAMP,
        description=f"Offline store of {view.name}: value(k, as_of) rows written by the backfill and the stream",
    )


def compile_feast_objects(definitions: Definitions, settings: Settings) -> FeastObjects:
    entities = {
        e.name: Entity(name=e.name, join_keys=[e.join_key], value_type=ValueType.INT64, description=e.description)
        for e in definitions.entities.values()
    }
    views: dict[str, FeatureView] = {}
    pushes: dict[str, PushSource] = {}
    for view in definitions.views.values():
        batch = offline_source(view, settings)
        source: FileSource | PushSource = batch
        if view.kind == "streaming":
            # The stream writes through Feast's push API; the batch source keeps the history.
            source = PushSource(name=f"{view.name}_push", batch_source=batch)
            pushes[source.name] = source
        views[view.name] = FeatureView(
            name=view.name,
            entities=[entities[view.entity.name]],
            # Every offline row is the value as of its timestamp (decay rows included), so the
            # newest row at or before t is value(k, t) however old it is: no TTL cut-off.
            ttl=timedelta(0),
            schema=[Field(name=f.name, dtype=FEAST_DTYPES[f.dtype]) for f in view.features],
            source=source,
            online=True,
            description=view.description,
            tags={"tessera.kind": view.kind, "tessera.granularity": view.granularity,
                  **{f"tessera.granularity.{window}": g for window, g in view.window_granularity.items()},
                  "tessera.allowed_lateness": view.allowed_lateness,
                  "tessera.freshness_budget": view.freshness_budget},
        )
    services = {}
    for service in definitions.services.values():
        projections = []
        for ref in service.features:
            view_name, _, feature = ref.partition(":")
            fv = views[view_name]
            projections.append(fv if not feature or feature == "*" else fv[[feature]])
        services[service.name] = FeatureService(name=service.name, features=projections,
                                                description=service.description)
    return FeastObjects(entities, views, services, pushes)


def repo_config(settings: Settings) -> RepoConfig:
    """Feast's configuration from ours, so TESSERA_* overrides reach Feast too."""
    return RepoConfig(
        project=settings.feast.project,
        provider="local",
        registry={"registry_type": "file", "path": str(settings.registry_path), "cache_ttl_seconds": 60},
        online_store={"type": "redis", "connection_string": settings.redis.feast_connection_string},
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        repo_path=str(settings.feature_repo),
    )
