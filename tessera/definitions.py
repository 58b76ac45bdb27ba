"""Feature definitions as data: entities, event sources and windowed views.

A view names its source, its key and a list of aggregations (operation, column, windows) and
nothing else. `feature_repo/views.py` declares each view once with these classes; the Feast
objects, the Flink job and the Spark backfill are all compiled from those declarations.
This module imports nothing heavy, so the Flink environment can load the same declarations.
"""
from __future__ import annotations

import importlib.util
import keyword
import sys
import traceback
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Mapping

from tessera.events import EVENT_TYPES, FIELDS as EVENT_FIELDS
from tessera.windows import DAY_MS, format_duration, last_leave, parse_duration

Operation = Literal["count", "sum", "ratio", "distinct_days"]
OPERATIONS = ("count", "sum", "ratio", "distinct_days")
# Event fields a sum can add up (SPEC.md "Events"); the others are strings.
NUMERIC_FIELDS = ("cost", "event_time", "user_id", "ad_id", "campaign_id")
DType = Literal["int64", "float64"]
DECLARATIONS_FILE = "views.py"


class DefinitionError(ValueError):
    """A declaration that cannot be compiled; the message names the view and field."""


def _check_name(owner: str, field_name: str, value: str) -> None:
    if not value.isidentifier() or keyword.iskeyword(value):
        raise DefinitionError(f"{owner}: {field_name}={value!r} must be a lower-case identifier")


@dataclass(frozen=True)
class Entity:
    name: str
    join_key: str
    description: str = ""

    def __post_init__(self) -> None:
        _check_name(f"entity {self.name!r}", "name", self.name)
        _check_name(f"entity {self.name!r}", "join_key", self.join_key)


@dataclass(frozen=True)
class EventSource:
    """A Kafka topic of events and the raw Parquet history the same events land in."""

    name: str
    topic: str
    timestamp_field: str = "event_time"
    description: str = ""


@dataclass(frozen=True)
class Aggregation:
    """One aggregation over one or more windows; each window yields the feature `<name>_<window>`."""

    name: str
    operation: Operation
    windows: tuple[str, ...]
    column: str | None = None
    where: Mapping[str, str] = field(default_factory=dict)
    numerator: str | None = None
    denominator: str | None = None

    @property
    def dtype(self) -> DType:
        return "int64" if self.operation in ("count", "distinct_days") else "float64"

    def window_lengths_ms(self) -> tuple[int, ...]:
        return tuple(parse_duration(w) for w in self.windows)


def _windows(owner: str, windows: object) -> tuple[str, ...]:
    # A bare "5m" would otherwise become the windows "5" and "m".
    if isinstance(windows, str) or not isinstance(windows, (list, tuple)):
        raise DefinitionError(f"aggregation {owner!r}: windows={windows!r} must be a list such as ['5m', '1h']")
    return tuple(windows)


def Count(name: str, windows: list[str], where: Mapping[str, str] | None = None) -> Aggregation:
    """Number of events (matching `where`, equality on event fields) in each window."""
    return Aggregation(name, "count", _windows(name, windows), where=dict(where or {}))


def Sum(name: str, column: str, windows: list[str], where: Mapping[str, str] | None = None) -> Aggregation:
    return Aggregation(name, "sum", _windows(name, windows), column=column, where=dict(where or {}))


def Ratio(name: str, numerator: str, denominator: str, windows: list[str]) -> Aggregation:
    """numerator / denominator of two aggregations of the same view and window; null when 0."""
    return Aggregation(name, "ratio", _windows(name, windows), numerator=numerator, denominator=denominator)


def DistinctDays(name: str, windows: list[str]) -> Aggregation:
    """Number of distinct UTC days with any event."""
    return Aggregation(name, "distinct_days", _windows(name, windows))


@dataclass(frozen=True)
class Feature:
    """One compiled feature: what the engines compute and Feast registers."""

    view: str
    name: str
    dtype: DType
    aggregation: Aggregation
    window_ms: int

    @property
    def ref(self) -> str:
        return f"{self.view}:{self.name}"


