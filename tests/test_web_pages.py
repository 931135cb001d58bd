"""HTML pages of ``moodlens serve``: served by the app itself, privacy notice, navigation, nothing external."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
from fastapi.testclient import TestClient
from web_access import ACCESS, OPERATOR

from moodlens.spec import EMOTIONS
from moodlens.web import create_app


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(workers=1, access=ACCESS), headers=OPERATOR) as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/live"])
def test_page_has_privacy_notice_and_nav(client, path):
    html = client.get(path).text
    assert "never stored or logged" in html
    assert 'href="/live"' in html and 'href="/docs"' in html and 'href="/"' in html
    has_events = importlib.util.find_spec("moodlens.web.routers.events") is not None
    assert ('href="/events"' in html) == has_events
    assert f'href="{path}" aria-current="page"' in html


@pytest.mark.parametrize("path", ["/", "/live", "/docs"])
def test_pages_load_nothing_from_other_hosts(client, path):
    html = client.get(path).text
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs, html
    assert all(ref.startswith("/") for ref in refs), refs
    for ref in refs:
        if ref.startswith(("/static/", "/docs-assets/")):
            assert client.get(ref).status_code == 200, ref


def test_page_config_carries_limits_and_spec_colours(client):
    html = client.get("/").text
    config = json.loads(re.search(r'<script id="moodlens-config" type="application/json">(.*?)</script>', html,
                                  re.S).group(1))
    assert config["limits"]["max_files"] == 50
    assert config["emotions"] == list(EMOTIONS)
    assert config["colors"]["happy"] == "#ffc90e"  # the spec's BGR (14, 201, 255) as CSS
