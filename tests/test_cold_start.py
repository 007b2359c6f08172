"""Cold start: what the first page waits for, and what happens as soon as the app is launched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _in_fresh_process(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.strip().splitlines()[-1]


def test_building_the_app_imports_nothing_the_first_page_does_not_need():
    """The first page waits for every import `app` makes. The model stack (torch, transformers), the
    openai SDK (~1 s: its types) and plotly (~0.3 s) are needed only once something is used."""
    heavy = ("torch", "transformers", "openai", "plotly", "datasets", "trl", "peft", "llguidance", "tiktoken")
    code = f"import sys; import app; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    assert _in_fresh_process(code) == "[]"


def test_gradio_does_not_rewrite_its_stub_files_when_the_app_imports_it():
    """gradio re-parses its own sources at every import to refresh .pyi stubs (~40% of `import gradio`)."""
    code = ("import app, gradio.component_meta as m, components.quick_import as q; "
            "print(m.create_or_modify_pyi is q._skip_stub_writing)")
    assert _in_fresh_process(code) == "True"
    # The components still work: the app built above, and a component's events are still defined.
    code = "import components.quick_import; import gradio as gr; print(callable(gr.Button().click))"
    assert _in_fresh_process(code) == "True"



def test_page_load_events_leave_the_model_stack_to_the_warm_up():
    """Every event a page load fires runs (with the components' initial values) without importing torch.
    The Settings tab's compute-precision line did at every load and visitor change: ~2 s of CPU in a
    worker thread, and it waited on the import lock held by the model's warm-up, both delaying the
    first chat. It is now filled when the Settings tab is opened. (The Fine-tune tab's model list asks
    the local backend, which the warm-up starts: here no backend is reachable.)"""
    code = """
import sys, inspect, app
from gradio import Tab
import pipeline.local.runtime as runtime
def not_here():  # the warm-up starts the backend (and imports torch for it); here nothing answers
    raise ConnectionError("no local backend in this test")
runtime.ensure_local_backend = not_here
demo = app.demo
ran = []
for fn in demo.fns.values():
    if not any(event == "load" for _, event in fn.targets):
        continue
    try:
        out = fn.fn(*[getattr(c, "value", None) for c in fn.inputs]) if fn.fn else None
        list(out) if inspect.isgenerator(out) else None
    except Exception:
        pass  # a handler that needs a visitor id: the imports it made are what this test looks at
    ran.append(fn.name)
tabs = {b.id: b for b in demo.blocks.values() if isinstance(b, Tab)}
settings = tabs["settings"]._id
precision = [fn.name for fn in demo.fns.values() if (settings, "select") in fn.targets]
print(len(ran) > 5, "torch" in sys.modules, precision)
"""
    assert _in_fresh_process(code) == "True False ['show_precision']"


def test_a_page_load_draws_the_draft_and_batch_lists_once_with_the_settled_visitor_id():
    """The Dataset redraw and the batch lists ran on page load with the browser's stored id, and again
    when the visitor id arrived: a new visitor's browser went through a second wave of events
    re-drawing an empty draft and empty lists. They now run once, chained on the start-up event that
    settles the id (a returning visitor's reload still shows their draft and batches: see
    tests/test_dataset_browser.py and tests/test_batch_browser.py)."""
    import app

    demo = app.build_app()
    fns = list(demo.fns.values())
    visitor = next(b._id for b in demo.blocks.values() if getattr(b, "storage_key", None) == "distill_visitor")
    assert [fn.name for fn in fns if (visitor, "change") in fn.targets] == []
    start = next(fn for fn in fns if fn.name == "start_session")
    on_load = sorted(fn.name for fn in fns if any(event == "load" for _, event in fn.targets))
    after_start = sorted(fn.name for fn in fns if fn.trigger_after == start._id)
    assert not {"show_draft", "follow_kind", "render_settings"} & set(on_load)
    assert after_start == ["follow_kind", "follow_kind", "render_settings", "restore_settings", "show_draft"]


def test_an_empty_draft_is_drawn_without_validating_or_charting():
    """A new visitor's Dataset tab (no rows) is drawn without the token counter or plotly (~0.9 s of
    the app's CPU at every new visitor's page load): the summary's greeting says where to start."""
    code = """
import sys
from components.dataset_render import render
from pipeline.dataset.draft_view import EMPTY_DRAFT
shown = render(None, "gpt-4o-mini-2024-07-18", 0, None)
print("plotly" in sys.modules, "tiktoken" in sys.modules, shown["summary_md"] == EMPTY_DRAFT, shown["table_df"])
"""
    assert _in_fresh_process(code) == "False False True []"


def test_the_status_line_is_drawn_again_after_the_chat_tab_looks_up_the_fine_tuned_model():
    """The status line and the Chat tab's pickers both follow a settings change; the pickers' look-up of
    the newest fine-tuned model fills the session's cache in place, so the status line, drawn first,
    said "local · SmolLM2" for the fine-tuned student while the pane below said none yet (seen in
    Chromium on a new visitor's page). It is drawn again after each look-up."""
    import app

    demo = app.build_app()
    fns = list(demo.fns.values())
    lookups = [fn for fn in fns if fn.name == "use_role_defaults" and fn.fn.__module__ == "components.chat"]
    redraws = [fn for fn in fns if fn.name == "render_status"]
    assert len(lookups) == 2  # the tab's button and every settings change
    assert all(any(r.trigger_after == fn._id for r in redraws) for fn in lookups)
