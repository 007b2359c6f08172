"""Small wiring helpers shared by the tabs."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any


def keyed(fn: Callable[..., Any], comps: dict[str, Any]) -> Callable[..., Any]:
    """Handlers return {name: value}; gradio wants {component: value}. Works for generators too."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args: Any) -> Iterator[dict]:
            for out in fn(*args):
                yield {comps[k]: v for k, v in out.items()}

        return gen

    @functools.wraps(fn)
    def plain(*args: Any) -> dict:
        return {comps[k]: v for k, v in fn(*args).items()}

    return plain
