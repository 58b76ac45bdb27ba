"""The compiled lookup plan: which Redis hash fields answer which request, built once per registry.

Everything a request needs that does not depend on the id (Feast's murmur3 field names, the
`_ts:<view>` fields, value types, freshness budgets, feature services) is computed here when the
registry is (re)loaded, so the hot path only serializes the entity key and issues one HMGET.
Field names and key layout come from Feast's own helpers, so they match what Feast writes.
"""
from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable

from feast import Entity, FeatureService, FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3, compute_versioned_name
from feast.infra.registry import proto_registry_utils
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.value_type import ValueType

from tessera.config import Settings
from tessera.definitions import DefinitionError, Definitions, load_definitions
from tessera.windows import parse_duration

log = logging.getLogger("tessera.serving")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# The registry tag feast_objects.py writes; used when a registered view is not in the definitions.
BUDGET_TAG = "tessera.freshness_budget"
SELECTION_CACHE_SIZE = 1024
DUMMY_ENTITY = "__dummy"  # what Feast registers for entity-less views


class SelectionError(ValueError):
    """A request names something the registry does not serve; `kind` says what, `name` which."""

    def __init__(self, kind: str, name: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.name = kind, name


class MalformedId(ValueError):
    """An id that is not a value of the entity's join key type."""


@dataclass(frozen=True)
class FeaturePlan:
    ref: str  # "view:feature", the key of the value in every response
    view: str
    name: str
    field: bytes  # Feast's hash field: murmur3 of "<online view name>:<feature>"
    value_type: ValueType


@dataclass(frozen=True)
class ViewPlan:
    name: str
    entity: str
    features: tuple[FeaturePlan, ...]
    ts_field: bytes  # Feast's `_ts:<online view name>` field: the row's event timestamp, our as_of
    freshness_budget_ms: int | None  # None: no budget known, a present row is always fresh


@dataclass(frozen=True)
class EntityPlan:
    name: str
    join_key: str
    value_type: ValueType
    views: tuple[str, ...]
    key_suffix: bytes  # the project name Feast appends to every serialized entity key
    key_version: int

    def parse_id(self, raw: object) -> int | str:
        """A path segment or JSON value -> the join key value, or MalformedId saying why."""
        if self.value_type in (ValueType.INT64, ValueType.INT32):
            low, high = (INT64_MIN, INT64_MAX) if self.value_type == ValueType.INT64 else (INT32_MIN, INT32_MAX)
            if isinstance(raw, bool) or not isinstance(raw, (int, str)):
                raise MalformedId(f"{self.join_key} must be an integer, not {type(raw).__name__}")
            if isinstance(raw, str):
                text = raw[1:] if raw[:1] == "-" else raw
                # isdecimal() also accepts non-ASCII digits, which int() would silently take.
                if not (text.isascii() and text.isdecimal()) or len(text) > 19:
                    raise MalformedId(f"{self.join_key} must be an integer, not {raw!r}")
                raw = int(raw)
            if not low <= raw <= high:
                raise MalformedId(f"{self.join_key} {raw} is out of range for {self.value_type.name}")
            return raw
        if not isinstance(raw, str) or not raw:
            raise MalformedId(f"{self.join_key} must be a non-empty string")
        return raw

    def feast_redis_key(self, entity_id: int | str) -> bytes:
        """Feast's Redis key for one entity: its serialized entity key followed by the project."""
        if self.value_type == ValueType.INT64:
            value = ValueProto(int64_val=entity_id)
        elif self.value_type == ValueType.INT32:
            value = ValueProto(int32_val=entity_id)
        else:
            value = ValueProto(string_val=entity_id)
        key = EntityKeyProto(join_keys=[self.join_key], entity_values=[value])
        return serialize_entity_key(key, entity_key_serialization_version=self.key_version) + self.key_suffix

    @cached_property
    def _fixed_width_key(self) -> tuple[bytes, struct.Struct] | None:
        """(the bytes before the id, the id's packing) when an integer id's key is those bytes, the
        packed id and the suffix; checked against Feast's own encoding here, else None."""
        if self.value_type not in (ValueType.INT64, ValueType.INT32):
            return None
        packing = struct.Struct("<q" if self.value_type == ValueType.INT64 else "<i")
        probe = self.feast_redis_key(0)
        head = probe[:len(probe) - len(self.key_suffix) - packing.size]
        for sample in (0, 1, -1, 2**31 - 1, -(2**31), 123_456_789):
            if head + packing.pack(sample) + self.key_suffix != self.feast_redis_key(sample):
                return None  # a layout this shortcut does not know: Feast's encoder every time
        return head, packing

    def redis_key(self, entity_id: int | str) -> bytes:
        """Feast's Redis key for one entity (`feast_redis_key`), without building protobufs per id."""
        fixed = self._fixed_width_key
        if fixed is None or not isinstance(entity_id, int):
            return self.feast_redis_key(entity_id)
        head, packing = fixed
        return head + packing.pack(entity_id) + self.key_suffix


@dataclass(frozen=True)
class Selection:
    """What one kind of request reads: the features, their views, and the HMGET field list
    (feature fields first, then one `_ts:` field per view)."""

    entity: EntityPlan
    features: tuple[FeaturePlan, ...]
    views: tuple[ViewPlan, ...]
    fields: tuple[bytes, ...]

    @classmethod
    def of(cls, entity: EntityPlan, features: Iterable[FeaturePlan], views: dict[str, ViewPlan]) -> "Selection":
        chosen = tuple(dict.fromkeys(features))  # de-duplicated, request order kept
        involved = tuple(views[name] for name in dict.fromkeys(f.view for f in chosen))
        fields = tuple(f.field for f in chosen) + tuple(v.ts_field for v in involved)
        return cls(entity, chosen, involved, fields)


@dataclass(frozen=True)
class RegistryInfo:
    path: str
    version_id: str
    last_updated: str
    loaded_at_ms: int


@dataclass
class LookupPlan:
    project: str
    entities: dict[str, EntityPlan]
    views: dict[str, ViewPlan]
    services: dict[str, tuple[FeaturePlan, ...]]
    registry: RegistryInfo
    warnings: list[str] = field(default_factory=list)
    _selections: dict[tuple[str, str | None, str | None], Selection] = field(default_factory=dict, repr=False)

    def select(self, entity: str, features: str | None, feature_service: str | None) -> Selection:
        """The selection for a request's parameters, compiled on first use and then cached."""
        key = (entity, features, feature_service)
        selection = self._selections.get(key)
        if selection is None:
            selection = self._compile_selection(entity, features, feature_service)
            if len(self._selections) >= SELECTION_CACHE_SIZE:
                self._selections.clear()  # bounded: arbitrary feature lists cannot grow memory
            self._selections[key] = selection
        return selection

    def _compile_selection(self, entity_name: str, features: str | None, service: str | None) -> Selection:
        entity = self.entities.get(entity_name)
        if entity is None:
            raise SelectionError("unknown_entity", entity_name,
                                 f"unknown entity {entity_name!r}; known: {', '.join(sorted(self.entities))}")
        if features is not None and service is not None:
            raise SelectionError("conflicting_selectors", "features",
                                 "give either ?features= or ?feature_service=, not both")
        if service is not None:
            chosen = self.services.get(service)
            if chosen is None:
                raise SelectionError("unknown_feature_service", service,
                                     f"unknown feature service {service!r}; known: {', '.join(sorted(self.services))}")
            for feature in chosen:
                if self.views[feature.view].entity != entity.name:
                    raise SelectionError(
                        "wrong_entity", service,
                        f"feature service {service!r} reads view {feature.view!r} of entity "
                        f"{self.views[feature.view].entity!r}, not {entity.name!r}")
            return Selection.of(entity, chosen, self.views)
        if features is None:
            return Selection.of(entity, (f for v in entity.views for f in self.views[v].features), self.views)
        chosen_features: list[FeaturePlan] = []
        for ref in (part.strip() for part in features.split(",")):
            if not ref:
                continue
            chosen_features.extend(self._resolve_ref(entity, ref))
        if not chosen_features:
            raise SelectionError("unknown_feature", features, "?features= names no feature")
        return Selection.of(entity, chosen_features, self.views)

    def _resolve_ref(self, entity: EntityPlan, ref: str) -> tuple[FeaturePlan, ...]:
        view_name, _, feature_name = ref.partition(":")
        view = self.views.get(view_name)
        if view is None:
            raise SelectionError("unknown_feature", ref, f"unknown feature {ref!r}: no feature view {view_name!r}; "
                                                         f"{entity.name} views: {', '.join(entity.views)}")
        if view.entity != entity.name:
            raise SelectionError("unknown_feature", ref, f"feature {ref!r} belongs to entity {view.entity!r}, "
                                                         f"not {entity.name!r}")
        if not feature_name or feature_name == "*":
            return view.features
        for feature in view.features:
            if feature.name == feature_name:
                return (feature,)
        raise SelectionError("unknown_feature", ref, f"unknown feature {ref!r}: view {view_name!r} has "
                                                     f"{', '.join(f.name for f in view.features)}")


# --- building a plan from the registry and the definitions ---------------------------------------

def _entity_value_type(entity: Entity, views: list[FeatureView]) -> ValueType:
    if entity.value_type != ValueType.UNKNOWN:
        return entity.value_type
    for view in views:  # entities declared without a type take it from the views' entity columns
        for column in view.entity_columns:
            if column.name == entity.join_key:
                return column.dtype.to_value_type()
    return ValueType.UNKNOWN


def _budget_ms(view: FeatureView, definitions: Definitions | None) -> int | None:
    if definitions is not None and view.name in definitions.views:
        return definitions.views[view.name].freshness_budget_ms
    tag = view.tags.get(BUDGET_TAG)
    return parse_duration(tag) if tag else None


def compile_plan(registry_proto: RegistryProto, project: str, definitions: Definitions | None,
                 key_version: int = 3, versioned_online_names: bool = False, path: str = "") -> LookupPlan:
    """The plan for one registry snapshot. Views Feast could not read online by one entity key
    (offline-only, or keyed by several entities) are left out, each with a warning."""
    warnings: list[str] = []
    feast_entities: list[Entity] = proto_registry_utils.list_entities(registry_proto, project, None)
    feast_views: list[FeatureView] = proto_registry_utils.list_feature_views(registry_proto, project, None)
    feast_services: list[FeatureService] = proto_registry_utils.list_feature_services(registry_proto, project, None)

    entity_by_name = {e.name: e for e in feast_entities}
    views: dict[str, ViewPlan] = {}
    for fv in feast_views:
        if not fv.online:
            warnings.append(f"view {fv.name!r} is offline-only: not served")
            continue
        entity_names = [e for e in fv.entities if e != DUMMY_ENTITY]
        if len(entity_names) != 1 or entity_names[0] not in entity_by_name:
            warnings.append(f"view {fv.name!r} is keyed by {entity_names or 'no entity'}: only single-entity "
                            f"views are served")
            continue
        online_name = compute_versioned_name(fv, versioned_online_names)
        features = tuple(
            FeaturePlan(f"{fv.name}:{f.name}", fv.name, f.name, _mmh3(f"{online_name}:{f.name}"),
                        f.dtype.to_value_type())
            for f in fv.features)
        budget = _budget_ms(fv, definitions)
        if budget is None:
            warnings.append(f"view {fv.name!r} has no freshness budget in the definitions or its tags: "
                            f"present rows always count as fresh")
        views[fv.name] = ViewPlan(fv.name, entity_names[0], features, f"_ts:{online_name}".encode(), budget)

    suffix = project.encode("utf-8")
    entities: dict[str, EntityPlan] = {}
    for entity in feast_entities:
        if entity.name == DUMMY_ENTITY:
            continue
        own_views = [fv for fv in feast_views if fv.name in views and views[fv.name].entity == entity.name]
        value_type = _entity_value_type(entity, own_views)
        if value_type not in (ValueType.INT64, ValueType.INT32, ValueType.STRING):
            warnings.append(f"entity {entity.name!r} has join key type {value_type.name}: not served")
            continue
        entities[entity.name] = EntityPlan(entity.name, entity.join_key, value_type,
                                           tuple(fv.name for fv in own_views), suffix, key_version)
    views = {name: v for name, v in views.items() if v.entity in entities}

    services: dict[str, tuple[FeaturePlan, ...]] = {}
    for service in feast_services:
        chosen: list[FeaturePlan] = []
        for projection in service.feature_view_projections:
            view = views.get(projection.name)
            if view is None:
                warnings.append(f"feature service {service.name!r} reads view {projection.name!r}, which is not "
                                f"served: service left out")
                break
            wanted = {f.name for f in projection.features}
            chosen.extend(f for f in view.features if not wanted or f.name in wanted)
        else:
            services[service.name] = tuple(chosen)

    last_updated = registry_proto.last_updated.ToJsonString() if registry_proto.HasField("last_updated") else ""
    info = RegistryInfo(path, registry_proto.version_id, last_updated, int(time.time() * 1000))
    return LookupPlan(project, entities, views, services, info, warnings)


def plan_loader(settings: Settings) -> Callable[[], LookupPlan]:
    """A function that reads the registry file and the definitions and compiles a plan.

    It runs off the event loop (at start and on every registry change). The definitions give the
    freshness budgets; when they cannot be loaded the registry's tags (compiled from the same
    definitions at `feast apply`) stand in, so a broken views.py never takes serving down.
    """
    from tessera.feast_objects import repo_config

    config = repo_config(settings)
    registry_path = Path(config.registry.path)
    versioned = bool(getattr(config.registry, "enable_online_feature_view_versioning", False))

    def load() -> LookupPlan:
        proto = RegistryProto.FromString(registry_path.read_bytes())
        try:
            definitions: Definitions | None = load_definitions(settings.feature_repo)
        except DefinitionError as err:
            log.warning("freshness budgets from the registry tags: definitions did not load: %s", err)
            definitions = None
        return compile_plan(proto, settings.feast.project, definitions, config.entity_key_serialization_version,
                            versioned, str(registry_path))

    return load
