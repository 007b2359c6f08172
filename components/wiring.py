"""The one way a tab wires a handler to its components (docs/ARCHITECTURE.md, "Wiring a tab").

A handler is a module-level function whose parameter names are component names of the tab's dict
(the shared per-visitor states are in that dict too: `settings`, `visitor`, ...). It returns
`{name: value}` for the outputs it changes, and declares every name it may return with
`@outputs(...)` right above it. `wire(event, fn, comps)` does the rest: it passes the components named
by the parameters as inputs, maps the returned names back to components, turns errors into
readable messages and treats an empty dict as "nothing changed". No handler depends on the position
of an argument in a long list.

    @outputs("status_md", "table_df")
    def load_sample(visitor: str, sample_dd: str) -> dict[str, Any]:
        ...
        return {"status_md": "Loaded 53 examples"}

    wire(c["load_btn"].click, load_sample, c)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import gradio as gr

from components.errors import shown_errors

F = TypeVar("F", bound=Callable[..., Any])


def outputs(*names: str) -> Callable[[F], F]:
    """Declare the component names a handler may return (every one of them, even if rarely)."""

    def mark(fn: F) -> F:
        fn.__outputs__ = tuple(names)  # type: ignore[attr-defined]
        return fn

    return mark


#: Parameters gradio fills itself from their annotation (`request: gr.Request`, `oauth_token:
#: gr.OAuthToken | None`, `profile: gr.OAuthProfile | None`); not components.
SPECIAL = ("request", "oauth_token", "profile")


def input_names(fn: Callable[..., Any]) -> list[str]:
    return [n for n in inspect.signature(fn).parameters if n not in SPECIAL]


def output_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    return getattr(fn, "__outputs__", ())


def _to_components(result: Mapping[str, Any], comps: Mapping[str, Any], fn_name: str,
                   allowed: tuple[str, ...]) -> dict[Any, Any]:
    unknown = set(result) - set(allowed)
    if unknown:
        # A programming error, caught by the tab's tests: the handler returned a name it did not declare.
        raise KeyError(f"{fn_name} returned undeclared outputs {sorted(unknown)}")
    return {comps[name]: value for name, value in result.items()}


def named(fn: Callable[..., Any], comps: Mapping[str, Any]) -> Callable[..., Any]:
    """`fn` as gradio calls it: positional values in, {component: value} out (generators too)."""
    # Gradio reads the signature through functools.wraps and inserts a `request` where it stands.
    names, outs = list(inspect.signature(fn).parameters), output_names(fn)
    # Gradio reads an empty dict as one value, not as "no updates": skip explicitly.
    skip = {comps[outs[0]]: gr.skip()} if outs else {}

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*values: Any) -> Iterator[dict[Any, Any]]:
            for result in fn(**dict(zip(names, values, strict=True))):
                yield _to_components(result, comps, fn.__name__, outs) or skip

        return _mark(shown_errors(gen))

    @functools.wraps(fn)
    def plain(*values: Any) -> dict[Any, Any]:
        result = fn(**dict(zip(names, values, strict=True)))
        return _to_components(result or {}, comps, fn.__name__, outs) or skip

    return _mark(shown_errors(plain))


def _mark(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn.__wired__ = True  # type: ignore[attr-defined]  # tests/test_wiring.py finds handlers wired otherwise
    return fn


def wire(event: Callable[..., Any], fn: Callable[..., Any], comps: Mapping[str, Any], **kwargs: Any) -> Any:
    """Attach `fn` to `event` (e.g. `c["save_btn"].click`); returns the
    dependency so `.then(...)` can chain; `event` may be `functools.partial(gr.on, None)` (page load and
    every input change). Extra keyword arguments go to gradio (`queue`, `api_name`...)."""
    return event(named(fn, comps), inputs=[comps[n] for n in input_names(fn)],
                 outputs=[comps[n] for n in output_names(fn)], **kwargs)
