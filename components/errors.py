"""The one place where errors become what a person sees: gr.Error / gr.Warning, never a traceback."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gradio as gr

from pipeline.errors import DistillError, explain

log = logging.getLogger("distill.ui")
F = TypeVar("F", bound=Callable[..., Any])


def shown_errors(fn: F) -> F:
    """Wrap a handler (plain or generator) so any error reaches the user as a readable gr.Error."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            with _as_gr_error(fn.__name__):
                yield from fn(*args, **kwargs)

        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _as_gr_error(fn.__name__):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _as_gr_error(name: str) -> Iterator[None]:
    """The one rule for logs: an expected user error (a DistillError, or a gr.Error a handler raised
    with a message for the user: no key, a choice to make...) is one line, no traceback; anything
    else is a real failure and keeps its traceback (gradio prints it)."""
    try:
        yield
    except gr.Error as exc:
        log.info("handler %s: told the user: %s", name, exc.message)
        exc.print_exception = False
        raise
    except DistillError as exc:
        log.info("handler %s: told the user: %s", name, exc)
        raise gr.Error(str(exc), print_exception=False) from exc
    except Exception as exc:
        # The type only here: messages from providers may carry request details.
        log.error("handler %s failed with %s", name, type(exc).__name__)
        raise gr.Error(explain(exc)) from exc


def warn(exc: BaseException) -> None:
    """Show a non-fatal problem as a toast and go on."""
    gr.Warning(explain(exc))
