"""Chat tab, tools: the visitor's OpenAI `tools` (a JSON box with sample tools to start from) and
`tool_choice`, sent with every pane's request; and a pane's tool result, which the visitor types when
a model calls a tool, sent back as a `tool` message so the model goes on.

Wiring convention (components/wiring.py). `send_tool_result` is wired once per pane with a view
where `pane` and `tool_result` are that pane's (like Regenerate).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from components.chat_panes import STREAMED, configs_from, pane_outputs, params_from
from components.wiring import outputs, wire
from pipeline.chat import ChatSession
from pipeline.chat.tools import TOOL_CHOICES, chat_tools, sample_tools_json, tools_summary
from pipeline.endpoints import SessionSettings, make_client
from pipeline.errors import InputError
from pipeline.generate.tasks import sample_tools

NO_SAMPLE = "(type your own)"


def build_tools_section(c: dict[str, Any]) -> None:
    with gr.Accordion("Tools (function calling): let the models call your tools", open=False):
        with gr.Row(equal_height=True):
            c["tools_sample_dd"] = gr.Dropdown([NO_SAMPLE, *sample_tools()], value=NO_SAMPLE, scale=1,
                                               label="Start from sample tools")
            c["tool_choice_rd"] = gr.Radio(list(TOOL_CHOICES), value="auto", label="Tool choice", scale=2,
                                           info="auto: the model decides · none: no calls · required: it must call")
        c["tools_box"] = gr.Code("", language="json", lines=6, max_lines=18, elem_id="chat-tools",
                                 label="Tools: OpenAI tools JSON, sent with every pane's request (empty: no tools)")
        c["tools_md"] = gr.Markdown(tools_summary(None), elem_id="chat-tools-summary")


@outputs("tools_box", "tools_md")
def pick_sample_tools(tools_sample_dd: str | None) -> dict:
    if not tools_sample_dd or tools_sample_dd == NO_SAMPLE:
        return {}
    text = sample_tools_json(tools_sample_dd)
    return {"tools_box": text, "tools_md": tools_summary(chat_tools(text))}


@outputs("tools_md")
def check_tools(tools_box: str | None) -> dict:
    """Say at once what the box holds (or what is wrong with it); a send with bad tools stops too."""
    try:
        return {"tools_md": tools_summary(chat_tools(tools_box))}
    except InputError as exc:
        return {"tools_md": f"⚠️ {exc}"}


@outputs(*STREAMED)
def send_tool_result(pane: int, tool_result: str, system_box: str, temperature_sl: float, max_tokens_nb: float,
                     few_shot_chk: bool, few_shot_dd: str, endpoint_0: str, model_0: str, endpoint_1: str,
                     model_1: str, endpoint_2: str, model_2: str, settings: SessionSettings, visitor: str | None,
                     session_state: ChatSession, tools_box: str | None = None, tool_choice_rd: str | None = "auto"):
    """The visitor's tool result for the pane's waiting call; the model continues once all have one."""
    params = params_from(system_box, temperature_sl, max_tokens_nb, tools_box, tool_choice_rd)
    configs = configs_from(settings, visitor, [endpoint_0, model_0, endpoint_1, model_1, endpoint_2, model_2],
                           few_shot_chk, few_shot_dd)
    turns = session_state.answer_call(pane, tool_result or "", configs, params, lambda ep: make_client(settings, ep))
    for turn in turns:
        yield pane_outputs(session_state, turn, cleared=pane)
    yield pane_outputs(session_state, cleared=pane)


def wire_tools(c: dict[str, Any]) -> None:
    wire(c["tools_sample_dd"].input, pick_sample_tools, c, queue=False, api_visibility="private")
    wire(c["tools_box"].change, check_tools, c, queue=False, api_visibility="private")
