"""The Chat tab in a real browser: a pane's Stop button comes alive while it waits, stops only that
pane, and goes quiet again."""

from __future__ import annotations

import os

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port
from tests.chat_support import chat_tab_app
from tests.fakes.chat_server import FakeChatServer

pytestmark = pytest.mark.browser


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")
def test_stop_one_waiting_pane_in_the_browser() -> None:
    from playwright.sync_api import expect, sync_playwright

    with FakeChatServer() as srv:
        demo = chat_tab_app(srv, "delay-60-slow", "delay-3-ft", "fast-a", "visitor-chat-browser-1")
        demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(demo.local_url)
                stops = page.get_by_role("button", name="Stop", exact=True)
                expect(stops).to_have_count(3)
                for i in range(3):
                    expect(stops.nth(i)).to_be_disabled()
                page.get_by_label("Message to all three panes").fill("hello")
                page.get_by_role("button", name="Send").click()
                page.get_by_text("fast-a says: hello").wait_for(timeout=30_000)
                expect(stops.nth(0)).to_be_enabled(timeout=10_000)  # the 60 s pane still waits
                stops.nth(0).click()
                page.get_by_text("(stopped before answering)").wait_for(timeout=15_000)
                page.get_by_text("delay-3-ft says: hello").wait_for(timeout=30_000)  # the other pane went on
                for i in range(3):
                    expect(stops.nth(i)).to_be_disabled(timeout=10_000)
                browser.close()
        finally:
            demo.close()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")
def test_a_tool_call_is_shown_in_words_and_answered_in_the_browser(tmp_path) -> None:
    """Sample tools picked, a pane's model calls a tool (shown as a call, not JSON), the visitor types the
    result in that pane's box and the model answers from it."""
    from playwright.sync_api import expect, sync_playwright

    from tests.test_chat_tools import answers

    with FakeChatServer(answers=answers, models=["caller", "plain"]) as srv:
        demo = chat_tab_app(srv, "caller", "plain", "caller", "visitor-chat-browser-tools")
        demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.goto(demo.local_url)
                page.get_by_text("Tools (function calling)").click()
                page.get_by_label("Start from sample tools").click()
                page.get_by_role("option", name="weather").click()
                page.get_by_text("2 tools: get_current_weather, get_forecast").wait_for(timeout=15_000)
                page.get_by_label("required").check()
                page.get_by_label("Message to all three panes").fill("weather in Paris?")
                page.get_by_role("button", name="Send").click()
                calls = page.get_by_text('get_weather(city="Paris", unit="celsius")')
                expect(calls).to_have_count(2, timeout=30_000)  # the base and teacher panes called
                box = page.locator("#chat-tool-result-base textarea")
                expect(box).to_be_visible(timeout=10_000)
                expect(page.locator("#chat-tool-result-fine_tuned textarea")).to_be_hidden()
                box.fill('{"temp": 18, "sky": "clear"}')
                box.press("Enter")
                page.get_by_text('Answer from 1 results: {"temp": 18, "sky": "clear"}').wait_for(timeout=30_000)
                expect(box).to_be_hidden(timeout=10_000)
                expect(page.locator("#chat-tool-result-teacher textarea")).to_be_visible()  # still waits
                page.screenshot(path=str(tmp_path / "chat-tools.png"), full_page=True)
                browser.close()
        finally:
            demo.close()
    sent = [b for b in srv.requests if b["model"] == "caller"]
    assert sent[0]["tools"][0]["function"]["name"] == "get_current_weather" and sent[0]["tool_choice"] == "required"
    assert sent[-1]["messages"][-1]["role"] == "tool" and sent[-1]["messages"][-1]["tool_call_id"] == "call_7"
