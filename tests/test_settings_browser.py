"""The Settings tab in a real browser: the status line follows a typed key, the key box empties,
the page never holds the key, and "remember in this browser" works only as far as the visitor asks."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port
from tests.fakes.openai_stub import OpenAIStub

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
KEY = "sk-browser-secret-98765"


@pytest.fixture
def app_url(monkeypatch) -> Iterator[tuple[str, OpenAIStub]]:
    import app

    with OpenAIStub({KEY: ["gpt-4.1", "gpt-4.1-mini"]}) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.url())
        demo = app.build_app()
        port = free_port()
        demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/", stub
        finally:
            demo.close()


@pytest.fixture
def page() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1300, "height": 2400})
        browser.close()


def _open_settings(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#distill-status")
    page.get_by_role("tab", name="Settings").click()


def _choose(page, label: str, option: str) -> None:
    page.get_by_label(label).click()
    page.get_by_role("option", name=option, exact=True).click()


def _stored(page) -> str | None:
    return page.evaluate("localStorage.getItem('distill_settings')")


def _settle(page) -> None:
    """Wait until the browser's stored copy stops changing (follow-up events write it)."""
    for _ in range(30):
        value = _stored(page)
        page.wait_for_timeout(1000)
        if _stored(page) == value:
            return
    raise AssertionError("the browser copy of the settings kept changing")


def _tick_and_wait_for_storage(page, label: str) -> None:
    """Tick a box, then wait until the browser's stored copy has been rewritten because of it."""
    _settle(page)
    before = _stored(page)
    page.get_by_label(label).check()
    # The tab says what this browser now keeps once the setting is in the session; the copy follows.
    said = "with their keys" if label.startswith("…and") else "without keys"
    playwright_api.expect(page.locator("#remember-note")).to_contain_text(said, timeout=30_000)
    page.wait_for_function(f"localStorage.getItem('distill_settings') !== {json.dumps(before)}",
                           timeout=30_000)
    _settle(page)


def _new_session(monkeypatch) -> None:
    """What a server restart (or a day away) does: the server's memory of live sessions is gone."""
    from components import settings_handlers
    from pipeline.session_store import SessionStore

    monkeypatch.setattr(settings_handlers, "SESSIONS", SessionStore())


def test_typed_key_updates_status_clears_box_and_is_remembered_only_when_asked(app_url, page, monkeypatch) -> None:
    url, stub = app_url
    expect, status = playwright_api.expect, page.locator("#distill-status")
    _open_settings(page, url)
    expect(status).to_contain_text("No OpenAI key", timeout=30_000)
    expect(page.get_by_label("Teacher: model")).to_have_value("SmolLM2-135M-Instruct", timeout=30_000)

    _choose(page, "Endpoint to edit", "openai")
    # (The server's answer to the pick; the key is typed only after it: it empties the key box.)
    expect(page.get_by_label("Base URL")).to_be_disabled(timeout=30_000)  # a built-in: only its key can be typed
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Save endpoint").click()
    expect(status).to_contain_text("OpenAI key: typed (this session)", timeout=30_000)
    expect(status).to_contain_text("Teacher openai · gpt-4.1")
    assert page.get_by_label("API key").input_value() == ""
    assert KEY not in page.content()

    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("OK: connected")).to_be_visible(timeout=30_000)
    assert stub.seen_keys[-1] == KEY

    # A refresh keeps the session's settings, typed key included (held in server memory, not the page)...
    page.reload()
    expect(status).to_contain_text("OpenAI key: typed (this session)", timeout=30_000)
    assert KEY not in page.content()
    # ...but nothing is remembered in the browser by default: a new session starts clean.
    _new_session(monkeypatch)
    page.reload()
    expect(status).to_contain_text("No OpenAI key", timeout=30_000)

    # Remember endpoints but not keys: the custom endpoint comes back, its key does not.
    _open_settings(page, url)
    page.get_by_label("Name").fill("mine")
    page.get_by_label("Base URL").fill(stub.url())
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Save endpoint").click()
    expect(page.get_by_text("Saved 'mine'")).to_be_visible(timeout=30_000)
    _tick_and_wait_for_storage(page, "Remember my endpoints in this browser")
    _new_session(monkeypatch)
    page.reload()
    _open_settings(page, url)
    expect(page.locator("#endpoints-table")).to_contain_text("mine", timeout=30_000)
    _choose(page, "Endpoint to edit", "mine")
    expect(page.get_by_label("API key")).to_have_attribute("placeholder", re.compile("^Key: missing"), timeout=30_000)

    # ...and with keys, when ticked: the key comes back from this browser's storage.
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Save endpoint").click()
    expect(page.get_by_text("Saved 'mine' (key: typed")).to_be_visible(timeout=30_000)
    _tick_and_wait_for_storage(page, "…and their keys (only on a computer you trust)")
    _new_session(monkeypatch)
    page.reload()
    _open_settings(page, url)
    expect(page.locator("#endpoints-table")).to_contain_text("mine", timeout=30_000)
    _choose(page, "Endpoint to edit", "mine")
    expect(page.get_by_label("API key")).to_have_attribute("placeholder", re.compile("^Key: typed"), timeout=30_000)
    assert KEY not in page.content()


def test_opening_settings_shows_the_local_model_compute_line(app_url, page) -> None:
    """The compute-precision line is filled when the tab is opened (no longer at page load: its
    decision imports torch, which delayed the first chat), and the visitor still sees it."""
    url, _stub = app_url
    _open_settings(page, url)
    line = page.locator("#precision-line")
    line.get_by_text("Local model compute:").wait_for(timeout=120_000)
    assert re.search(r"Local model compute:\*?\*?\s*\S", line.inner_text())
