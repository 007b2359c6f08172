"""In chromium (tiny model): a visitor who opens the Dataset tab while the demo runs sees the draft as
the demo left it, although the run no longer redraws that tab after each step (components/start.py)."""

from __future__ import annotations

import os

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, choose_demo_scenario, running_app

pytestmark = pytest.mark.browser


def test_the_dataset_tab_opened_mid_run_shows_the_rows_the_demo_wrote(tmp_path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (scripts/run_tests.sh installs it as root)")
    from playwright.sync_api import expect, sync_playwright

    env = {"DISTILL_LOCAL_TINY": "1", "DISTILL_DEMO_MAX_TOKENS": "8"}
    with running_app(tmp_path, env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        choose_demo_scenario(page, "Step-by-step reasoning")
        page.get_by_role("button", name="▶ Run all steps").click()
        # Load (50 rows) and hold-out (10 leave) are done once the fine-tune's row says it is running.
        running = page.locator("#demo-steps [role=row]", has_text="Fine-tune the student").filter(has_text="running…")
        expect(running).to_be_visible(timeout=120_000)
        page.get_by_role("tab", name="Dataset").click()
        expect(page.locator("#dataset-page")).to_contain_text("of 40", timeout=30_000)
        page.get_by_role("tab", name="Start").click()
        expect(page.locator("#demo-scoreboard")).to_contain_text("fine-tuned", timeout=800_000)
        browser.close()
