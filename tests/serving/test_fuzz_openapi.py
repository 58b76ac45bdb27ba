"""Schemathesis against the API's own OpenAPI spec, with real Redis and a real Feast registry.

Every operation in /openapi.json gets generated requests, valid ones and invalid ones (ids of
every type and size, odd feature lists, unknown entities, broken bodies). Each answer must be no
5xx, and its status, content type, headers and body must be what the spec says. Examples are
bounded so that the run stays within about a minute on two busy cores.

(Schemathesis's pytest fixture loader does not run on pytest 9, so each operation's strategy is
driven by hypothesis here directly; the checks are schemathesis's own.)
"""
from __future__ import annotations

from typing import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from serving.app import create_app
from tests.serving.stack import ServingStack

EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 30}
# Which entity names, feature refs, services and id spellings are valid depends on the registry,
# which the server reloads while running; the spec deliberately does not enumerate them. So a
# schema-valid request may well be an unknown feature (400) or a malformed id (422): the one
# check that calls that a failure is left out. Every other check runs (no 5xx; status codes,
# content types, headers and bodies as documented; schema-invalid requests refused with a 4xx).
EXCLUDED = [positive_data_acceptance]


@pytest.fixture(scope="module")
def api_schema(serving_stack: ServingStack) -> Iterator[schemathesis.BaseSchema]:
    # Schemathesis runs the app's lifespan (registry loaded, Redis reader made) on its own loop.
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(serving_stack.settings, environ={}))
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


def operations(schema: schemathesis.BaseSchema) -> dict[str, object]:
    found = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        found[f"{operation.method.upper()} {operation.path}"] = operation
    return found


def test_the_spec_lists_every_route(api_schema: schemathesis.BaseSchema) -> None:
    assert {"GET /features/{entity}/{entity_id}", "POST /features/{entity}", "GET /health",
            "GET /metrics"} <= set(operations(api_schema))


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=str)
def test_the_api_keeps_its_spec(api_schema: schemathesis.BaseSchema, mode: GenerationMode) -> None:
    failures: list[str] = []
    for name, operation in operations(api_schema).items():

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(excluded_checks=EXCLUDED)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"

        try:
            check()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, name  # no parameter or body: nothing can be made invalid
        except Exception as err:  # every operation is fuzzed; all failures are reported together
            failures.append(f"{name}: {err}")
    assert not failures, "\n\n".join(failures)


# Random names mostly meet 404s; these drive the 200 paths (real rows, nulls, NaN, missing views)
# through the same schemathesis checks.
SELECTORS = [{}, {"feature_service": "ads_ranking"}, {"features": "user_ad_activity"},
             {"features": "user_ad_activity:ctr_1h,user_profile_daily:spend_30d"},
             {"features": " user_ad_activity:clicks_1h , ,user_ad_activity:clicks_1h"}]
ids = st.one_of(st.integers(1, 6), st.integers(-(2**63), 2**63 - 1), st.just(999_999))


def test_real_entities_answer_as_documented(api_schema: schemathesis.BaseSchema) -> None:
    found = operations(api_schema)
    get, post = found["GET /features/{entity}/{entity_id}"], found["POST /features/{entity}"]
    statuses: set[int] = set()

    @given(user=ids, selector=st.sampled_from(SELECTORS), batch=st.lists(ids, max_size=20))
    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(user: int, selector: dict[str, str], batch: list[int]) -> None:
        single = get.Case(path_parameters={"entity": "user", "entity_id": str(user)}, query=selector)
        statuses.add(single.call_and_validate(excluded_checks=EXCLUDED).status_code)
        body = {"ids": batch, **({"features": selector["features"].split(",")} if "features" in selector else {}),
                **({"feature_service": selector["feature_service"]} if "feature_service" in selector else {})}
        many = post.Case(path_parameters={"entity": "user"}, body=body, media_type="application/json")
        statuses.add(many.call_and_validate(excluded_checks=EXCLUDED).status_code)

    check()
    assert statuses == {200}
