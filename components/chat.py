"""Chat tab: base, fine-tuned and teacher answer the same message side by side, streaming at once.

Wiring convention (components/wiring.py): handlers take component names and return `{name: value}`.
Pane i's components are `endpoint_i`, `model_i`, `chatbot_i`, ... (chat_panes.pane_names); a handler
of one pane is wired with a view of the tab's names where `endpoint`, `model`, `pane`... mean that
pane's, so one handler serves all three.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from components.chat_panes import (
    PANE_ROLES,
    PICKERS,
    STREAMED,
    blind_labels,
    build_pane,
    configs_from,
    displayed,
    few_shot_sources,
    pane_names,
    pane_outputs,
    pane_pickers,
    params_from,
    refresh_pane_models,
)
from components.chat_tools import build_tools_section, send_tool_result, wire_tools
from components.context import AppContext
from components.status import redraw_status_after
from components.wiring import outputs, wire
from pipeline.chat import ChatSession, extras
from pipeline.endpoints import SessionSettings, make_client

CHATBOTS = tuple(f"chatbot_{i}" for i in range(len(PANE_ROLES)))


@outputs(*CHATBOTS)
def show_user_message(msg_box: str, session_state: ChatSession, tools_box: str | None = None,
                      tool_choice_rd: str | None = "auto") -> dict:
    """Put the message in every pane at once (no queue), before any model is called; tools that are not
    OpenAI tools JSON stop it here (shown, the message would sit in the panes though nothing was sent)."""
    if not (msg_box or "").strip():
        raise gr.Error("Type a message first.")
    if any(session_state.busy):
        raise gr.Error("A pane is still answering; wait for it or press its Stop button.")
    params_from("", None, None, tools_box, tool_choice_rd)
    return {name: [*displayed(session_state.histories[i]), {"role": "user", "content": msg_box}]
            for i, name in enumerate(CHATBOTS)}


@outputs(*STREAMED, "msg_box")
def send_message(msg_box: str, system_box: str, temperature_sl: float, max_tokens_nb: float, few_shot_chk: bool,
                 few_shot_dd: str, endpoint_0: str, model_0: str, endpoint_1: str, model_1: str, endpoint_2: str,
                 model_2: str, settings: SessionSettings, visitor: str | None, session_state: ChatSession,
                 tools_box: str | None = None, tool_choice_rd: str | None = "auto"):
    """Stream all three answers; each pane updates as its own tokens arrive."""
    params = params_from(system_box, temperature_sl, max_tokens_nb, tools_box, tool_choice_rd)  # bad tools: stop here
    configs = configs_from(settings, visitor, [endpoint_0, model_0, endpoint_1, model_1, endpoint_2, model_2],
                           few_shot_chk, few_shot_dd)
    turns = session_state.send(msg_box or "", configs, params, lambda ep: make_client(settings, ep))
    for turn in turns:
        yield {**pane_outputs(session_state, turn), "msg_box": ""}
    yield {**pane_outputs(session_state), "msg_box": ""}


@outputs(*STREAMED)
def regenerate_pane(pane: int, system_box: str, temperature_sl: float, max_tokens_nb: float, few_shot_chk: bool,
                    few_shot_dd: str, endpoint_0: str, model_0: str, endpoint_1: str, model_1: str,
                    endpoint_2: str, model_2: str, settings: SessionSettings, visitor: str | None,
                    session_state: ChatSession, tools_box: str | None = None, tool_choice_rd: str | None = "auto"):
    params = params_from(system_box, temperature_sl, max_tokens_nb, tools_box, tool_choice_rd)
    configs = configs_from(settings, visitor, [endpoint_0, model_0, endpoint_1, model_1, endpoint_2, model_2],
                           few_shot_chk, few_shot_dd)
    for turn in session_state.regenerate(pane, configs, params, lambda ep: make_client(settings, ep)):
        yield pane_outputs(session_state, turn)
    yield pane_outputs(session_state)


@outputs()
def stop_pane(pane: int, session_state: ChatSession) -> dict:
    session_state.stop(pane)
    return {}


@outputs(*STREAMED, "undo_btn")
def clear_chat(session_state: ChatSession) -> dict:
    session_state.clear()
    return {**pane_outputs(session_state), "undo_btn": gr.Button(visible=session_state.can_undo())}


@outputs(*STREAMED, "undo_btn")
def undo_clear_chat(session_state: ChatSession) -> dict:
    session_state.undo_clear()
    return {**pane_outputs(session_state), "undo_btn": gr.Button(visible=False)}


@outputs(*PICKERS)
def use_role_defaults(settings: SessionSettings) -> dict:
    """Pickers back to the roles from Settings, on a click and whenever Settings change; the fine-tuned
    pane gets the newest fine-tuned model (looked up once per session: at page load the pane showed the
    base model even when an earlier session had fine-tuned one)."""
    return pane_pickers(settings)


@outputs("export_files")
def export_chat(system_box: str, temperature_sl: float, max_tokens_nb: float, few_shot_chk: bool, few_shot_dd: str,
                endpoint_0: str, model_0: str, endpoint_1: str, model_1: str, endpoint_2: str, model_2: str,
                settings: SessionSettings, visitor: str | None, session_state: ChatSession,
                tools_box: str | None = None, tool_choice_rd: str | None = "auto") -> dict:
    configs = configs_from(settings, visitor, [endpoint_0, model_0, endpoint_1, model_1, endpoint_2, model_2],
                           few_shot_chk, few_shot_dd)
    md, js = extras.write_exports(visitor or "", session_state, configs,
                                  params_from(system_box, temperature_sl, max_tokens_nb, tools_box, tool_choice_rd))
    return {"export_files": gr.File(value=[str(md), str(js)], visible=True)}


@outputs(*STREAMED, *(pane_names(i)[p] for i in range(len(PANE_ROLES)) for p in ("endpoint", "model", "refresh")),
         "vote_row", "reveal_md")
def toggle_blind(blind_chk: bool, session_state: ChatSession) -> dict:
    if blind_chk:
        extras.start_blind(session_state)
    else:
        extras.stop_blind(session_state)
    note = "Blind round: the models are shuffled into A, B and C. Ask, then vote to reveal." if blind_chk else ""
    return {**blind_labels(blind_chk), "vote_row": gr.Row(visible=blind_chk), "reveal_md": note}


@outputs(*STREAMED, "reveal_md")
def vote_blind(vote_rd: str, endpoint_0: str, model_0: str, endpoint_1: str, model_1: str, endpoint_2: str,
               model_2: str, settings: SessionSettings, visitor: str | None, session_state: ChatSession) -> dict:
    configs = configs_from(settings, visitor, [endpoint_0, model_0, endpoint_1, model_1, endpoint_2, model_2],
                           False, None)
    record = extras.record_vote(visitor or "", session_state, configs, vote_rd)
    lines = [f"**You voted: {vote_rd}.** " + ("" if record["winner"] is None else
             f"Winner: {record['winner']['label']} (`{record['winner']['model']}`).")]
    lines += [f"- **{k}** = {v}" for k, v in record["mapping"].items()]
    lines.append("Untick and tick *Blind mode* for a new shuffled round.")
    return {**pane_outputs(session_state), "reveal_md": "\n".join(lines)}


def build_chat_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    c: dict[str, Any] = {"settings": ctx.settings, "visitor": ctx.visitor, "session_state": gr.State(ChatSession)}
    with gr.Row():
        c["system_box"] = gr.Textbox(label="System prompt (all panes)", lines=2, scale=4,
                                     placeholder="Optional, e.g. Reason step by step and end with 'Final answer: ...'")
        with gr.Column(scale=2, min_width=220):
            c["temperature_sl"] = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature")
            c["max_tokens_nb"] = gr.Number(value=512, minimum=1, maximum=16384, precision=0, label="Max tokens")
    with gr.Row(equal_height=True):
        c["few_shot_chk"] = gr.Checkbox(label="Few-shot prompt for the base pane (compare fine-tuning with it)")
        c["few_shot_dd"] = gr.Dropdown(few_shot_sources(), value=few_shot_sources()[0], label="Few-shot examples from")
        c["blind_chk"] = gr.Checkbox(label="Blind mode (A/B/C, names revealed after your vote)")
    build_tools_section(c)
    with gr.Row(equal_height=False):
        for i in range(len(PANE_ROLES)):
            c |= build_pane(ctx.settings.value, i)
            c[f"pane_{i}"] = gr.State(i)
    with gr.Row(visible=False) as c["vote_row"]:
        c["vote_rd"] = gr.Radio(list(extras.VOTE_CHOICES), label="Which answer is best?", scale=3)
        c["vote_btn"] = gr.Button("Vote and reveal", scale=1)
    c["reveal_md"] = gr.Markdown("")
    with gr.Row(equal_height=True):
        c["msg_box"] = gr.Textbox(label="Message to all three panes", placeholder="Ask something…", scale=6,
                                  submit_btn=False, lines=1)
        c["send_btn"] = gr.Button("Send", variant="primary", scale=1)
    with gr.Row():
        c["clear_btn"] = gr.Button("Clear", size="sm")
        c["undo_btn"] = gr.Button("Undo clear", size="sm", visible=False)
        c["export_btn"] = gr.Button("Export Markdown + JSON", size="sm")
        c["defaults_btn"] = gr.Button("Use role defaults (newest fine-tuned model)", size="sm")
    c["export_files"] = gr.File(label="Exported conversation", file_count="multiple", visible=False)
    _wire(ctx, c)
    return {k: v for k, v in c.items() if k not in ("settings", "visitor")}


def _wire(ctx: AppContext, c: dict[str, Any]) -> None:
    shown = [c[n] for n in CHATBOTS]
    stream = {"concurrency_limit": None, "show_progress": "minimal", "show_progress_on": shown}
    for trigger in (c["msg_box"].submit, c["send_btn"].click):
        shown_first = wire(trigger, show_user_message, c, queue=False, api_visibility="private")
        wire(shown_first.success, send_message, c,
             api_name="chat_send" if trigger == c["send_btn"].click else False, **stream)
    for i in range(len(PANE_ROLES)):
        # This pane's components under the generic names its handlers use.
        view = {**c, "pane": c[f"pane_{i}"], **{part: c[name] for part, name in pane_names(i).items()}}
        wire(c[f"stop_{i}"].click, stop_pane, view, queue=False, api_visibility="private")
        wire(c[f"regen_{i}"].click, regenerate_pane, view, api_name=f"chat_regenerate_{i}", **stream)
        wire(c[f"tool_result_{i}"].submit, send_tool_result, view, api_name=f"chat_tool_result_{i}", **stream)
        for event in (c[f"refresh_{i}"].click, c[f"endpoint_{i}"].input):
            wire(event, refresh_pane_models, view, api_visibility="private")
    wire(c["clear_btn"].click, clear_chat, c, queue=False, api_visibility="private")
    wire(c["undo_btn"].click, undo_clear_chat, c, queue=False, api_visibility="private")
    for event in (c["defaults_btn"].click, ctx.settings.change):  # Settings are the source of truth
        # The look-up can learn that there is no fine-tuned model yet, which the status line says too; it
        # drew itself on the same settings change, before the answer (the page said "local" there and
        # "none yet" under the pane).
        redraw_status_after(wire(event, use_role_defaults, c, api_visibility="private"), ctx)
    wire(c["export_btn"].click, export_chat, c, api_name="chat_export")
    wire(c["blind_chk"].change, toggle_blind, c, api_visibility="private")
    wire(c["vote_btn"].click, vote_blind, c, api_visibility="private")
    wire_tools(c)

