"""feature_repo/views.py declares exactly the features of SPEC.md "Features", and malformed
declarations fail with an error that names the file, the view and the field."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tessera.definitions import (
    Count,
    DefinitionError,
    Definitions,
    Entity,
    EventSource,
    Ratio,
    Sum,
    WindowedView,
    load_definitions,
)

ROOT = Path(__file__).resolve().parents[2]
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# Copied by hand from SPEC.md "Features": the independent oracle.
SPEC_FEATURES: dict[str, list[str]] = {
    "user_ad_activity": (
        "impressions_5m, impressions_1h, impressions_24h, clicks_5m, clicks_1h, clicks_24h, "
        "conversions_1h, conversions_24h, spend_1h, spend_24h, ctr_1h, ctr_24h"
    ).split(", "),
    "campaign_delivery": "impressions_1h, clicks_1h, conversions_24h, spend_1h, spend_24h".split(", "),
    "user_profile_daily": "impressions_30d, clicks_30d, spend_30d, active_days_30d".split(", "),
}
SPEC_KEYS = {"user_ad_activity": "user_id", "campaign_delivery": "campaign_id", "user_profile_daily": "user_id"}
SPEC_WINDOW_MS = {"5m": 5 * MINUTE, "1h": HOUR, "24h": DAY, "30d": 30 * DAY}


@pytest.fixture(scope="module")
def repo() -> Definitions:
    return load_definitions(ROOT / "feature_repo")


# --- the shipped feature repo -----------------------------------------------------------------

def test_views_are_exactly_the_spec_views(repo: Definitions) -> None:
    assert set(repo.views) == set(SPEC_FEATURES)


@pytest.mark.parametrize("view", sorted(SPEC_FEATURES))
def test_view_has_exactly_the_spec_features(repo: Definitions, view: str) -> None:
    names = repo.view(view).feature_names
    assert sorted(names) == sorted(SPEC_FEATURES[view])
    assert len(names) == len(set(names))


@pytest.mark.parametrize("view", sorted(SPEC_FEATURES))
def test_view_is_keyed_as_the_spec_says(repo: Definitions, view: str) -> None:
    assert repo.view(view).entity.join_key == SPEC_KEYS[view]


def test_view_kinds(repo: Definitions) -> None:
    assert repo.view("user_ad_activity").kind == "streaming"
    assert repo.view("campaign_delivery").kind == "streaming"
    assert repo.view("user_profile_daily").kind == "daily"
    assert {v.name for v in repo.streaming_views()} == {"user_ad_activity", "campaign_delivery"}
    assert {v.name for v in repo.views_of("user")} == {"user_ad_activity", "user_profile_daily"}
    assert {v.name for v in repo.views_of("campaign")} == {"campaign_delivery"}


def test_streaming_views_use_the_spec_defaults(repo: Definitions) -> None:
    for view in repo.streaming_views():
        assert view.granularity_ms == MINUTE, view.name  # SPEC: granularity g defaults to 1 minute
        assert view.allowed_lateness_ms == 10_000, view.name  # SPEC: L defaults to 10 s
        # The 24h windows leave by the hour (Chronon's hop for windows of 12 h and longer), the rest by the minute.
        assert {w: view.granularity_of(w) for w in {f.window_ms for f in view.features}} == {
            w: HOUR if w == DAY else MINUTE for w in {f.window_ms for f in view.features}}, view.name
    assert repo.view("user_profile_daily").granularity_ms == DAY


def test_window_granularity_sets_leave_lookback_and_last_leave() -> None:
    view = make_view(aggregations=(Count("impressions", ["5m", "24h"], where={"event_type": "impression"}),),
                     window_granularity={"24h": "1h"})
    t = 10 * DAY + 30 * MINUTE + 1
    assert view.granularity_of(5 * MINUTE) == MINUTE and view.granularity_of(DAY) == HOUR
    assert view.last_leave(t) == 11 * DAY + HOUR  # ceil_1h(t + 24h), later than ceil_1m(t + 5m)
    assert view.lookback_ms == DAY + HOUR


@pytest.mark.parametrize("view", sorted(SPEC_FEATURES))
def test_feature_types_and_window_lengths(repo: Definitions, view: str) -> None:
    for feature in repo.view(view).features:
        prefix, _, window = feature.name.rpartition("_")
        expected_dtype = "float64" if prefix in ("ctr", "spend") else "int64"
        assert feature.dtype == expected_dtype, feature.name
        assert feature.window_ms == SPEC_WINDOW_MS[window], feature.name
        assert feature.ref == f"{view}:{feature.name}"


def test_ratio_and_count_dtypes_explicitly(repo: Definitions) -> None:
    by_ref = {f.ref: f for f in repo.resolve_refs(list(SPEC_FEATURES))}
    assert by_ref["user_ad_activity:ctr_1h"].dtype == "float64"
    assert by_ref["user_ad_activity:ctr_24h"].dtype == "float64"
    assert by_ref["user_ad_activity:impressions_5m"].dtype == "int64"
    assert by_ref["campaign_delivery:conversions_24h"].dtype == "int64"
    assert by_ref["user_profile_daily:active_days_30d"].dtype == "int64"


def test_ctr_is_clicks_over_impressions(repo: Definitions) -> None:
    ctr = next(f for f in repo.view("user_ad_activity").features if f.name == "ctr_1h")
    assert ctr.aggregation.operation == "ratio"
    assert (ctr.aggregation.numerator, ctr.aggregation.denominator) == ("clicks", "impressions")


def test_feature_services_resolve(repo: Definitions) -> None:
    for service in repo.services.values():
        assert repo.resolve_refs(list(service.features)), service.name


# --- resolve_refs -----------------------------------------------------------------------------

def test_resolve_a_single_feature(repo: Definitions) -> None:
    [feature] = repo.resolve_refs(["user_ad_activity:ctr_24h"])
    assert (feature.view, feature.name, feature.window_ms) == ("user_ad_activity", "ctr_24h", DAY)


def test_resolve_a_whole_view_in_both_spellings(repo: Definitions) -> None:
    whole = [f.name for f in repo.resolve_refs(["campaign_delivery"])]
    star = [f.name for f in repo.resolve_refs(["campaign_delivery:*"])]
    assert sorted(whole) == sorted(SPEC_FEATURES["campaign_delivery"])
    assert star == whole


def test_resolve_keeps_request_order(repo: Definitions) -> None:
    refs = ["user_profile_daily:spend_30d", "user_ad_activity:clicks_5m", "campaign_delivery:spend_1h"]
    assert [f.ref for f in repo.resolve_refs(refs)] == refs


def test_resolve_unknown_view(repo: Definitions) -> None:
    with pytest.raises(DefinitionError, match="no_such_view"):
        repo.resolve_refs(["user_ad_activity:ctr_1h", "no_such_view:ctr_1h"])


def test_resolve_unknown_feature(repo: Definitions) -> None:
    with pytest.raises(DefinitionError, match="ctr_5m") as info:
        repo.resolve_refs(["user_ad_activity:ctr_5m"])
    assert "user_ad_activity" in str(info.value)


def test_resolve_does_not_cross_views(repo: Definitions) -> None:
    # campaign_delivery has no 5-minute impressions; the user view's must not be returned for it
    with pytest.raises(DefinitionError, match="impressions_5m"):
        repo.resolve_refs(["campaign_delivery:impressions_5m"])


# --- malformed declarations, built directly ---------------------------------------------------

USER = Entity("user", join_key="user_id")
EVENTS = EventSource("ad_events", topic="ad_events")


def make_view(name: str = "my_view", **kwargs: Any) -> WindowedView:
    kwargs.setdefault("aggregations", (Count("impressions", ["1h"], where={"event_type": "impression"}),))
    return WindowedView(name=name, entity=USER, source=EVENTS, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"aggregations": (Count("impressions", ["5 minutes"]),)}, "impressions", id="bad-window"),
        pytest.param({"aggregations": (Count("impressions", ["1h"]), Ratio("ctr", "clicks", "impressions", ["1h"]))},
                     "clicks", id="ratio-over-missing-aggregation"),
        pytest.param({"aggregations": (Count("clicks", ["1h"]), Count("impressions", ["1h"]),
                                       Ratio("ctr", "clicks", "impressions", ["24h"]))},
                     "ctr", id="ratio-over-missing-window"),
        pytest.param({"aggregations": (Count("impressions", ["1h"]), Count("impressions", ["24h"]))},
                     "impressions", id="duplicate-aggregation"),
        pytest.param({"aggregations": ()}, "aggregations", id="empty-aggregations"),
        pytest.param({"aggregations": (Count("impressions", []),)}, "windows", id="empty-windows"),
        pytest.param({"granularity": "1 minute"}, "granularity", id="bad-granularity"),
        pytest.param({"granularity": "0m"}, "granularity", id="zero-granularity"),
        pytest.param({"aggregations": (Count("impressions", ["0m"]),)}, "impressions", id="zero-window"),
        pytest.param({"kind": "daily", "granularity": "1h", "aggregations": (Count("impressions", ["30d"]),)},
                     "granularity", id="daily-view-not-daily-granularity"),
        pytest.param({"kind": "daily", "granularity": "1d", "aggregations": (Count("impressions", ["36h"]),)},
                     "36h", id="daily-window-not-whole-days"),
        pytest.param({"allowed_lateness": "ten seconds"}, "allowed_lateness", id="bad-lateness"),
        pytest.param({"aggregations": (Sum("spend", column="", windows=["1h"]),)}, "spend", id="sum-without-column"),
        pytest.param({"kind": "hourly"}, "kind", id="unknown-kind"),
        pytest.param({"aggregations": (Count("impressions", ["5m", "300s"]),)}, "my_view",
                     id="two-windows-same-feature-name"),
        pytest.param({"window_granularity": {"2h": "1h"}}, "window_granularity", id="granularity-of-no-window"),
        pytest.param({"window_granularity": {"1h": "1 hour"}}, "window_granularity", id="bad-window-granularity"),
        pytest.param({"window_granularity": {"1h": "2h"}}, "window_granularity", id="granularity-over-window"),
        pytest.param({"window_granularity": {"1h": "1m", "60m": "5m"}}, "window_granularity",
                     id="window-given-two-granularities"),
        pytest.param({"window_granularity": ["1h"]}, "window_granularity", id="window-granularity-not-a-dict"),
        pytest.param({"kind": "daily", "granularity": "1d", "aggregations": (Count("impressions", ["30d"]),),
                      "window_granularity": {"30d": "1d"}}, "window_granularity", id="daily-window-granularity"),
    ],
)
def test_malformed_view_names_view_and_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(DefinitionError) as info:
        make_view(**kwargs)
    message = str(info.value)
    assert "my_view" in message
    assert field in message


@pytest.mark.parametrize("name", ["My View", "class", "1view", "view-name"])
def test_view_name_must_be_an_identifier(name: str) -> None:
    with pytest.raises(DefinitionError, match="name"):
        make_view(name=name)


def test_a_well_formed_custom_view_compiles() -> None:
    view = make_view(aggregations=(
        Count("impressions", ["90s", "2h"], where={"event_type": "impression"}),
        Sum("spend", column="cost", windows=["2h"]),
        Ratio("cost_per_impression", "spend", "impressions", ["2h"]),
    ))
    assert view.feature_names == ["impressions_90s", "impressions_2h", "spend_2h", "cost_per_impression_2h"]
    assert view.max_window_ms == 2 * HOUR


# --- malformed declarations in a views.py file ------------------------------------------------

HEADER = """\
from tessera.definitions import Count, Entity, EventSource, FeatureServiceDef, Ratio, Sum, WindowedView
user = Entity("user", join_key="user_id")
events = EventSource("ad_events", topic="ad_events")
"""


def write_repo(tmp_path: Path, body: str) -> Path:
    (tmp_path / "views.py").write_text(HEADER + textwrap.dedent(body))
    return tmp_path


def load_error(repo: Path) -> str:
    with pytest.raises(DefinitionError) as info:
        load_definitions(repo)
    message = str(info.value)
    assert str((repo / "views.py").resolve()) in message, "the error names the declarations file"
    return message


def test_file_with_a_bad_window_names_file_view_and_window(tmp_path: Path) -> None:
    message = load_error(write_repo(tmp_path, """
        broken = WindowedView("broken_view", entity=user, source=events,
                              aggregations=(Count("clicks", ["1hour"]),))
    """))
    assert "broken_view" in message and "clicks" in message and "1hour" in message


def test_file_with_a_ratio_over_a_missing_aggregation(tmp_path: Path) -> None:
    message = load_error(write_repo(tmp_path, """
        broken = WindowedView("ratio_view", entity=user, source=events,
                              aggregations=(Count("clicks", ["1h"]), Ratio("ctr", "clicks", "views", ["1h"])))
    """))
    assert "ratio_view" in message and "ctr" in message and "views" in message


def test_file_with_a_duplicate_aggregation(tmp_path: Path) -> None:
    message = load_error(write_repo(tmp_path, """
        broken = WindowedView("dup_view", entity=user, source=events,
                              aggregations=(Count("clicks", ["1h"]), Sum("clicks", "cost", ["24h"])))
    """))
    assert "dup_view" in message and "clicks" in message


def test_file_with_empty_aggregations(tmp_path: Path) -> None:
    message = load_error(write_repo(tmp_path, """
        broken = WindowedView("empty_view", entity=user, source=events, aggregations=())
    """))
    assert "empty_view" in message and "aggregations" in message


def test_file_with_a_bad_granularity(tmp_path: Path) -> None:
    message = load_error(write_repo(tmp_path, """
        broken = WindowedView("grain_view", entity=user, source=events, granularity="1 min",
                              aggregations=(Count("clicks", ["1h"]),))
    """))
    assert "grain_view" in message and "granularity" in message


def test_file_with_a_service_naming_an_unknown_feature(tmp_path: Path) -> None:
    message = load_error(write_repo(tmp_path, """
        ok = WindowedView("ok_view", entity=user, source=events, aggregations=(Count("clicks", ["1h"]),))
        svc = FeatureServiceDef("my_service", features=("ok_view:clicks_24h",))
    """))
    assert "my_service" in message and "clicks_24h" in message


def test_file_with_a_python_error_names_the_file(tmp_path: Path) -> None:
    message = load_error(write_repo(tmp_path, "oops = undefined_name\n"))
    assert "undefined_name" in message


def test_repo_without_views_py(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="views.py"):
        load_definitions(tmp_path)


def test_a_valid_file_loads(tmp_path: Path) -> None:
    defs = load_definitions(write_repo(tmp_path, """
        ok = WindowedView("ok_view", entity=user, source=events, aggregations=(Count("clicks", ["1h", "24h"]),))
        svc = FeatureServiceDef("my_service", features=("ok_view:clicks_24h",))
    """))
    assert list(defs.views) == ["ok_view"]
    assert defs.view("ok_view").feature_names == ["clicks_1h", "clicks_24h"]
    assert [f.ref for f in defs.resolve_refs(list(defs.services["my_service"].features))] == ["ok_view:clicks_24h"]
    assert set(defs.entities) == {"user"} and set(defs.sources) == {"ad_events"}
