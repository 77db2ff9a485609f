"""The page in a real browser: Debian's headless chromium driven by Playwright, against the
service on loopback with one worker and the shipped synthetic-lrcn."""

from __future__ import annotations

import shutil

import pytest
from tests.serve.helpers import ATTACKED_FRAMES, LiveServer, write_attacked_clip

from vidshield.serve import ScanSettings, ServeConfig, create_app

CHROMIUM = shutil.which("chromium")
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)"
)


@pytest.fixture
def server(tmp_path):
    config = ServeConfig(
        data_dir=tmp_path / "data", workers=1, settings=ScanSettings(models={"synthetic-lrcn": "synthetic-lrcn"})
    )
    with LiveServer(create_app(config)) as live:
        yield live


@pytest.fixture
def page(server):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.problems = []
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.goto(server.url + "/")
        yield page
        browser.close()


def test_upload_a_clip_and_read_the_result(page, server, tmp_path):
    clip = write_attacked_clip(tmp_path / "attacked.mkv")
    page.wait_for_selector("#opt-model option[value='synthetic-lrcn']", state="attached")
    page.set_input_files("#file", str(clip))
    assert "attacked.mkv" in page.inner_text("#drop-text")
    page.click("#scan-button")
    page.wait_for_selector("#verdict[data-verdict]", timeout=120_000)
    assert page.get_attribute("#verdict", "data-verdict") == "sparse"
    assert page.inner_text("#verdict").lower().startswith("sparse")
    assert "alpha 0.188" in page.inner_text("#verdict")  # 3 exception frames of 16

    # the timeline: one dot per frame, the exception frames ringed, the windows that fired outlined
    frames = page.eval_on_selector_all("#timeline-svg .frames circle", "els => els.map(e => +e.dataset.frame)")
    assert frames == list(range(32))
    rings = page.eval_on_selector_all("#timeline-svg .exceptions circle", "els => els.map(e => +e.dataset.frame)")
    assert rings == list(ATTACKED_FRAMES)
    assert page.locator("#timeline-svg rect.window").count() == 2
    assert page.locator("#timeline-svg rect.fired").count() == 2
    assert page.text_content("#fired-caption").startswith("fired: frames 0-15 (alpha 0.188)")

    # thumbnails before / after for each exception frame, loaded
    assert page.locator(".thumb").count() == len(ATTACKED_FRAMES)
    page.wait_for_function("[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator(".thumb img").count() == 2 * len(ATTACKED_FRAMES)

    # the defended video link works
    job_id = page.evaluate("location.hash").split("=")[1]
    href = page.get_attribute("#defended-link", "href")
    assert href == f"/v1/scans/{job_id}/defended"
    video = page.request.get(server.url + href)
    assert video.status == 200 and video.headers["content-type"] == "video/x-matroska" and len(video.body()) > 1000

    # the recent jobs list shows it, with its verdict
    page.wait_for_selector(f"#recent tr[data-id='{job_id}'] .tag.sparse")
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)

    # a phone's width: nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000
    assert page.problems == []  # no script error, no blocked (external or inline) asset


def test_a_dropped_file_that_is_no_video_shows_the_reason(page):
    page.wait_for_selector("#opt-model option", state="attached")
    page.evaluate(
        """() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["not a video at all"], "notes.mkv", {type: "video/x-matroska"}));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
    }"""
    )
    assert "notes.mkv" in page.inner_text("#drop-text")
    page.click("#scan-button")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error").startswith("415: not a video FFmpeg can read")
    # the one expected console error is the browser's note about the 415 response
    assert all("415" in p for p in page.problems)
