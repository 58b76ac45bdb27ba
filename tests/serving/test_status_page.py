"""/status in a real browser: `tessera serve` (multiprocess metrics, as deployed) with real Redis, a
failing parity report and a drift report, loaded by Debian's headless Chromium. The DOM Chromium
built is what is checked, so the page has to parse and render, not only be served."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tessera.config import Settings
from tests.serving.stack import ServingStack, free_port, make_settings, start_serve, stop_serve, subprocess_env
from tests.serving.status_fixtures import publish_progress, write_drift_report, write_parity_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Dom(HTMLParser):
    """Elements with their attributes and the text inside each, enough to check what the page shows."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self.open: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, []))
        if tag not in ("meta", "link", "br", "img", "input"):  # HTML's void elements never close
            self.open.append(len(self.elements) - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, []))

    def handle_endtag(self, tag: str) -> None:
        opened = [i for i in self.open if self.elements[i][0] == tag]
        if opened:  # close it and whatever was left open inside it
            del self.open[self.open.index(opened[-1]):]

    def handle_data(self, data: str) -> None:
        for index in self.open:
            self.elements[index][2].append(data)

    def find(self, tag: str, **attrs: str) -> list[tuple[dict[str, str], str]]:
        return [(a, " ".join(" ".join(text).split())) for t, a, text in self.elements
                if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


@pytest.fixture(scope="module")
def served(serving_stack: ServingStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    settings = make_settings(tmp_path_factory.mktemp("status"), serving_stack.settings.redis.port)
    settings.registry_path.parent.mkdir(parents=True)
    shutil.copy(serving_stack.settings.registry_path, settings.registry_path)
    publish_progress(settings)
    write_parity_report(settings)
    write_drift_report(settings)
    port = free_port()
    log = settings.state_dir / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "TESSERA_API_KEY"}
    # No broker listens there: the page has to say Kafka is down, quickly, not hang.
    env.update(subprocess_env(settings), TESSERA_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    process = start_serve(env, port, 1, log)
    try:
        yield f"http://127.0.0.1:{port}", settings
    finally:
        stop_serve(process)


def chromium(url: str, profile: Path, screenshot: Path | None = None) -> str:
    assert CHROMIUM, "Debian's chromium is not installed: run scripts/setup.sh"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", "--window-size=1200,2600"]
    command += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


def test_status_page_in_chromium(served: tuple[str, Settings], tmp_path: Path) -> None:
    base, settings = served
    for _ in range(20):  # something for the latency percentiles
        assert httpx.get(f"{base}/features/user/1", timeout=5).status_code == 200
    deadline = time.monotonic() + 20
    while httpx.get(f"{base}/status.json", timeout=5).json()["kafka"]["state"] == "grey":
        assert time.monotonic() < deadline, "the Kafka probe never finished"
        time.sleep(0.3)

    # The writer reports every second and a report older than 10 s is a warning: report again, and
    # wait out the API's 2 s cache of it.
    publish_progress(settings)
    time.sleep(2.5)
    dom = Dom()
    dom.feed(chromium(f"{base}/status", tmp_path / "profile"))

    title = dom.find("title")[0][1]
    assert title == "Tessera status: FAIL", title
    assert dom.find("body")[0][0]["data-state"] == "red"

    rows = dom.find("tr", data_in="views")
    freshness = {text.split(" ")[0]: attrs["data-state"] for attrs, text in rows}
    assert freshness == {"user_ad_activity": "green", "campaign_delivery": "red", "user_profile_daily": "grey"}, rows

    parity = dom.find("section", id="parity")[0]
    assert parity[0]["data-state"] == "red" and "FAIL" in parity[1] and "failed" in parity[1]
    assert "424242" in parity[1] and "97.50 %" in parity[1]  # the worst key, the overall match rate

    drift = dom.find("section", id="drift")[0]
    assert drift[0]["data-state"] == "amber" and "spend_1h" in drift[1]

    kafka = dom.find("section", id="kafka")[0]
    assert kafka[0]["data-state"] == "red" and "Kafka at 127.0.0.1:" in kafka[1]

    latency = dom.find("section", id="latency")[0][1]
    match = re.search(r"GET /features/\{entity\}/\{entity_id\} (\d+) ([\d.,]+) ms ([\d.,]+) ms ([\d.,]+) ms", latency)
    assert match, latency
    count, p50, p90, p99 = int(match[1]), *(float(g.replace(",", "")) for g in match.groups()[1:])
    assert count >= 20 and 0 < p50 <= p90 <= p99

    charts = {attrs["data-chart"] for attrs, _ in dom.find("svg") if "data-chart" in attrs}
    assert charts >= {"freshness", "parity", "drift", "latency"}, charts
    bars = dom.find("rect", **{"class": "bar"})
    assert len(bars) >= 2 + 2 + 2 + 3, "a bar per view, parity view, drift feature and percentile"

    shot = tmp_path / "status.png"
    chromium(f"{base}/status", tmp_path / "profile", screenshot=shot)
    assert shot.stat().st_size > 20_000, "the page rendered to a near-empty image"
