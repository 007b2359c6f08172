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


def _project_modules(root: Path) -> dict[str, Path]:
    modules = {}
    for package in ("pipeline", "components"):
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> project modules it imports, at any depth of the file (an import inside a function
    counts: hiding one there dodges the cycle at import time but keeps the two modules tangled).
    `from a.b import c` counts as importing a.b.c when that is a module, else a.b."""
    modules = _project_modules(root)

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{up}.{base}" if base else up
                targets.update(known(f"{base}.{alias.name}") for alias in node.names)
        graph[name] = {t for t in targets if t and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_no_import_cycles_among_project_modules() -> None:
    assert import_cycles(import_graph()) == []


def test_the_cycle_check_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    (tmp_path / "pipeline" / "sub").mkdir(parents=True)
    (tmp_path / "components").mkdir()
    files = {"pipeline/__init__.py": "", "pipeline/a.py": "from pipeline.sub import b\n",
             "pipeline/sub/__init__.py": "", "pipeline/sub/b.py": "from . import c\n",
             "pipeline/sub/c.py": "def later():\n    import pipeline.a\n",
             "components/tab.py": "from pipeline.a import thing\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["pipeline.sub.b"] == {"pipeline.sub.c"} and graph["components.tab"] == {"pipeline.a"}
    assert import_cycles(graph) == [["pipeline.a", "pipeline.sub.b", "pipeline.sub.c"]]


def _production_files() -> list[Path]:
    return [*sorted((ROOT / "pipeline").rglob("*.py")), *sorted((ROOT / "components").rglob("*.py")), ROOT / "app.py"]


def test_no_assert_in_production_code() -> None:
    """`python -O` drops asserts: a check that matters raises an error that says what to do."""
    found = [f"{p.relative_to(ROOT)}:{node.lineno}" for p in _production_files()
             for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))) if isinstance(node, ast.Assert)]
    assert found == []


def test_the_project_explains_itself() -> None:
    """No file points at a design document or a folder outside the repository (docs/ has what is needed)."""
    outside = ("DESIGN" + ".md", "/work/" + "shared")
    files = [*_production_files(), *sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "docs").rglob("*.md")),
             *sorted((ROOT / "benchmarks").rglob("*.py")), ROOT / "README.md"]
    found = [f"{p.relative_to(ROOT)}: {word}" for p in files for word in outside
             if word in p.read_text(encoding="utf-8")]
    assert found == []
