"""The Dataset tab in a real browser: load a sample (one page, its line says so), edit a cell, reload the page,
the edit is still there."""

from __future__ import annotations

import os

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port

pytestmark = pytest.mark.browser


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")
def test_edit_survives_reload() -> None:
    from playwright.sync_api import sync_playwright

    import app
    from components.dataset_view import sample_choices, sample_path
    from pipeline.dataset import read_dataset

    sample = sample_choices()[0]
    first = read_dataset(sample_path(sample)).examples[0]["messages"]
    question = next(m["content"] for m in first if m["role"] == "user")
    app.demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(app.demo.local_url)
            # A loaded machine kept the fresh page busy past the default 30 s (the click hung, twice).
            page.get_by_role("tab", name="Dataset").click(timeout=120_000)
            page.get_by_label("…or a sample dataset").click()
            page.get_by_role("option", name=sample).click()
            page.get_by_role("button", name="Load sample").click()
            page.get_by_text(f"from sample {sample}").wait_for(timeout=60_000)
            n = len(read_dataset(sample_path(sample)).examples)
            page.locator("#dataset-page").get_by_text(f"Rows 1–{n} of {n}").wait_for(timeout=60_000)  # one page
            cell = page.get_by_text(question, exact=True).first
            try:
                cell.wait_for(timeout=30_000)
            except Exception as exc:  # say what the table showed instead: CI keeps only this text
                shown = page.locator("table").first.inner_text(timeout=5_000)[:1500]
                raise AssertionError(f"first question not in the table; it shows:\n{shown}") from exc
            cell.dblclick()
            page.keyboard.press("Control+A")
            page.keyboard.type("EDITED IN THE BROWSER?")
            page.keyboard.press("Enter")
            page.get_by_text("Saved.").wait_for(timeout=60_000)
            page.reload()
            page.get_by_role("tab", name="Dataset").click(timeout=120_000)
            page.get_by_text("EDITED IN THE BROWSER?").first.wait_for(timeout=60_000)
            browser.close()
    finally:
        app.demo.close()
