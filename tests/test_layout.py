"""The product card's layout rules: pipeline/ has no gradio import, and the app builds."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_pipeline_never_imports_gradio() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "pipeline").rglob("*.py")
                 if {"gradio", "gradio_client"} & _imported_modules(p)]
    assert offenders == []


def test_app_builds_with_every_tab() -> None:
    import app

    labels = {block.label for block in app.demo.blocks.values() if type(block).__name__ == "Tab"}
    assert {"Start", "Generate", "Dataset", "Fine-tune", "Chat", "Evaluate", "Hub", "Settings"} <= labels
