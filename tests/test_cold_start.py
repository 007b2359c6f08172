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

