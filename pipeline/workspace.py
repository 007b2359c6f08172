"""Where runtime state lives: uploads, drafts, generation runs, jobs, adapters, logs.

Never inside the repository. `DISTILL_HOME` wins; on a Space with persistent storage `/data` is used;
otherwise the user's cache directory. Per-visitor data goes under `visitors/<visitor_id>/` so that on
a shared Space nobody sees anyone else's files.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from pipeline import config
from pipeline.errors import InputError

_VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def home() -> Path:
    """The workspace root, created on first use."""
    explicit = config.HOME.get()
    if explicit:
        root = explicit
    elif os.environ.get("SPACE_ID") and Path("/data").is_dir() and os.access("/data", os.W_OK):
        root = Path("/data/distill-studio")
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(cache) / "distill-studio"
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(*parts: str) -> Path:
    """A folder under the workspace root (created)."""
    path = home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def visitor_dir(visitor_id: str, *parts: str) -> Path:
    """A folder that belongs to one visitor; the id is checked so it cannot climb out of the workspace."""
    if not _VISITOR_ID.match(visitor_id or ""):
        raise InputError("This browser session has no valid id; reload the page to get a new one.")
    return subdir("visitors", visitor_id, *parts)


def disk_usage_bytes(path: Path | None = None) -> int:
    """Bytes used by everything under `path` (the workspace root by default)."""
    root = path or home()
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def free_bytes(path: Path | None = None) -> int:
    """Free bytes on the disk that holds the workspace."""
    return shutil.disk_usage(path or home()).free