@dataclass(frozen=True)
class WindowedView:
    """Aggregates of one entity's events over sliding windows with a leave granularity.

    kind="streaming": the SPEC.md window semantics, computed online by Flink and offline by Spark.
    kind="daily": batch only, one value per UTC day, valid from the end of that day, covering the
    `window` days that ended by then.

    `granularity` is every window's g unless `window_granularity` names another for a window
    ({"24h": "1h"}): an engine keeps one bucket per g of a window per key, so a long window at a
    fine g is most of the job's state (Chronon's hops: 5m below 12h, 1h up to 12 days).
    """

    name: str
    entity: Entity
    source: EventSource
    aggregations: tuple[Aggregation, ...]
    kind: Literal["streaming", "daily"] = "streaming"
    granularity: str = "1m"
    allowed_lateness: str = "10s"
    freshness_budget: str = "5s"
    description: str = ""
    window_granularity: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aggregations", tuple(self.aggregations))
        self._validate()

    @property
    def granularity_ms(self) -> int:
        """The default g, of every window that `window_granularity` does not name."""
        return parse_duration(self.granularity)

    @cached_property
    def window_granularities(self) -> dict[int, int]:
        """Every window length of the view -> its g (the declaration, parsed once)."""
        named = {parse_duration(w): parse_duration(g) for w, g in self.window_granularity.items()}
        return {f.window_ms: named.get(f.window_ms, self.granularity_ms) for f in self.features}

    def granularity_of(self, window_ms: int) -> int:
        """The g of the window of that length."""
        return self.window_granularities.get(window_ms, self.granularity_ms)

    def last_leave(self, event_time_ms: int) -> int:
        """When an event has left every window of the view."""
        return last_leave(event_time_ms, self.window_granularities)

    @property
    def lookback_ms(self) -> int:
        """How long before an instant an event can still count at it (for a daily view, one more day:
        an event enters at the end of its day)."""
        reach = max(w + g for w, g in self.window_granularities.items())
        return reach + (DAY_MS if self.kind == "daily" else 0)

    @property
    def allowed_lateness_ms(self) -> int:
        return parse_duration(self.allowed_lateness)

    @property
    def freshness_budget_ms(self) -> int:
        return parse_duration(self.freshness_budget)

    @property
    def features(self) -> list[Feature]:
        return [
            Feature(self.name, f"{agg.name}_{format_duration(ms)}", agg.dtype, agg, ms)
            for agg in self.aggregations
            for ms in agg.window_lengths_ms()
        ]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def max_window_ms(self) -> int:
        return max(f.window_ms for f in self.features)

    def _validate(self) -> None:
        owner = f"view {self.name!r}"
        if not isinstance(self.name, str):
            raise DefinitionError(f"view {self.name!r}: name must be a string")
        _check_name(owner, "name", self.name)
        if not isinstance(self.entity, Entity):
            raise DefinitionError(f"{owner}: entity={self.entity!r} must be an Entity declared in the repo, "
                                  f"e.g. Entity('user', join_key='user_id')")
        if not isinstance(self.source, EventSource):
            raise DefinitionError(f"{owner}: source={self.source!r} must be an EventSource")
        for label, text in (("granularity", self.granularity), ("allowed_lateness", self.allowed_lateness),
                            ("freshness_budget", self.freshness_budget)):
            if not isinstance(text, str):
                raise DefinitionError(f"{owner}: {label}={text!r} must be a duration string such as '1m'")
        for agg in self.aggregations:
            if not isinstance(agg, Aggregation):
                raise DefinitionError(f"{owner}: aggregations holds {agg!r}, not a Count, Sum, Ratio or DistinctDays")
        if self.kind not in ("streaming", "daily"):
            raise DefinitionError(f"{owner}: kind={self.kind!r} must be 'streaming' or 'daily'")
        for label, text in (("granularity", self.granularity), ("allowed_lateness", self.allowed_lateness),
                            ("freshness_budget", self.freshness_budget)):
            try:
                parse_duration(text)
            except ValueError as err:
                raise DefinitionError(f"{owner}: {label}: {err}") from None
        if self.granularity_ms <= 0:
            raise DefinitionError(f"{owner}: granularity={self.granularity!r} must be longer than 0")
        if self.kind == "daily" and self.granularity_ms != DAY_MS:
            raise DefinitionError(f"{owner}: a daily view has granularity '1d', not {self.granularity!r}")
        if not self.aggregations:
            raise DefinitionError(f"{owner}: aggregations is empty")
        by_name = {}
        for agg in self.aggregations:
            where = f"{owner}, aggregation {agg.name!r}"
            _check_name(where, "name", agg.name)
            if agg.name in by_name:
                raise DefinitionError(f"{where}: declared twice")
            by_name[agg.name] = agg
            if not agg.windows:
                raise DefinitionError(f"{where}: windows is empty")
            for w in agg.windows:
                try:
                    length = parse_duration(w)
                except ValueError as err:
                    raise DefinitionError(f"{where}: windows: {err}") from None
                if length <= 0:
                    raise DefinitionError(f"{where}: window {w!r} must be longer than 0")
                if length % self.granularity_ms and self.kind == "daily":
                    raise DefinitionError(f"{where}: window {w!r} is not a whole number of days")
            if agg.operation not in OPERATIONS:
                raise DefinitionError(f"{where}: operation={agg.operation!r} must be one of {', '.join(OPERATIONS)}")
            if agg.operation == "sum" and not agg.column:
                raise DefinitionError(f"{where}: a sum needs column=")
            if agg.operation == "sum" and agg.column not in NUMERIC_FIELDS:
                raise DefinitionError(f"{where}: column={agg.column!r} is not a numeric field of "
                                      f"{self.source.name} events ({', '.join(NUMERIC_FIELDS)})")
            for key, value in agg.where.items():
                if key not in EVENT_FIELDS:
                    raise DefinitionError(f"{where}: where={{{key!r}: ...}} names no field of {self.source.name} "
                                          f"events ({', '.join(EVENT_FIELDS)})")
                if key == "event_type" and value not in EVENT_TYPES:
                    raise DefinitionError(f"{where}: where={{'event_type': {value!r}}} is not an event type "
                                          f"({', '.join(EVENT_TYPES)}): it would never match")
        for agg in self.aggregations:
            if agg.operation != "ratio":
                continue
            for part in (agg.numerator, agg.denominator):
                other = by_name.get(part or "")
                where = f"{owner}, ratio {agg.name!r}"
                if other is None or other.operation == "ratio":
                    field_name = "numerator" if part == agg.numerator else "denominator"
                    additive = ", ".join(n for n, a in by_name.items() if a.operation != "ratio")
                    raise DefinitionError(f"{where}: {field_name}={part!r} is not a count or sum of this view "
                                          f"(it has {additive})")
                missing = set(agg.window_lengths_ms()) - set(other.window_lengths_ms())
                if missing:
                    raise DefinitionError(
                        f"{where}: {part!r} has no window {', '.join(format_duration(m) for m in sorted(missing))}")
        names = [f.name for f in self.features]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DefinitionError(f"{owner}: feature name {', '.join(map(repr, twice))} comes out twice (windows "
                                  f"such as '60m' and '1h' name the same feature)")
        self._validate_window_granularity(owner)

    def _validate_window_granularity(self, owner: str) -> None:
        if not isinstance(self.window_granularity, Mapping):
            raise DefinitionError(f"{owner}: window_granularity={self.window_granularity!r} must be a dict of "
                                  f"window -> granularity, such as {{'24h': '1h'}}")
        if self.window_granularity and self.kind == "daily":
            raise DefinitionError(f"{owner}: window_granularity: a daily view's windows all have granularity '1d'")
        lengths = {f.window_ms for f in self.features}
        named: set[int] = set()
        for window, g in self.window_granularity.items():
            where = f"{owner}, window_granularity[{window!r}]"
            try:
                window_ms, g_ms = parse_duration(str(window)), parse_duration(str(g))
            except ValueError as err:
                raise DefinitionError(f"{where}: {err}") from None
            if window_ms not in lengths:
                declared = ", ".join(format_duration(w) for w in sorted(lengths))
                raise DefinitionError(f"{where}: the view has no such window (it has {declared})")
            if window_ms in named:
                raise DefinitionError(f"{where}: names a window already given a granularity")
            named.add(window_ms)
            if not 0 < g_ms <= window_ms:
                raise DefinitionError(f"{where}: granularity {g!r} must be longer than 0 and at most the window")


