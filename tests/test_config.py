"""pipeline/config.py is the one place DISTILL_* variables are declared and read, at call time."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pipeline import config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\bDISTILL_[A-Z0-9_]*[A-Z0-9]\b")
SOURCES = [*sorted((ROOT / "pipeline").rglob("*.py")), *sorted((ROOT / "components").rglob("*.py")), ROOT / "app.py"]


def test_readme_table_matches_the_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    rows = [line for line in readme if line.startswith("| `DISTILL_")]
    assert rows == config.markdown_rows(), "regenerate the rows with: python -m pipeline.config"


def test_every_variable_named_in_the_code_or_docs_is_declared() -> None:
    declared = {s.name for s in config.SETTINGS}
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    named = {m for path in SOURCES + docs for m in NAME.findall(path.read_text(encoding="utf-8"))}
    assert named - declared == set()


def test_only_the_config_module_reads_them() -> None:
    """A variable's name as a bare string (os.environ.get("DISTILL_X")) anywhere else is an ad-hoc read."""
    offenders = []
    for path in SOURCES:
        if path == ROOT / "pipeline" / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_values_are_read_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTILL_MAX_PULL_ROWS", raising=False)
    assert config.MAX_PULL_ROWS.get() == 20000
    monkeypatch.setenv("DISTILL_MAX_PULL_ROWS", "7")
    assert config.MAX_PULL_ROWS.get() == 7
    monkeypatch.setenv("DISTILL_MAX_EPOCHS", "0")
    assert config.MAX_EPOCHS.get() is None  # 0 = no limit, as before
    monkeypatch.setenv("DISTILL_DECODE_INT8", "0")
    assert config.DECODE_INT8.get() is False
    monkeypatch.setenv("DISTILL_SHARED_KEY_VARS", " A_KEY, ,B_KEY ")
    assert config.SHARED_KEY_VARS.get() == {"A_KEY", "B_KEY"}


@pytest.mark.parametrize(("name", "value"), [("DISTILL_MAX_PULL_ROWS", "lots"), ("DISTILL_MAX_EPOCHS", "-1"),
                                             ("DISTILL_LOCAL_TINY", "maybe"), ("DISTILL_MAX_UPLOAD_MB", "0")])
def test_a_value_that_cannot_be_read_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str,
                                                         value: str) -> None:
    monkeypatch.setenv(name, value)
    setting = next(s for s in config.SETTINGS if s.name == name)
    with pytest.raises(ConfigError, match=f"{name}=.*should be .*unset it"):
        setting.get()
