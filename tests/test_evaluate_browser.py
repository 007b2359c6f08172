"""The Evaluate tab in a real browser: an uploaded benchmark is what gets scored (issue 19 item 3)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import gradio as gr
import pytest

from components.context import AppContext
from components.evaluate import UPLOADED, build_evaluate_tab
from pipeline.endpoints import Endpoint, RoleChoice, SessionSettings
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port
from tests.fakes.chat_server import FakeChatServer

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")

QUESTIONS = [("What is the capital of Zorbia?", "Quux"), ("How many moons has Plimp?", "7")]


@pytest.fixture
def evaluate_url() -> Iterator[str]:
    answers = dict(QUESTIONS)
    with FakeChatServer(answers=lambda model, messages: f"It is {answers.get(messages[-1]['content'], '?')}.",
                        models=["oracle"]) as srv:
        settings = SessionSettings(custom_endpoints={"fake": Endpoint("fake", "compatible", base_url=srv.base_url)},
                                   typed_keys={"fake": "k"}, roles={"base": RoleChoice("fake", "oracle")})
        with gr.Blocks() as demo:
            ctx = AppContext(settings=gr.State(settings), visitor=gr.State("visitor-eval-upload"),
                             dataset_rev=gr.State(0), recent_jobs=gr.State([]), remembered=gr.State(None))
            build_evaluate_tab(ctx)
        port = free_port()
        demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            demo.close()


def test_an_uploaded_benchmark_is_the_one_scored(evaluate_url, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import expect

    bench = tmp_path / "mine.jsonl"
    bench.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q}], "expected": a,
                                         "scoring": "contains"}) + "\n" for q, a in QUESTIONS))
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1800})
        page.goto(evaluate_url)
        page.locator("input[type=file]").set_input_files(str(bench))
        # The list follows the upload without a second step from the visitor.
        expect(page.get_by_label("Benchmark")).to_have_value(UPLOADED, timeout=30_000)
        page.get_by_label("Fine-tuned model").uncheck()
        page.get_by_label("Teacher model").uncheck()
        page.get_by_role("button", name="Run benchmark").click()
        expect(page.get_by_text("Done.")).to_be_visible(timeout=60_000)
        expect(page.locator("#eval-scoreboard")).to_contain_text("2/2")
        browser.close()


@pytest.fixture
def holdout_url() -> Iterator[tuple[str, str]]:
    """A visitor whose dataset is facts asked several ways; the fine-tuned model knows them, the base does not."""
    from pipeline import drafts
    from tests.test_dataset_groups import paraphrase_dataset

    rows, _ = paraphrase_dataset()
    known = {r["messages"][0]["content"]: r["messages"][1]["content"] for r in rows}
    visitor = "visitor-eval-holdout"
    drafts.save_draft(visitor, rows)

    def answers(model: str, messages: list[dict]) -> str:
        return known.get(messages[-1]["content"], "?") if model.startswith("ft:") else "I could not say."

    with FakeChatServer(answers=answers, models=["small", "ft:small:me:facts"]) as srv:
        settings = SessionSettings(custom_endpoints={"fake": Endpoint("fake", "compatible", base_url=srv.base_url)},
                                   typed_keys={"fake": "k"},
                                   roles={"base": RoleChoice("fake", "small"),
                                          "fine_tuned": RoleChoice("fake", "ft:small:me:facts"),
                                          "teacher": RoleChoice("fake", "small")})
        with gr.Blocks() as demo:
            ctx = AppContext(settings=gr.State(settings), visitor=gr.State(visitor), dataset_rev=gr.State(0),
                             recent_jobs=gr.State([]), remembered=gr.State(None))
            build_evaluate_tab(ctx)
        port = free_port()
        demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/", visitor
        finally:
            demo.close()


def test_hold_out_run_and_the_chart_shows(holdout_url, tmp_path):
    """The tab before a run says what will appear (no placeholder headers, Stop quiet); hold out whole
    groups of the dataset, run, and the scoreboard, verdicts and chart appear."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import expect

    from pipeline import drafts

    url, visitor = holdout_url
    shots = os.environ.get("DISTILL_SCREENSHOTS")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 2200})
        page.goto(url)
        expect(page.locator("#eval-empty")).to_contain_text("Nothing run yet", timeout=30_000)
        expect(page.get_by_role("button", name="Stop")).to_be_disabled()
        expect(page.locator("#eval-scoreboard")).to_be_hidden()
        if shots:
            page.screenshot(path=f"{shots}/evaluate-empty.png", full_page=True)
        page.get_by_text("Make a benchmark from your dataset").click()
        page.get_by_role("button", name="Hold out from my dataset").click()
        expect(page.get_by_text("Held out 10 examples")).to_be_visible(timeout=60_000)
        expect(page.get_by_label("Benchmark", exact=True)).to_have_value(re.compile(r"^yours: .*held-out"))
        assert len(drafts.load_draft(visitor)) == 30  # the held-out examples left the dataset
        page.get_by_label("Teacher model").uncheck()
        page.get_by_role("button", name="Run benchmark").click()
        expect(page.get_by_text("Done.")).to_be_visible(timeout=120_000)
        expect(page.locator("#eval-scoreboard")).to_contain_text("10/10")
        expect(page.locator("#eval-verdicts")).to_contain_text("beats Base: small at 95% confidence")
        expect(page.locator("#eval-chart .js-plotly-plot")).to_be_visible(timeout=30_000)
        expect(page.locator("#eval-empty")).to_be_hidden()
        # Stop goes quiet in the answer of a second event chained after the run's.
        expect(page.get_by_role("button", name="Stop")).to_be_disabled(timeout=30_000)
        if shots:
            page.screenshot(path=f"{shots}/evaluate-holdout.png", full_page=True)
        browser.close()
