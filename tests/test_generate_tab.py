"""Generate tab handlers against the fake OpenAI server: preview, a run into the draft, stop."""

from __future__ import annotations

import secrets
import threading

import pytest

from components import generate as tab
from components.generate_run import MAX_VARS, RunHandle
from pipeline import drafts
from pipeline.endpoints import Endpoint, SessionSettings
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
    assert any(u.get("progress_sl") == 100 for u in updates)
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
    import gradio as gr

    with pytest.raises(gr.Error, match="Paraphrase"):
        tab.preview_prompt(*form("paraphrase", visitor_id(), settings_for(fake)))
