"""Make `import gradio` skip the stub files gradio rewrites for its own components at every import.

gradio's ComponentMeta calls `create_or_modify_pyi` for each of its ~80 component classes when the
class is defined: it reads the class's source file, parses the whole module with `ast` and renders a
Jinja template, to keep the `.pyi` stubs beside gradio's sources in step while gradio's developers
edit it. In an installed gradio that work changes nothing, and it was ~40% of `import gradio`: 1.6 s
of CPU on the 2-core test machine (4.0-4.8 s user without it, 2.2-2.9 s with it, measured alternately),
i.e. of the app's first page. No setting turns it off, so this wraps the loading of
`gradio.component_meta` (before any component class exists) and replaces that one function with a
no-op. Import this module before gradio; if gradio renames the function, nothing is skipped and
nothing breaks.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

TARGET = "gradio.component_meta"
HOOK = "create_or_modify_pyi"


def _skip_stub_writing(*_args: object, **_kwargs: object) -> None:
    """Stands in for gradio's stub writer: the installed stubs are left as they are."""


class _StubSkipper(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name != TARGET:
            return None
        sys.meta_path.remove(self)  # once: gradio's own finder does the real work
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            if callable(getattr(module, HOOK, None)):
                setattr(module, HOOK, _skip_stub_writing)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> bool:
    """Arrange the skip; False when gradio's components are already defined (too late to matter)."""
    if TARGET in sys.modules:
        return False
    if not any(isinstance(f, _StubSkipper) for f in sys.meta_path):
        sys.meta_path.insert(0, _StubSkipper())
    return True


install()
