"""`tessera apply` on a clean registry registers exactly the views and features of SPEC.md."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from feast import FeatureStore

from tessera.config import Settings
from tessera.feast_objects import repo_config
from tests.stack import ROOT, run_tessera

# Written out from SPEC.md "Features", independently of feature_repo/views.py.
SPEC_FEATURES = {
    "user_ad_activity": ("user", [
        ("impressions_5m", "Int64"), ("impressions_1h", "Int64"), ("impressions_24h", "Int64"),
        ("clicks_5m", "Int64"), ("clicks_1h", "Int64"), ("clicks_24h", "Int64"),
        ("conversions_1h", "Int64"), ("conversions_24h", "Int64"),
        ("spend_1h", "Float64"), ("spend_24h", "Float64"), ("ctr_1h", "Float64"), ("ctr_24h", "Float64")]),
    "campaign_delivery": ("campaign", [
        ("impressions_1h", "Int64"), ("clicks_1h", "Int64"), ("conversions_24h", "Int64"),
        ("spend_1h", "Float64"), ("spend_24h", "Float64")]),
    "user_profile_daily": ("user", [
        ("impressions_30d", "Int64"), ("clicks_30d", "Int64"), ("spend_30d", "Float64"),
        ("active_days_30d", "Int64")]),
}


def test_apply_on_a_clean_registry_registers_the_spec(stack: dict[str, str], stack_settings: Settings) -> None:
    assert not stack_settings.registry_path.exists(), "the registry should start clean"
    done = run_tessera(stack, "apply")
    assert done.returncode == 0, done.stdout + done.stderr
    store = FeatureStore(repo_path=str(stack_settings.feature_repo), config=repo_config(stack_settings))
    views = {fv.name: fv for fv in store.list_feature_views()}
    assert set(views) == set(SPEC_FEATURES)
    for name, (entity, features) in SPEC_FEATURES.items():
        view = views[name]
        assert view.entities == [entity]
        assert [(f.name, str(f.dtype)) for f in view.features] == features
    entities = {e.name: e.join_key for e in store.list_entities()}
    assert entities == {"user": "user_id", "campaign": "campaign_id"}
    assert {s.name for s in store.list_feature_services()} == {"ads_ranking", "campaign_pacing"}

    # Re-applying is harmless and changes nothing.
    again = run_tessera(stack, "apply")
    assert again.returncode == 0, again.stderr
    assert {fv.name for fv in FeatureStore(repo_path=str(stack_settings.feature_repo),
                                           config=repo_config(stack_settings)).list_feature_views()} \
        == set(SPEC_FEATURES)


def test_feast_cli_lists_the_three_views(stack: dict[str, str], stack_settings: Settings, tmp_path: Path) -> None:
    if not stack_settings.registry_path.exists():
        assert run_tessera(stack, "apply").returncode == 0
    # Feast's own CLI, pointed at this session's registry and Redis by a feature_store.yaml of its own.
    shipped = yaml.safe_load((ROOT / "feature_repo" / "feature_store.yaml").read_text())
    shipped["registry"]["path"] = str(stack_settings.registry_path)
    shipped["online_store"]["connection_string"] = stack_settings.redis.feast_connection_string
    fs_yaml = tmp_path / "feature_store.yaml"
    fs_yaml.write_text(yaml.safe_dump(shipped))
    feast = str(Path(sys.executable).parent / "feast")
    listed = subprocess.run([feast, "-c", str(ROOT / "feature_repo"), "-f", str(fs_yaml), "feature-views", "list"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, **stack})
    assert listed.returncode == 0, listed.stderr
    for view in SPEC_FEATURES:
        assert view in listed.stdout
