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
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
