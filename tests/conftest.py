"""Shared test set-up: a throwaway workspace, no real provider keys, loopback only."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Set before any project import reads them: tests never touch the user's workspace or real keys.
os.environ["DISTILL_HOME"] = tempfile.mkdtemp(prefix="distill-test-home-")
for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN", "SPACE_ID"):
    os.environ.pop(var, None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Before torch loads: idle OpenMP threads sleep instead of spinning (the CPU is shared; see pipeline/local).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Converted model copies (SmolLM2 from its GGUF, the tiny random model) are derived, read-only data:
# keep them across test runs so only the first run pays the ~25 s conversion.
os.environ.setdefault("DISTILL_MODEL_DIR", os.path.join(tempfile.gettempdir(), "distill-studio-models"))

import pytest  # noqa: E402


def _backend(tmp_path_factory: pytest.TempPathFactory, name: str, tiny: bool):
    from pipeline.local.runtime import start_server

    handle = start_server(root=tmp_path_factory.mktemp(name), tiny=tiny)
    handle.wait_ready(timeout=600)
    return handle


@pytest.fixture(scope="session")
def tiny_backend(tmp_path_factory):
    """A running local backend (own temp workspace) serving a tiny random SmolLM2-family model.

    `.base_url`, `.api_key`, `.client()`; models come from `client.models.list()`; trains in seconds.
    """
    handle = _backend(tmp_path_factory, "tiny-backend", tiny=True)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def smollm_backend(tmp_path_factory):
    """A running local backend serving the real SmolLM2-135M-Instruct (mark such tests `slow`)."""
    handle = _backend(tmp_path_factory, "smollm-backend", tiny=False)
    yield handle
    handle.stop()


@pytest.fixture
def recorded(tiny_backend):
    """Every GenRequest the tiny backend's engine receives while the test runs."""
    engine = tiny_backend.app.state.backend.engine
    seen: list = []
    submit = engine.submit

    def recording(request):
        seen.append(request)
        submit(request)

    engine.submit = recording
    yield seen
    engine.submit = submit
