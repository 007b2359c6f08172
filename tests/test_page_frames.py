"""An open page does not draw frames for progress timers nobody sees (components/page_frames.py).

The browser test counts the animation frames an idle page asks for, in Chromium against `python app.py`:
with Gradio's status trackers left as they are, the page loader's removed tracker alone asks for 60 a
second forever (the starting line's did too, while it was removed rather than hidden)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from components.page_frames import SCRIPT, FirstInHead, with_script
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, COUNT_FRAMES, running_app

PAGE = "<!doctype html><html><head><title>t</title></head><body>page</body></html>"


def _client() -> TestClient:
    def page(_request):
        response = HTMLResponse(PAGE)
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    routes = [Route("/", page), Route("/other", lambda _r: HTMLResponse(PAGE)),
              Route("/api", lambda _r: JSONResponse({"html": "<head>"}))]
    return TestClient(Starlette(routes=routes, middleware=[Middleware(FirstInHead)]))


def test_the_script_goes_first_in_the_head_of_the_page_only():
    client = _client()
    got = client.get("/")
    assert got.status_code == 200
    assert got.text.startswith("<!doctype html><html><head>" + SCRIPT + "<title>")
    assert int(got.headers["content-length"]) == len(got.content)
    assert sorted(c.name for c in client.cookies.jar) == ["a", "b"]  # both set-cookie headers kept
    assert client.get("/other").text == PAGE
    assert client.get("/api").json() == {"html": "<head>"}
    assert with_script(b"<p>no head</p>") == b"<p>no head</p>"


@pytest.mark.browser
def test_an_idle_page_asks_for_few_frames():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    env = {"DISTILL_LOCAL_TINY": "1", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    with running_app(Path(tempfile.mkdtemp(prefix="distill-frames-")), env, timeout_s=300) as url, \
            playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.add_init_script(COUNT_FRAMES)  # before the page's own scripts: sees every call
        page.goto(url)
        playwright_api.expect(page.get_by_role("tab", name="Start")).to_be_visible(timeout=120_000)
        # Once the page has settled (the session's first look-ups, Gradio's transitions), a 2 s window
        # with few frames must come: without the fix the timers' loops keep every window at 60-120.
        rates = []
        for _ in range(20):
            before = page.evaluate("() => window.__frames")
            page.wait_for_timeout(2000)
            rates.append((page.evaluate("() => window.__frames") - before) / 2)
            if rates[-1] < 10:
                break
        browser.close()
    # ~120 a second without components/page_frames.py (two timers' loops); ~1 with it.
    assert min(rates) < 10, f"an idle page kept asking for animation frames: {rates} a second"
