"""The wiring convention: handlers take named values and return {name: value} for declared outputs."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pytest

from components.wiring import named, outputs, wire


@outputs("total_md", "note_md")
def add(a_num: float, b_num: float) -> dict[str, Any]:
    return {"total_md": f"{a_num + b_num:g}"}


@outputs("note_md")
def count_up(a_num: float):
    for i in range(int(a_num)):
        yield {"note_md": str(i)}


@outputs("total_md")
def says_nothing(a_num: float) -> dict[str, Any]:
    return {}


@outputs("total_md")
def undeclared(a_num: float) -> dict[str, Any]:
    return {"note_md": "x"}


def _comps() -> dict[str, Any]:
    with gr.Blocks():
        return {"a_num": gr.Number(), "b_num": gr.Number(), "total_md": gr.Markdown(), "note_md": gr.Markdown()}


def test_values_arrive_by_name_and_results_map_to_components():
    c = _comps()
    assert named(add, c)(2, 3) == {c["total_md"]: "5"}
    assert list(named(count_up, c)(2)) == [{c["note_md"]: "0"}, {c["note_md"]: "1"}]


def test_empty_result_skips_instead_of_sending_one_value():
    c = _comps()
    out = named(says_nothing, c)(1)
    assert list(out) == [c["total_md"]] and isinstance(out[c["total_md"]], dict)


def test_undeclared_output_is_refused():
    with pytest.raises(gr.Error):
        named(undeclared, _comps())(1)


def test_wire_declares_inputs_and_outputs_from_the_handler():
    with gr.Blocks() as demo:
        c = {"a_num": gr.Number(), "b_num": gr.Number(), "total_md": gr.Markdown(), "note_md": gr.Markdown()}
        btn = gr.Button()
        wire(btn.click, add, c)
    dep = demo.fns[max(demo.fns)]
    assert [b._id for b in dep.inputs] == [c["a_num"]._id, c["b_num"]._id]
    assert [b._id for b in dep.outputs] == [c["total_md"]._id, c["note_md"]._id]


def test_every_tab_handler_of_the_app_is_wired_by_the_convention():
    """Each event handler of the built app went through wire(); only the page-load steps of app.py
    (who the visitor is, their settings back) and gradio's own state initialisers are plain."""
    import app

    page_load = {"start_session", "restore_settings"}
    # A component whose value is a function (gr.Markdown(fn, inputs=...)) is filled on load: not a handler.
    values = {id(b.load_event_to_attach[0]) for b in app.demo.blocks.values()
              if getattr(b, "load_event_to_attach", None)}
    plain = [f"{f.fn.__module__}.{f.fn.__qualname__}" for f in app.demo.fns.values()
             if f.fn is not None and f.fn.__module__.startswith("components.") and id(f.fn) not in values
             and not getattr(f.fn, "__wired__", False) and f.fn.__qualname__ not in page_load]
    assert plain == []
