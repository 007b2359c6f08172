"""Real browser (Debian's chromium via Playwright): start a job in the Fine-tune tab, reload the page,
and find the tab watching the same job again; then cancel it through the confirmation row."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, start_fine_tune_from_file, upload_training_file
from tests.fakes.openai_ft_stub import OpenAIFineTuneStub
from tests.test_finetune_openai import examples

pytestmark = pytest.mark.browser


@pytest.fixture
def running_app(monkeypatch):
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed")
    stub = OpenAIFineTuneStub()
    monkeypatch.setenv("OPENAI_API_KEY", stub.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    import app

    demo = app.build_app()
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo, stub
    demo.close()
    stub.close()


def test_start_reload_reattach_and_cancel(running_app, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    demo, stub = running_app
    train = tmp_path / "riddles.jsonl"
    train.write_text("".join(json.dumps(e) + "\n" for e in examples(200)), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(demo.local_url)
        upload_training_file(page, train, timeout_ms=90_000)
        page.get_by_role("button", name="Check data and cost").click()
        expect(page.get_by_text("180 training examples, 20 validation")).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Start fine-tuning").click()
        job_text = page.get_by_text(re.compile(r"Job ftjob-\d+stub"))
        expect(job_text).to_be_visible(timeout=30_000)
        job_id = re.search(r"ftjob-\d+stub", job_text.inner_text()).group(0)

        page.reload()  # a refresh loses every gr.State; the job must come back by itself
        page.get_by_role("tab", name="Fine-tune").click()
        expect(page.get_by_text(f"Job {job_id}")).to_be_visible(timeout=30_000)
        expect(page.locator(".ft-badge")).not_to_have_attribute("data-status", "no job", timeout=30_000)

        page.get_by_role("button", name="Cancel job").click()
        page.get_by_role("button", name="Yes, cancel it").click()
        expect(page.locator('.ft-badge[data-status="cancelled"]')).to_be_visible(timeout=30_000)
        browser.close()
    assert stub.bodies("POST", f"/v1/fine_tuning/jobs/{job_id}/cancel") == [None]


def test_succeeded_job_becomes_the_chat_tabs_fine_tuned_model(running_app, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    demo, stub = running_app
    train = tmp_path / "small.jsonl"
    train.write_text("".join(json.dumps(e) + "\n" for e in examples(12)), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(demo.local_url)
        start_fine_tune_from_file(page, train)
        expect(page.locator('.ft-badge[data-status="succeeded"]')).to_be_visible(timeout=120_000)
        model = re.search(r"ft:[^\s`]+", page.get_by_text("Fine-tuned model:").inner_text()).group(0)
        page.get_by_role("tab", name="Chat").click()
        # The fine-tuned pane's model picker now holds the new model (it may take a moment to refresh).
        page.wait_for_function(f"() => [...document.querySelectorAll('input')].some(e => e.value === '{model}')",
                               timeout=30_000)
        browser.close()
