"""The path of a visitor with their own key, typed into Settings (issue 19), in a real browser against
`python app.py` and an OpenAI stand-in (models, structured chat, files, fine-tuning jobs): add an
endpoint -> roles -> generate -> fine-tune on that endpoint -> the fine-tuned model in Chat -> an
uploaded benchmark scored; then a second visitor, who sees none of it.

Screenshots of each step go to $DISTILL_SCREENSHOT_DIR (a temp folder otherwise)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, running_app
from tests.fakes.openai_ft_stub import OpenAIFineTuneStub

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
SHOTS = Path(os.environ.get("DISTILL_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="distill-ownkey-"))
TEACHER, BASE = "gpt-4o", "gpt-4o-mini-2024-07-18"
KEY = "sk-typed-by-visitor-a-5150"
WORDS = ("zebra", "lantern", "quartz")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def choose(page, field, option: str) -> None:
    field.click()
    page.get_by_role("option", name=option, exact=True).click()


def options(page, field) -> list[str]:
    field.click()
    playwright_api.expect(page.get_by_role("option").first).to_be_visible()  # read the list once it is open
    names = [o.inner_text().strip() for o in page.get_by_role("option").all()]
    page.keyboard.press("Escape")
    return names


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    env = {"DISTILL_LOCAL_TINY": "1", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "DISTILL_MULTI_USER": "1"}
    stub = OpenAIFineTuneStub(api_key=KEY)
    try:
        with running_app(tmp_path_factory.mktemp("ownkey-home"), env, timeout_s=300) as url, \
                playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser, url, stub
            browser.close()
    finally:
        stub.close()


def test_own_key_typed_in_settings_end_to_end_then_a_second_visitor_sees_none_of_it(story, tmp_path) -> None:
    expect = playwright_api.expect
    browser, url, stub = story
    a = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    a.goto(url)
    status = a.locator("#distill-status")
    expect(status).to_contain_text("No OpenAI key", timeout=60_000)

    # 1. Settings: + New endpoint (the kind's capabilities come ticked), base URL, key; Save.
    a.get_by_role("tab", name="Settings").click()
    for capability in ("fine_tuning", "structured_output"):
        expect(a.get_by_label(capability, exact=True)).to_be_checked()
    a.get_by_label("Name", exact=True).fill("myopenai")
    a.get_by_label("Base URL").fill(stub.base_url)
    a.get_by_label("API key").fill(KEY)
    a.get_by_role("button", name="Save endpoint").click()
    expect(a.get_by_text("Saved 'myopenai' (key: typed (this session))")).to_be_visible(timeout=30_000)
    expect(a.locator("#endpoints-table")).to_contain_text("fine_tuning", timeout=30_000)
    assert KEY not in a.content()

    # 2. Roles: teacher, base and judge on the new endpoint (the pickers list it without a reload).
    for label, model in (("Teacher", TEACHER), ("Base student", BASE)):
        choose(a, a.get_by_label(f"{label}: endpoint"), "myopenai")
        expect(a.locator("body")).to_contain_text("✅ myopenai", timeout=30_000)
        choose(a, a.get_by_label(f"{label}: model"), model)
    a.get_by_role("button", name="Save roles").click()
    expect(a.get_by_text("Saved roles.")).to_be_visible(timeout=30_000)
    expect(status).to_contain_text(f"Teacher myopenai · {TEACHER}", timeout=30_000)
    expect(status).to_contain_text("'myopenai' key: typed (this session)")
    expect(status).not_to_contain_text("No OpenAI key")
    expect(status).to_contain_text(f"Judge myopenai · {TEACHER}")  # follows the visitor's teacher
    expect(status).not_to_contain_text("local ·")  # the fine-tuned role follows the base's endpoint
    shot(a, "1-settings")

    # Editing the endpoint (a capability, the key again) leaves the roles as the visitor set them.
    choose(a, a.get_by_label("Endpoint to edit"), "myopenai")
    # The server's answer to that pick fills the form and empties the key box: wait for it, or it can
    # empty the key typed below.
    expect(a.get_by_label("API key")).to_have_attribute("placeholder", re.compile("^Key: typed"), timeout=30_000)
    a.get_by_label("API key").fill(KEY)
    a.get_by_role("button", name="Save endpoint").click()
    expect(a.get_by_text("Saved 'myopenai'")).to_be_visible(timeout=30_000)
    expect(status).to_contain_text(f"Base student myopenai · {BASE}", timeout=30_000)

    # A refresh keeps the session's settings (no "Remember" ticked).
    a.reload()
    expect(status).to_contain_text(f"Teacher myopenai · {TEACHER}", timeout=60_000)

    # 3. Generate: 20 examples from the teacher role (structured output on the stand-in).
    a.get_by_role("tab", name="Generate").click()
    a.get_by_role("button", name="Start", exact=True).click()
    expect(a.get_by_text(re.compile(r"Done\W+20/20 examples"))).to_be_visible(timeout=120_000)
    shot(a, "2-generate")

    # 4. Fine-tune on that endpoint: the tab defaults to the base role's endpoint and model.
    a.get_by_role("tab", name="Fine-tune").click()
    expect(a.locator("#ft-endpoint input")).to_have_value("myopenai", timeout=30_000)
    expect(a.locator("#ft-model input")).to_have_value(BASE, timeout=30_000)
    a.get_by_role("button", name="Start fine-tuning").click()
    expect(a.locator(".ft-badge[data-status=succeeded]")).to_be_visible(timeout=180_000)
    expect(a.get_by_text("now the Chat tab's fine-tuned model").first).to_be_visible(timeout=30_000)
    tuned = next(j.obj["fine_tuned_model"] for j in stub.jobs.values())
    assert stub.bodies("POST", "/v1/fine_tuning/jobs")[0]["model"] == BASE
    shot(a, "3-finetune")

    # 5. Chat: the fine-tuned pane holds the new model; all three panes answer through the stand-in.
    a.get_by_role("tab", name="Chat").click()
    expect(a.locator("#chat-model-fine_tuned input")).to_have_value(tuned, timeout=30_000)
    expect(a.locator("#chat-model-base input")).to_have_value(BASE)
    a.get_by_label("Message to all three panes").fill("Say hello")
    a.get_by_role("button", name="Send", exact=True).click()
    expect(a.get_by_text(f"{tuned} says: Say hello")).to_be_visible(timeout=60_000)
    expect(a.get_by_text(f"{TEACHER} says: Say hello")).to_be_visible(timeout=30_000)
    shot(a, "4-chat")

    # 6. Evaluate: an uploaded benchmark (not a sample) is scored for base, fine-tuned and teacher.
    bench = tmp_path / "mine.jsonl"
    bench.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Repeat the word {w}"}],
                                         "expected": w, "scoring": "contains"}) + "\n" for w in WORDS))
    a.get_by_role("tab", name="Evaluate").click()
    upload = a.locator(".block", has_text="upload a benchmark JSONL").locator("input[type=file]")
    upload.set_input_files(str(bench))
    expect(a.get_by_label("Benchmark")).to_have_value("Uploaded file", timeout=30_000)
    a.get_by_role("button", name="Run benchmark").click()
    board = a.locator("#eval-scoreboard")
    expect(a.get_by_text("Results saved in your workspace")).to_be_visible(timeout=120_000)
    expect(board).to_contain_text(f"Fine-tuned: {tuned}")
    expect(board).to_contain_text(f"{len(WORDS)}/{len(WORDS)}")
    shot(a, "5-evaluate")

    # Visitor B, another browser: none of A's endpoints, keys, roles or models.
    b = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    b.goto(url)
    b_status = b.locator("#distill-status")
    expect(b_status).to_contain_text("No OpenAI key", timeout=60_000)
    expect(b_status).not_to_contain_text("myopenai")
    b.get_by_role("tab", name="Settings").click()
    expect(b.locator("#endpoints-table")).to_contain_text("local", timeout=30_000)
    expect(b.locator("#endpoints-table")).not_to_contain_text("myopenai")
    assert "myopenai" not in options(b, b.get_by_label("Teacher: endpoint"))
    b.get_by_role("tab", name="Fine-tune").click()
    assert "myopenai" not in options(b, b.locator("#ft-endpoint input"))
    b.get_by_role("tab", name="Chat").click()
    expect(b.locator("#chat-model-fine_tuned input")).not_to_have_value(tuned, timeout=30_000)
    assert tuned not in b.content() and KEY not in b.content()
    shot(b, "6-visitor-b-chat")
    # ...and A still has everything after B came.
    a.reload()
    expect(status).to_contain_text(f"Teacher myopenai · {TEACHER}", timeout=60_000)

    # Two quick clicks: the reply to the first must not untick the second.
    a.get_by_role("tab", name="Settings").click()
    a.get_by_label("Remember my endpoints in this browser").check()
    a.get_by_label("…and their keys (only on a computer you trust)").check()
    expect(a.locator("#remember-note")).to_contain_text("with their keys", timeout=30_000)
    a.wait_for_timeout(2000)  # let every reply arrive (not a timing assertion: the state is checked after)
    expect(a.get_by_label("…and their keys (only on a computer you trust)")).to_be_checked()
    expect(a.get_by_label("Remember my endpoints in this browser")).to_be_checked()