@dataclass(frozen=True)
class FeatureServiceDef:
    """A named set of features a model asks for: 'view' (all its features) or 'view:feature'."""

    name: str
    features: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class Definitions:
    """Everything declared in a feature repository, by name."""

    entities: dict[str, Entity]
    sources: dict[str, EventSource]
    views: dict[str, WindowedView]
    services: dict[str, FeatureServiceDef]
    path: Path

    def view(self, name: str) -> WindowedView:
        try:
            return self.views[name]
        except KeyError:
            raise DefinitionError(f"no feature view {name!r} in {self.path}; known: {', '.join(self.views)}") from None

    def streaming_views(self) -> list[WindowedView]:
        return [v for v in self.views.values() if v.kind == "streaming"]

    def views_of(self, entity: str) -> list[WindowedView]:
        return [v for v in self.views.values() if v.entity.name == entity]

    def resolve_refs(self, refs: list[str]) -> list[Feature]:
        """'view' or 'view:feature' -> compiled features, with an error naming an unknown one."""
        out: list[Feature] = []
        for ref in refs:
            view_name, _, feature_name = ref.partition(":")
            view = self.view(view_name)
            if not feature_name or feature_name == "*":
                out.extend(view.features)
                continue
            match = [f for f in view.features if f.name == feature_name]
            if not match:
                raise DefinitionError(f"view {view_name!r} has no feature {feature_name!r}")
            out.extend(match)
        return out


