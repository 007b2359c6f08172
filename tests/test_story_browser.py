"""The whole story in a real browser (Debian's chromium via Playwright) against `python app.py` on the
embedded backend with the tiny random model: what a presenter clicks and sees, asserted on the page.

Screenshots of each tab are written to $DISTILL_SCREENSHOT_DIR (docs/screenshots when refreshed by
hand, a temp folder otherwise)."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import pytest

from tests.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    choose_demo_scenario,
    running_app,
    start_fine_tune_from_file,
)

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("DISTILL_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="distill-shots-"))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (scripts/run_tests.sh installs it as root)")
    from playwright.sync_api import sync_playwright

    env = {"DISTILL_LOCAL_TINY": "1", "DISTILL_DEMO_MAX_TOKENS": "8"}
    with running_app(tmp_path_factory.mktemp("story-home"), env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.goto(url)
        yield pg
        browser.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_first_screen_says_which_backend_is_active(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text("Start here")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("No OpenAI key").first).to_be_visible()
    shot(page, "start")
    for tab in ("Generate", "Hub", "Settings"):  # empty states of the tabs the story does not drive
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(1500)
        shot(page, tab.lower())


def test_a_click_the_moment_the_page_opens_works(page) -> None:
    """A presenter's quick first click: it once ran before the visitor id existed and asked for a reload."""
    from playwright.sync_api import expect

    fresh = page.context.browser.new_context().new_page()  # a first visit: nothing stored in the browser
    # Hold back the page's first event requests (the page-load events) as a busy server would, so the
    # click below comes before the visitor id exists; it must wait for it, not fail.
    fresh.add_init_script("""(() => {
        const opened = Date.now(), realFetch = window.fetch;
        window.fetch = async (...args) => {
            const url = String((args[0] && args[0].url) || args[0]);
            if (url.includes("queue/join") && Date.now() - opened < 4000) {
                await new Promise(done => setTimeout(done, 2500));
            }
            return realFetch(...args);
        };
    })()""")
    try:
        fresh.goto(page.url)
        fresh.get_by_role("button", name="Load the sample data").click()
        expect(fresh.locator("#demo-log")).to_contain_text("Loaded 53 examples", timeout=60_000)
        expect(fresh.locator("#demo-log")).not_to_contain_text("reload")
    finally:
        fresh.context.close()


def test_a_broken_file_shows_its_problems(page, tmp_path) -> None:
    from playwright.sync_api import expect

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                      '{"messages": [oops\n'
                      '{"messages": [{"role": "wizard", "content": "x"}]}\n', encoding="utf-8")
    page.get_by_role("tab", name="Dataset").click()
    page.locator("#dataset-upload input[type=file]").set_input_files(str(broken))
    expect(page.get_by_text("invalid_json").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("unrecognized_role").first).to_be_visible()
    shot(page, "dataset-problems")


def _loss_points(page) -> int:
    """How many points the loss chart's visible lines join: SVG path commands of line marks that have
    a stroke colour (a chart built from an empty frame drew its lines with none)."""
    return page.evaluate("""() => [...document.querySelectorAll('#ft-loss .mark-line path')]
        .filter(p => !['', 'none', 'transparent'].includes(p.getAttribute('stroke') || ''))
        .map(p => ((p.getAttribute('d') || '').match(/[ML]/g) || []).length)
        .reduce((a, b) => a + b, 0)""")


def test_a_tiny_fine_tune_draws_its_loss_curve_as_it_trains(page, tmp_path) -> None:
    from playwright.sync_api import expect

    sample = Path(__file__).resolve().parent.parent / "data" / "samples" / "reasoning_train.jsonl"
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(sample.read_text(encoding="utf-8").splitlines()[:12]) + "\n", encoding="utf-8")
    # Enough epochs that the job outlasts a few of the tab's 3-second reads: with its default (auto) the
    # tiny model's job could end before the second read, leaving no growth to see.
    start_fine_tune_from_file(page, small, epochs=50)
    expect(page.locator('.ft-badge[data-status="running"]')).to_be_visible(timeout=120_000)
    deadline = time.monotonic() + 120
    while _loss_points(page) == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    first = _loss_points(page)
    assert first > 0, "the loss chart drew no line"
    deadline = time.monotonic() + 240  # the line grows while the job runs (read every second)
    while _loss_points(page) <= first and time.monotonic() < deadline:
        page.wait_for_timeout(1000)
    assert _loss_points(page) > first, "the loss chart did not grow while the job ran"
    expect(page.locator('.ft-badge[data-status="succeeded"]')).to_be_visible(timeout=240_000)
    expect(page.get_by_text("Fine-tuned model:")).to_be_visible()
    shot(page, "finetune-local")


def test_the_reasoning_demo_runs_from_data_to_scoreboard(page) -> None:
    from playwright.sync_api import expect

    choose_demo_scenario(page, "Step-by-step reasoning")
    page.get_by_role("button", name="▶ Run all steps").click()
    # While it runs only Stop is live (a second click on a step would start a second job).
    expect(page.get_by_role("button", name="■ Stop")).to_be_enabled(timeout=30_000)
    expect(page.get_by_role("button", name="Fine-tune the student")).to_be_disabled()
    board = page.locator("#demo-scoreboard")
    expect(board).to_contain_text("fine-tuned", timeout=800_000)
    expect(board).to_contain_text("base")
    expect(page.locator("#demo-steps")).to_contain_text("Training loss went from")
    expect(page.get_by_text("Held-out question:")).to_be_visible()
    expect(page.get_by_role("button", name="Fine-tune the student")).to_be_enabled(timeout=30_000)
    expect(page.get_by_role("button", name="■ Stop")).to_be_disabled()
    shot(page, "start-demo-done")
    for tab in ("Dataset", "Fine-tune", "Evaluate"):  # the demo's results show in the other tabs too
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(1500)
        shot(page, tab.lower())
    page.get_by_role("tab", name="Fine-tune").click()
    expect(page.get_by_text("ft:SmolLM2-135M-Instruct:local:reasoning").first).to_be_visible(timeout=60_000)
    # The tab follows the demo's job by itself (no Open click): its badge and its curve are there.
    expect(page.locator('.ft-badge[data-status="succeeded"]')).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"Job ftjob-\w+ on"))).to_be_visible()
    assert _loss_points(page) > 0


def test_one_message_fills_three_chat_panes(page) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Chat").click()
    page.get_by_label("Max tokens", exact=True).fill("6")
    page.get_by_label("Message to all three panes").fill("What is 2 + 2?")
    page.get_by_role("button", name="Send", exact=True).click()
    bots = page.locator(".message.bot, [data-testid='bot']")
    expect(bots).to_have_count(3, timeout=120_000)
    expect(page.get_by_text("What is 2 + 2?")).to_have_count(3)
    # every pane finished: each metrics line reports its time to first token, none is still streaming
    expect(page.get_by_text(re.compile(r"first token \d"))).to_have_count(3, timeout=120_000)
    expect(page.get_by_text("streaming…")).to_have_count(0, timeout=120_000)
    shot(page, "chat")


def test_the_evaluate_tab_fills_a_scoreboard(page) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_label("Max tokens per answer").fill("6")
    page.get_by_role("button", name="Run benchmark").click()
    expect(page.locator("#eval-scoreboard")).to_contain_text("SmolLM2-135M-Instruct", timeout=600_000)
    shot(page, "evaluate-scoreboard")
