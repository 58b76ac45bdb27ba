"""Malformed declarations in feature_repo/ stop `tessera apply`, the other tessera commands and
`feast apply` with one line that names the file (and line) and the field at fault; no traceback.

Each case edits a temporary copy of the repository (views.py, feast_repo.py, feature_store.yaml)
next to its own tessera.toml, so the real repository and registry are never touched.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tessera.cli import main
from tessera.definitions import DefinitionError, load_definitions

ROOT = Path(__file__).resolve().parents[2]
FEAST = ROOT / ".venv" / "bin" / "feast"


@dataclass(frozen=True)
class Breakage:
    old: str            # text in views.py to replace (its first occurrence)
    new: str
    mentions: tuple[str, ...]  # what the message must name, besides views.py


CASES = {
    "bad-duration": Breakage('granularity="1m",', 'granularity="1 minute",', ("user_ad_activity", "granularity")),
    "bad-window": Breakage('windows=["5m", "1h", "24h"]', 'windows=["5m", "1 hour", "24h"]',
                           ("impressions", "windows")),
    "window-not-a-list": Breakage('Count("conversions", where=CONVERSION, windows=["24h"])',
                                  'Count("conversions", where=CONVERSION, windows="24h")', ("conversions", "windows")),
    "unknown-column": Breakage('Sum("spend", column="cost"', 'Sum("spend", column="costs"',
                               ("spend", "column='costs'")),
    "unknown-where-field": Breakage('CLICK = {"event_type": "click"}', 'CLICK = {"event_typ": "click"}',
                                    ("clicks", "event_typ")),
    "unknown-event-type": Breakage('CLICK = {"event_type": "click"}', 'CLICK = {"event_type": "clik"}',
                                   ("clicks", "'clik'")),
    "duplicate-feature": Breakage('Count("impressions", where=IMPRESSION, windows=["5m", "1h", "24h"])',
                                  'Count("impressions", where=IMPRESSION, windows=["5m", "60m", "1h", "24h"])',
                                  ("user_ad_activity", "impressions_1h")),
    "duplicate-aggregation": Breakage('Count("clicks", where=CLICK, windows=["5m", "1h", "24h"])',
                                      'Count("impressions", where=CLICK, windows=["5m", "1h", "24h"])',
                                      ("impressions", "twice")),
    "ratio-of-missing-count": Breakage('numerator="clicks"', 'numerator="clickz"', ("ctr", "numerator='clickz'")),
    "undeclared-entity": Breakage("    entity=campaign,", '    entity=Entity("driver", join_key="driver_id"),',
                                  ("campaign_delivery", "entity='driver'")),
    "entity-not-an-entity": Breakage("    entity=user,", '    entity="user",', ("user_ad_activity", "entity='user'")),
    "duplicate-view-name": Breakage('name="campaign_delivery",', 'name="user_ad_activity",',
                                    ("feature view", "user_ad_activity")),
    "service-names-unknown-feature": Breakage('features=("user_ad_activity", "user_profile_daily")',
                                              'features=("user_ad_activity:nope",)', ("ads_ranking", "nope")),
    "name-error": Breakage("    source=ad_events,", "    source=ad_event,", ("NameError", "ad_event")),
    "syntax-error": Breakage('IMPRESSION = {"event_type": "impression"}', 'IMPRESSION = {"event_type": "impression"',
                             ("SyntaxError",)),
}


def broken_repo(base: Path, breakage: Breakage) -> Path:
    """A copy of feature_repo/ with one breakage, under a tessera.toml of its own; returns the toml."""
    repo = base / "feature_repo"
    repo.mkdir(parents=True)
    for name in ("views.py", "feast_repo.py", "feature_store.yaml"):
        shutil.copy(ROOT / "feature_repo" / name, repo / name)
    views = repo / "views.py"
    text = views.read_text()
    assert breakage.old in text, f"the case no longer matches views.py: {breakage.old!r}"
    views.write_text(text.replace(breakage.old, breakage.new, 1))
    config = base / "tessera.toml"
    config.write_text('[paths]\ndata_dir = "data"\nstate_dir = "state"\njar_dir = "jars"\n'
                      '[feast]\nrepo = "feature_repo"\n')
    return config


def assert_names_the_fault(output: str, views: Path, breakage: Breakage) -> None:
    assert "Traceback" not in output, output
    assert re.search(re.escape(str(views)) + r"(:\d+)?: ", output), output
    for mention in breakage.mentions:
        assert mention in output, (mention, output)


@pytest.mark.parametrize("case", list(CASES))
def test_tessera_apply_names_file_and_field(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = broken_repo(tmp_path, CASES[case])
    assert main(["--config", str(config), "apply"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line
    assert_names_the_fault(err, tmp_path / "feature_repo" / "views.py", CASES[case])
    assert not (tmp_path / "data" / "registry.db").exists(), "nothing may be registered"


def test_errors_point_at_the_line(tmp_path: Path) -> None:
    broken_repo(tmp_path, CASES["unknown-column"])
    views = tmp_path / "feature_repo" / "views.py"
    with pytest.raises(DefinitionError) as err:
        load_definitions(views.parent)
    line = int(re.search(re.escape(str(views)) + r":(\d+):", str(err.value)).group(1))
    declaration = views.read_text().splitlines()[line - 1]
    assert "WindowedView(" in declaration  # the view being declared when the check failed
    broken_repo(tmp_path / "syntax", CASES["syntax-error"])
    with pytest.raises(DefinitionError, match=r"views\.py:2\d: SyntaxError"):
        load_definitions(tmp_path / "syntax" / "feature_repo")


@pytest.mark.parametrize("command", [
    ["backfill", "--start", "2026-03-01", "--end", "2026-03-01"],
    ["features", "user", "1"],
    ["generate", "history", "--start", "2026-03-01", "--days", "1"],
    ["stream", "start"],
])
def test_other_commands_name_file_and_field(command: list[str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = broken_repo(tmp_path, CASES["bad-duration"])
    assert main(["--config", str(config), *command]) == 2
    err = capsys.readouterr().err
    assert_names_the_fault(err, tmp_path / "feature_repo" / "views.py", CASES["bad-duration"])
    assert not (tmp_path / "state" / "run").exists(), "nothing may have been started"


def test_a_broken_config_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tessera.toml"
    config.write_text("[redis]\nport = 'six'\n")
    assert main(["--config", str(config), "config"]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "redis.port" in err and "Traceback" not in err
    config.write_text("[redis\nport = 1\n")
    assert main(["--config", str(config), "config"]) == 2
    assert str(config) in capsys.readouterr().err


# As processes, the way a user meets them (each start imports Feast: a few cases only).
@pytest.mark.parametrize("case", ["bad-duration", "syntax-error"])
def test_feast_apply_names_file_and_field(case: str, tmp_path: Path) -> None:
    broken_repo(tmp_path, CASES[case])
    repo = tmp_path / "feature_repo"
    done = subprocess.run(["nice", str(FEAST), "apply"], cwd=repo, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TESSERA_CONFIG": str(tmp_path / "tessera.toml")})
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert_names_the_fault(output, repo / "views.py", CASES[case])


def test_tessera_apply_process_prints_no_traceback(tmp_path: Path) -> None:
    config = broken_repo(tmp_path, CASES["ratio-of-missing-count"])
    done = subprocess.run(["nice", str(ROOT / ".venv" / "bin" / "tessera"), "--config", str(config), "apply"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert_names_the_fault(done.stderr, tmp_path / "feature_repo" / "views.py", CASES["ratio-of-missing-count"])
