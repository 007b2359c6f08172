"""Batch mode in a real browser (Debian's chromium via Playwright) against `python app.py` on the
embedded backend with the tiny random model: submit a generation batch from the Generate tab, the
panel's timer follows it to the end, Collect puts its examples in the draft, the Dataset tab shows
them, and a reload shows the same list. Screenshots go to $DISTILL_SCREENSHOT_DIR (a temp folder
otherwise)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from pipeline.generate.templates import load_template
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, running_app

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("DISTILL_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="distill-batch-shots-"))


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")
def test_a_generation_batch_from_submit_to_the_dataset_tab(tmp_path_factory) -> None:
    from playwright.sync_api import expect, sync_playwright

    env = {"DISTILL_LOCAL_TINY": "1", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    with running_app(tmp_path_factory.mktemp("batch-home"), env, timeout_s=300) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, timeout=120_000)  # a busy shared machine is slow to serve the first page
        expect(page.get_by_text("Start here")).to_be_visible(timeout=60_000)  # the session has its id
        page.get_by_role("tab", name="Generate").click()
        panel = page.locator("#batch-list-generate")
        expect(panel).to_contain_text("No generation batches yet", timeout=60_000)
        page.get_by_label("Template").click()
        page.get_by_role("option", name="classification").click()  # one free-text field: the tiny random model parses best
        # The template's boxes (labels, defaults) come with the server's answer to that pick; a batch
        # submitted before then was built from the previous template's values under the new one's names.
        task = load_template("classification").variables["task"]
        expect(page.get_by_label(task.label)).to_have_value(task.default, timeout=60_000)
        page.get_by_role("spinbutton", name="Examples").fill("8")
        page.get_by_label("Batch (half price, results within 24 h)").check()
        expect(page.get_by_role("button", name="Start", exact=True)).to_be_hidden(timeout=60_000)
        page.get_by_role("button", name="Submit batch").click()
        message = page.locator("#batch-msg-generate")
        expect(message).to_contain_text("Submitted", timeout=120_000)
        shot(page, "batch-submitted")
        for _attempt in range(3):  # the tiny model writes random words: unparsed replies are retried
            # The panel's timer follows the batch (no clicks) until the local backend has run it.
            expect(panel).to_contain_text("finished: collect it", timeout=300_000)
            shot(page, "batch-finished")
            page.get_by_role("button", name="Collect results").click()
            expect(message).to_contain_text("added to your draft", timeout=120_000)
            added = int(re.search(r"(\d+) examples? added", message.inner_text()).group(1))
            if added:
                break
            page.get_by_role("button", name="Retry failed requests").click()
            expect(message).to_contain_text("Submitted", timeout=120_000)
        assert added >= 1, message.inner_text()
        expect(panel).to_contain_text("collected")
        expect(page.get_by_role("button", name="Collect results")).to_be_disabled()  # once is all
        shot(page, "generate-batches")
        page.get_by_role("tab", name="Dataset").click()
        summary = page.locator("strong").filter(has_text=re.compile(rf"^{added} examples$"), visible=True)
        expect(summary).to_be_visible(timeout=60_000)
        # A reload (the browser closed and opened again) shows the same list.
        page.reload(timeout=120_000)
        expect(page.get_by_text("Start here")).to_be_visible(timeout=60_000)
        page.get_by_role("tab", name="Generate").click()
        expect(page.locator("#batch-list-generate")).to_contain_text("collected", timeout=60_000)
        page.get_by_role("tab", name="Evaluate").click()
        expect(page.locator("#batch-list-eval")).to_contain_text("No evaluation batches yet", timeout=60_000)
        # The line comes with the panel's own page-load answer (the empty line above is already in the page).
        expect(page.get_by_text(re.compile(r"You also have \d+ generation batch"))).to_be_visible(timeout=60_000)
        shot(page, "batch-evaluate-empty")
        browser.close()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")
def test_an_evaluation_batch_lands_on_the_scoreboard(tmp_path_factory) -> None:
    from playwright.sync_api import expect, sync_playwright

    env = {"DISTILL_LOCAL_TINY": "1", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    with running_app(tmp_path_factory.mktemp("batch-eval-home"), env, timeout_s=300) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, timeout=120_000)  # a busy shared machine is slow to serve the first page
        expect(page.get_by_text("Start here")).to_be_visible(timeout=60_000)
        page.get_by_role("tab", name="Evaluate").click()
        page.get_by_label("Max tokens per answer").fill("8")  # the tiny model's answers are random anyway
        page.get_by_label("Batch (half price, results within 24 h)").check()
        message, panel = page.locator("#batch-msg-eval"), page.locator("#batch-list-eval")
        # Choosing Batch also asks for a preview line in the message box: arriving after the submit's own
        # answer, it would replace "Submitted".
        expect(message).to_contain_text("As a batch:", timeout=60_000)
        page.get_by_role("button", name="Submit batch").click()
        expect(message).to_contain_text("Submitted", timeout=120_000)
        expect(panel).to_contain_text("evaluation")
        expect(panel).to_contain_text("finished: collect it", timeout=300_000)
        page.get_by_role("button", name="Collect results").click()
        expect(message).to_contain_text("the scoreboard below shows it", timeout=120_000)
        expect(page.locator("#eval-scoreboard")).to_be_visible(timeout=60_000)
        expect(page.locator("#eval-scoreboard")).to_contain_text("Base")
        shot(page, "evaluate-batches")
        browser.close()
