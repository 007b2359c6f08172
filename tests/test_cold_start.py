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


def test_the_app_launch_starts_the_backend_in_its_own_process_and_chat_uses_it(tmp_path, monkeypatch):
    """At launch the backend (torch, tokenizer, weights) starts in another process, before gradio's
    imports, and the first chat goes to that server instead of starting one in the app's process."""
    import os

    from pipeline.local import runtime
    from pipeline.local.warmup import start_backend_process

    monkeypatch.setenv("DISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("DISTILL_LOCAL_TINY", "1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(runtime, "_handle", None)
    monkeypatch.setenv("DISTILL_WARM_START", "0")
    assert start_backend_process() is False  # warm start off: nothing before the first use
    monkeypatch.delenv("DISTILL_WARM_START")
    assert start_backend_process() is True
    handle = runtime.ensure_local_backend()
    try:
        assert handle.app is None and handle.process is not None and handle.process.pid != os.getpid()
        assert runtime.ensure_local_backend() is handle
        # A server this process started is trusted while it runs: a slow answer while it loads the model
        # on a busy machine must not make the app start a second backend of its own.
        with monkeypatch.context() as patched:
            patched.setattr(runtime.lease, "answers", lambda *_a, **_k: False)
            assert runtime.ensure_local_backend() is handle
        # Settings' line on the number formats comes from that process: deciding in the app's process
        # would import torch there as a page loads.
        from pipeline.local import precision, warmup

        with monkeypatch.context() as patched:
            patched.setattr(precision, "settings_line", lambda: "decided in the app's process")
            assert warmup.compute_line().startswith("**Local model compute:** fine-tuning in ")
        reply = handle.client().chat.completions.create(
            model="SmolLM2-135M-Instruct", messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
        assert reply.choices
        assert handle.process.args[1:4] == ["-m", "pipeline", "serve"]
    finally:
        handle.stop()
    assert handle.process.poll() is not None


def test_the_backend_process_stops_when_the_app_is_killed(tmp_path):
    """Killed hard (no atexit), the app must not leave its backend holding the workspace's job runner."""
    import os
    import signal
    import time

    code = ("import os, signal; from pipeline.local import runtime; h = runtime.start_process(); "
            "assert runtime._wait_listening(h, 300); print(h.process.pid, flush=True); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    env = {**os.environ, "DISTILL_HOME": str(tmp_path), "DISTILL_LOCAL_TINY": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=600).stdout
    child = int(out.split()[0])
    deadline = time.monotonic() + 120  # a bound on waiting, not a timing claim
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the backend process outlived the app that started it")
