"""scripts/setup.sh, the first half of both README commands, run with a stand-in pip that only records
what it was asked to install (the real install is what CI's own run of the test command does)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _sandbox(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    for name in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "pip"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "$(dirname "$0")/../calls.log"\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return tmp_path


@pytest.mark.parametrize("args, wanted", [([], "-r requirements.txt"), (["--dev"], "-r requirements-dev.txt")])
def test_installs_once_then_returns_at_once(tmp_path: Path, args: list[str], wanted: str) -> None:
    box = _sandbox(tmp_path)
    for _ in range(2):
        done = subprocess.run(["bash", "scripts/setup.sh", *args], cwd=box, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    calls = (box / ".venv" / "calls.log").read_text().splitlines()
    installs = [c for c in calls if c.startswith("pip install -q -r")]
    assert installs == [f"pip install -q {wanted}"], calls  # once: the second run found its stamp
    assert any(c.startswith("pip install -q torch==") for c in calls)
