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
