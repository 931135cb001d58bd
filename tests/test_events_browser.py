"""Event reports in a real browser (Debian's chromium via Playwright) against ``moodlens serve``.

Three pages are checked and photographed into ``test-artifacts/`` (the ones in docs/img come from here):
a one-bin event (six real photos taken in the same minute, analysed by the real pipeline), a multi-hour
event with a source hidden by the privacy rules, and a comparison of three events.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from live_server import free_port, running, serve_command
from PIL import Image
from test_web_browser import ARTIFACTS, CHROMIUM, launch, sign_in
from web_access import VIEWER_TOKEN

from moodlens.events.ingest import ingest_photos
from moodlens.events.store import PROB_COLUMNS, EventStore
from moodlens.spec import EMOTIONS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"{CHROMIUM} not found: apt-get install chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")

MOODS = {e: np.eye(7)[EMOTIONS.index(e)] for e in EMOTIONS}


def add_crowd(store: EventStore, event: str, source: str, kind: str, start: datetime, hours: tuple[float, float],
              people: int, mood: dict[str, float], seed: int) -> None:
    """``people`` tracks of 6 observations each between ``hours`` after ``start``, leaning towards ``mood``."""
    rng = np.random.default_rng(seed)
    lean = sum(w * MOODS[e] for e, w in mood.items())
    src = store.open_source(event, kind, source, label=source)
    rows = []
    for t in range(people):
        at = start + timedelta(hours=float(rng.uniform(*hours)))
        probs = 0.45 * rng.dirichlet(np.ones(7) * 0.6) + 0.55 * lean
        rows += [{"frame": t * 6 + k, "ts": at + timedelta(seconds=2 * k), "track": t + 1, "box_w": 60,
                  "box_h": 70, **dict(zip(PROB_COLUMNS, map(float, probs / probs.sum()), strict=True))}
                 for k in range(6)]
    store.commit_batch(src.id, rows, len(rows), True)


def photo(path: Path, when: datetime) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
    buffer = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buffer, "JPEG", exif=exif)
    path.write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def events_db(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("lunch-photos")
    for i in range(6):
        photo(folder / f"lunch-{i}.jpg", datetime(2025, 5, 20, 12, 30, 5 * i))
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'events.db'}"
    with EventStore(url) as store:
        store.create_event("Lunch talk", description="Six photos from the photographer, all in one minute")
        ingest_photos(store, "Lunch talk", folder, progress=False)

        gala = datetime(2025, 6, 1, 17, 0)
        store.create_event("Spring gala", starts_at=gala, ends_at=gala + timedelta(hours=5),
                           description="Main hall, 17:00-22:00")
        add_crowd(store, "Spring gala", "main-door.mp4", "video", gala, (0.2, 2.0), 240,
                  {"happy": 0.7, "neutral": 0.3}, 1)
        add_crowd(store, "Spring gala", "main-door-late.mp4", "video", gala, (2.6, 4.6), 130,
                  {"sad": 0.4, "neutral": 0.6}, 2)
        add_crowd(store, "Spring gala", "side-door camera", "camera", gala, (1.0, 1.4), 3, {"neutral": 1.0}, 3)

        for year, (minutes, people, mood) in {2023: (90, 60, {"neutral": 0.6, "happy": 0.4}),
                                              2024: (120, 85, {"happy": 0.8, "surprise": 0.2}),
                                              2025: (60, 45, {"sad": 0.5, "neutral": 0.5})}.items():
            start = datetime(year, 9, 1, 9, 0)
            name = f"Orientation day {year}"
            store.create_event(name, starts_at=start, ends_at=start + timedelta(minutes=minutes))
            add_crowd(store, name, "entrance.mp4", "video", start, (0.0, minutes / 60), people, mood, year)
    return url


@pytest.fixture(scope="module")
def server(events_db):
    """``moodlens serve`` as an operator starts it (sign-in on, the tests' tokens), on the events above."""
    port = free_port()
    with running(serve_command(port, "--workers", "1"), port, env={"MOODLENS_DB": events_db}) as url:
        yield url


def images_loaded(page, selector: str) -> list[int]:
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")


def test_event_reports_and_comparison_in_chromium(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            sign_in(page, server, VIEWER_TOKEN, "/events")  # reports need no more than a viewer's sign-in

            page.goto(server + "/events/Lunch%20talk")
            page.wait_for_selector("#report .ml-report", timeout=60_000)
            assert "12:30–12:31 UTC (the observed span), in 1 bin of 1 minute." in page.inner_text("#report-period")
            assert page.get_attribute("#report .ml-report", "data-people") == "6"
            assert all(w > 500 for w in images_loaded(page, "#report img"))
            assert "Only one time bin has 5 or more people" in page.inner_text("#peaks")
            page.screenshot(path=str(ARTIFACTS / "event-report-one-bin.png"), full_page=True)

            page.goto(server + "/events/Spring%20gala")
            page.wait_for_selector("#report .ml-report", timeout=60_000)
            assert "17:00–22:00 UTC (the event window), in 60 bins of 5 minutes." in page.inner_text("#report-period")
            hidden = page.locator('#sources-table tr[data-state="hidden"]')
            assert hidden.count() == 2
            cells = " ".join(hidden.all_inner_texts())
            assert "hidden: fewer than 5 people" in cells and "hidden: complementary rule" in cells
            assert "Complementary rule:" in page.inner_text("#privacy")
            assert all(w > 500 for w in images_loaded(page, "#report img"))
            page.screenshot(path=str(ARTIFACTS / "event-report-multi-hour.png"), full_page=True)

            page.goto(server + "/events")
            for year in (2023, 2024, 2025):
                page.check(f'input[name="e"][value="Orientation day {year}"]')
            page.click("#compare-button")
            page.wait_for_selector("#comparison .ml-compare")
            assert page.get_attribute("#comparison .ml-compare", "data-events") == "3"
            assert page.locator("#compare-events tr[data-state]").count() == 3
            assert len(images_loaded(page, "#comparison img")) == 3
            assert all(w > 500 for w in images_loaded(page, "#comparison img"))
            page.screenshot(path=str(ARTIFACTS / "event-compare.png"), full_page=True)
        finally:
            browser.close()
