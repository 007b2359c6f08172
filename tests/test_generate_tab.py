"""Generate tab handlers against the fake OpenAI server: preview, a run into the draft, stop."""

from __future__ import annotations

import secrets
import threading

import pytest

from components import generate as tab
from components.generate_run import MAX_VARS, RunHandle
from pipeline import drafts
from pipeline.endpoints import Endpoint, SessionSettings
from pipeline.errors import DistillError, InputError
from tests.fakes.fake_openai import FakeOpenAI


@pytest.fixture
def fake():
    with FakeOpenAI(seed=11, latency=0.01) as server:
        yield server


def settings_for(fake: FakeOpenAI) -> SessionSettings:
    s = SessionSettings()
    s.custom_endpoints["fake"] = Endpoint("fake", "compatible", base_url=fake.base_url)
    s.typed_keys["fake"] = "test-key"
    return s


def form(template: str, visitor: str, settings: SessionSettings, *, n: int = 5, values: tuple = (),
         budget: float | None = None) -> list:
    boxes = list(values) + [""] * (MAX_VARS - len(values))
    t = tab.gen.load_template(template)
    defaults = [v.default for v in t.variables.values()][:MAX_VARS]
    boxes = [b or (defaults[i] if i < len(defaults) else "") for i, b in enumerate(boxes)]
    return [template, *boxes, "fake", "gpt-4o-mini", n, 4, 0.9, budget, 0, False, None, visitor, settings]


def visitor_id() -> str:
    return secrets.token_urlsafe(12)


def test_template_form_shows_the_templates_variables() -> None:
    out = tab.show_template("knowledge")
    assert "Knowledge" in out["template_md"]
    assert out["var_box_1"]["visible"] and out["var_box_1"]["label"].startswith("Fact sheet")
    assert not out["var_box_5"]["visible"]
    assert out["check_cb"]["visible"] is False and tab.show_template("reasoning")["check_cb"]["visible"]


def test_preview_shows_the_exact_prompt_and_estimate(fake: FakeOpenAI) -> None:
    v = visitor_id()
    out = tab.preview_prompt(*form("tone", v, settings_for(fake), values=("dry and witty",)))
    assert "dry and witty" in out["prompt_box"] and "### system" in out["prompt_box"]
    assert "teacher calls" in out["estimate_md"] and "$" in out["estimate_md"]


def test_run_appends_to_the_draft_and_records_provenance(fake: FakeOpenAI) -> None:
    v = visitor_id()
    drafts.save_draft(v, [{"messages": [{"role": "user", "content": "my own edit"},
                                        {"role": "assistant", "content": "kept"}]}])
    updates = list(tab.generate_examples(*form("reasoning", v, settings_for(fake), n=6), RunHandle(), 0))
    draft = drafts.load_draft(v)
    assert len(draft) == 7 and draft[0]["messages"][0]["content"] == "my own edit"
    assert all(set(ex) == {"messages"} for ex in draft)
    revs = [u["dataset_rev"] for u in updates if "dataset_rev" in u]
    assert revs and revs[-1] >= 1
    assert any('value="100.0"' in str(u.get("progress_bar")) for u in updates)
    meta = drafts.load_meta(v)
    [run] = meta["generation"]
    assert run["template"] == "reasoning" and run["teacher"] == "gpt-4o-mini" and run["added_to_draft"] == 6
    assert "test-key" not in str(meta)


def test_stop_keeps_what_was_finished() -> None:
    with FakeOpenAI(seed=12, latency=0.2) as slow:
        v = visitor_id()
        handle = RunHandle()
        run = tab.generate_examples(*form("tone", v, settings_for(slow), n=300), handle, 0)
        next(run)  # started
        threading.Timer(1.0, tab.stop_generation, args=(handle,)).start()
        updates = list(run)
    status = [u["status_md"] for u in updates if "status_md" in u][-1]
    assert "Stopped" in status
    written = len(drafts.load_draft(v))
    assert 0 < written < 300
    assert drafts.load_meta(v)["generation"][0]["state"] == "cancelled"


def test_paraphrase_needs_examples(fake: FakeOpenAI) -> None:
    # The handler raises the pipeline's error; wire() shows it to the visitor as a gr.Error.
    with pytest.raises(InputError, match="Paraphrase"):
        tab.preview_prompt(*form("paraphrase", visitor_id(), settings_for(fake)))


def test_an_error_in_the_run_gives_the_buttons_back(fake: FakeOpenAI) -> None:
    args = form("tone", visitor_id(), settings_for(fake), budget=1.0)
    args[MAX_VARS + 2] = "unpriced-model"  # a budget cannot be enforced without a price
    updates = []
    with pytest.raises(DistillError, match="price"):
        for update in tab.generate_examples(*args, RunHandle(), 0):
            updates.append(update)
    assert updates[-1]["start_btn"]["interactive"] is True


def test_budget_defaults_to_the_settings_cap_only_for_priced_models() -> None:
    from types import SimpleNamespace

    from components.generate_run import run_budget

    settings = SimpleNamespace(budget_usd=5.0)
    assert run_budget(0.5, settings, "unpriced-model") == 0.5
    assert run_budget(None, settings, "gpt-4o-mini") == 5.0
    assert run_budget(None, settings, "unpriced-model") is None


def test_preview_with_the_default_teacher_does_not_start_the_local_backend(monkeypatch) -> None:
    import pipeline.local.runtime as runtime
    from pipeline.endpoints import LOCAL_MODEL

    def refuse(*_a, **_k):
        raise AssertionError("preview started the local backend")

    monkeypatch.setattr(runtime, "ensure_local_backend", refuse)
    args = form("tone", visitor_id(), SessionSettings())
    args[MAX_VARS + 1], args[MAX_VARS + 2] = tab.ROLE_DEFAULT, ""
    out = tab.preview_prompt(*args)
    assert LOCAL_MODEL in out["estimate_md"] and "### user" in out["prompt_box"]


def test_handlers_name_every_variable_box_and_the_run_redraws_the_dataset_at_most_once_a_second() -> None:
    from components.generate_run import Throttle
    from components.wiring import input_names

    assert set(tab.VAR_BOXES) <= set(input_names(tab.generate_examples)) & set(input_names(tab.preview_prompt))
    now = [0.0]
    redraw = Throttle(1.0, clock=lambda: now[0])
    fired = []
    for step in range(40):  # a batch every 0.25 s for 10 s
        now[0] = step * 0.25
        redraw.pending()
        fired.append(redraw.due())
    assert sum(fired) == 10 and fired[0]  # the first batch shows at once
    assert redraw.flush() and not redraw.flush()  # the last batches are owed one more redraw, once
    assert not Throttle(1.0).due()  # nothing new, nothing to redraw