def load_definitions(repo: Path) -> Definitions:
    """Import `<repo>/views.py` and collect what it declares. Errors name the file."""
    path = (repo / DECLARATIONS_FILE).resolve()
    if not path.is_file():
        raise DefinitionError(f"{path}: no declarations file (expected {DECLARATIONS_FILE} in the feature repo)")
    module_name = f"_tessera_views_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except DefinitionError as err:
        raise DefinitionError(f"{_where(path, err)}: {err}") from None
    except SyntaxError as err:  # its own line number, not a frame's
        raise DefinitionError(f"{path}:{err.lineno}: SyntaxError: {err.msg}") from None
    except Exception as err:  # a name or type error in user code: say where it is
        raise DefinitionError(f"{_where(path, err)}: {type(err).__name__}: {err}") from None
    finally:
        sys.modules.pop(module_name, None)
    objects = list(vars(module).values())
    entities = _unique(path, "entity", [e for e in objects if isinstance(e, Entity)])
    views = _unique(path, "feature view", [v for v in objects if isinstance(v, WindowedView)])
    services = _unique(path, "feature service", [s for s in objects if isinstance(s, FeatureServiceDef)])
    for view in views.values():
        if entities.get(view.entity.name) != view.entity:
            raise DefinitionError(f"{path}: view {view.name!r}: entity={view.entity.name!r} is not declared in "
                                  f"{path.name} (declared: {', '.join(entities) or 'none'})")
    definitions = Definitions(
        entities=entities,
        sources={s.name: s for s in objects if isinstance(s, EventSource)},
        views=views,
        services=services,
        path=path,
    )
    for service in services.values():
        if isinstance(service.features, str):
            raise DefinitionError(f"{path}: feature service {service.name!r}: features={service.features!r} must "
                                  f"be a tuple such as ('user_ad_activity',)")
        try:
            definitions.resolve_refs(list(service.features))
        except DefinitionError as err:
            raise DefinitionError(f"{path}: feature service {service.name!r}: {err}") from None
    return definitions


def _where(path: Path, err: BaseException) -> str:
    """`path:line` of the innermost frame of the error inside the declarations file."""
    lines = [frame.lineno for frame in traceback.extract_tb(err.__traceback__) if Path(frame.filename) == path]
    return f"{path}:{lines[-1]}" if lines else str(path)


def _unique(path: Path, kind: str, objects: list[Any]) -> dict[str, Any]:
    """By name; two different declarations under one name would silently shadow each other."""
    out: dict[str, Any] = {}
    for obj in objects:
        if obj.name in out and out[obj.name] is not obj:
            raise DefinitionError(f"{path}: two {kind} declarations are named {obj.name!r}")
        out[obj.name] = obj
    return out
