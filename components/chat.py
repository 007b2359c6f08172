"""Chat tab: base, fine-tuned and teacher answer the same message side by side, streaming at once."""

from __future__ import annotations

from functools import partial

import gradio as gr

from components.chat_panes import (
    PANE_ROLES,
    Pane,
    blind_labels,
    build_pane,
    configs_from,
    few_shot_sources,
    pane_outputs,
    params_from,
    refresh_model_picker,
    role_pickers,
)
from components.context import AppContext
from components.errors import shown_errors
from pipeline.chat import ChatSession, extras
from pipeline.endpoints import SessionSettings, make_client


@shown_errors
def show_user_message(message: str, session: ChatSession, *, panes: list[Pane]) -> dict:
    """Put the message in every pane at once (no queue), before any model is called."""
    if not (message or "").strip():
        raise gr.Error("Type a message first.")
    if any(session.busy):
        raise gr.Error("A pane is still answering; wait for it or press its Stop button.")
    return {p.chatbot: [*session.histories[i], {"role": "user", "content": message}] for i, p in enumerate(panes)}


@shown_errors
def send_message(message, system, temperature, max_tokens, few_shot, few_shot_src, ep0, m0, ep1, m1, ep2, m2,
                 settings: SessionSettings, visitor: str | None, session: ChatSession, *, panes: list[Pane],
                 msg_box: gr.Textbox):
    """Stream all three answers; each pane updates as its own tokens arrive."""
    configs = configs_from(settings, visitor, [ep0, m0, ep1, m1, ep2, m2], few_shot, few_shot_src)
    turns = session.send(message or "", configs, params_from(system, temperature, max_tokens),
                         lambda ep: make_client(settings, ep))
    for turn in turns:
        yield {**pane_outputs(panes, session, turn), msg_box: ""}
    yield {**pane_outputs(panes, session), msg_box: ""}


@shown_errors
def regenerate_pane(system, temperature, max_tokens, few_shot, few_shot_src, ep0, m0, ep1, m1, ep2, m2,
                    settings: SessionSettings, visitor: str | None, session: ChatSession, *, pane: int,
                    panes: list[Pane]):
    configs = configs_from(settings, visitor, [ep0, m0, ep1, m1, ep2, m2], few_shot, few_shot_src)
    for turn in session.regenerate(pane, configs, params_from(system, temperature, max_tokens),
                                   lambda ep: make_client(settings, ep)):
        yield pane_outputs(panes, session, turn)
    yield pane_outputs(panes, session)


def stop_pane(session: ChatSession, *, pane: int) -> None:
    session.stop(pane)


@shown_errors
def clear_chat(session: ChatSession, *, panes: list[Pane], undo_btn: gr.Button) -> dict:
    session.clear()
    return {**pane_outputs(panes, session), undo_btn: gr.Button(visible=session.can_undo())}


@shown_errors
def undo_clear_chat(session: ChatSession, *, panes: list[Pane], undo_btn: gr.Button) -> dict:
    session.undo_clear()
    return {**pane_outputs(panes, session), undo_btn: gr.Button(visible=False)}


@shown_errors
def list_pane_models(settings: SessionSettings, endpoint: str, model: str) -> gr.Dropdown:
    return refresh_model_picker(settings, endpoint, model)


@shown_errors
def use_role_defaults(settings: SessionSettings) -> list:
    """Pickers back to the roles from Settings; the fine-tuned pane gets the newest fine-tuned model."""
    return role_pickers(settings, PANE_ROLES, look_up_newest=True)


@shown_errors
def follow_settings(settings: SessionSettings) -> list:
    # Looks up the newest fine-tuned model once per session (cached): at page load the fine-tuned pane
    # showed the base model even when an earlier session had fine-tuned one.
    return role_pickers(settings, PANE_ROLES, look_up_newest=True)


@shown_errors
def export_chat(system, temperature, max_tokens, few_shot, few_shot_src, ep0, m0, ep1, m1, ep2, m2,
                settings: SessionSettings, visitor: str | None, session: ChatSession) -> gr.File:
    configs = configs_from(settings, visitor, [ep0, m0, ep1, m1, ep2, m2], few_shot, few_shot_src)
    md, js = extras.write_exports(visitor or "", session, configs, params_from(system, temperature, max_tokens))
    return gr.File(value=[str(md), str(js)], visible=True)


@shown_errors
def toggle_blind(on: bool, session: ChatSession, *, panes: list[Pane], vote_row: gr.Row,
                 reveal_md: gr.Markdown) -> dict:
    if on:
        extras.start_blind(session)
    else:
        extras.stop_blind(session)
    note = "Blind round: the models are shuffled into A, B and C. Ask, then vote to reveal." if on else ""
    return {**blind_labels(panes, on), vote_row: gr.Row(visible=on), reveal_md: note}


@shown_errors
def vote_blind(choice: str, ep0, m0, ep1, m1, ep2, m2, settings: SessionSettings, visitor: str | None,
               session: ChatSession, *, panes: list[Pane], reveal_md: gr.Markdown) -> dict:
    configs = configs_from(settings, visitor, [ep0, m0, ep1, m1, ep2, m2], False, None)
    record = extras.record_vote(visitor or "", session, configs, choice)
    lines = [f"**You voted: {choice}.** " + ("" if record["winner"] is None else
             f"Winner: {record['winner']['label']} (`{record['winner']['model']}`).")]
    lines += [f"- **{k}** = {v}" for k, v in record["mapping"].items()]
    lines.append("Untick and tick *Blind mode* for a new shuffled round.")
    return {**pane_outputs(panes, session), reveal_md: "\n".join(lines)}


def build_chat_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    session_state = gr.State(ChatSession)
    with gr.Row():
        system_box = gr.Textbox(label="System prompt (all panes)", lines=2, scale=4,
                                placeholder="Optional, e.g. Reason step by step and end with 'Final answer: ...'")
        with gr.Column(scale=2, min_width=220):
            temperature_sl = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature")
            max_tokens_nb = gr.Number(value=512, minimum=1, maximum=16384, precision=0, label="Max tokens")
    with gr.Row(equal_height=True):
        few_shot_chk = gr.Checkbox(label="Few-shot prompt for the base pane (compare fine-tuning with it)")
        few_shot_dd = gr.Dropdown(few_shot_sources(), value=few_shot_sources()[0], label="Few-shot examples from")
        blind_chk = gr.Checkbox(label="Blind mode (A/B/C, names revealed after your vote)")
    with gr.Row(equal_height=False):
        panes = [build_pane(ctx.settings.value, r) for r in PANE_ROLES]
    with gr.Row(visible=False) as vote_row:
        vote_rd = gr.Radio(list(extras.VOTE_CHOICES), label="Which answer is best?", scale=3)
        vote_btn = gr.Button("Vote and reveal", scale=1)
    reveal_md = gr.Markdown("")
    with gr.Row(equal_height=True):
        msg_box = gr.Textbox(label="Message to all three panes", placeholder="Ask something…", scale=6,
                             submit_btn=False, lines=1)
        send_btn = gr.Button("Send", variant="primary", scale=1)
    with gr.Row():
        clear_btn = gr.Button("Clear", size="sm")
        undo_btn = gr.Button("Undo clear", size="sm", visible=False)
        export_btn = gr.Button("Export Markdown + JSON", size="sm")
        defaults_btn = gr.Button("Use role defaults (newest fine-tuned model)", size="sm")
    export_files = gr.File(label="Exported conversation", file_count="multiple", visible=False)

    picks = [c for p in panes for c in (p.endpoint_dd, p.model_dd)]
    state_in = [ctx.settings, ctx.visitor, session_state]
    params_in = [system_box, temperature_sl, max_tokens_nb, few_shot_chk, few_shot_dd, *picks, *state_in]
    shown = [p.chatbot for p in panes]
    streamed = shown + [p.metrics_md for p in panes] + [p.stop_btn for p in panes]
    for trigger in (msg_box.submit, send_btn.click):
        trigger(partial(show_user_message, panes=panes), [msg_box, session_state], shown, queue=False,
                api_visibility="private").success(
            partial(send_message, panes=panes, msg_box=msg_box), [msg_box, *params_in], [*streamed, msg_box],
            api_name="chat_send" if trigger == send_btn.click else False, concurrency_limit=None,
            show_progress="minimal", show_progress_on=shown)
    for i, pane in enumerate(panes):
        pane.stop_btn.click(partial(stop_pane, pane=i), [session_state], None, queue=False, api_visibility="private")
        pane.regen_btn.click(partial(regenerate_pane, pane=i, panes=panes), params_in, streamed,
                             api_name=f"chat_regenerate_{i}", concurrency_limit=None, show_progress="minimal",
                             show_progress_on=shown)
        pane.refresh_btn.click(list_pane_models, [ctx.settings, pane.endpoint_dd, pane.model_dd], pane.model_dd,
                               api_visibility="private")
        pane.endpoint_dd.input(list_pane_models, [ctx.settings, pane.endpoint_dd, pane.model_dd], pane.model_dd,
                               api_visibility="private")
    clear_btn.click(partial(clear_chat, panes=panes, undo_btn=undo_btn), [session_state], [*streamed, undo_btn],
                    queue=False, api_visibility="private")
    undo_btn.click(partial(undo_clear_chat, panes=panes, undo_btn=undo_btn), [session_state],
                   [*streamed, undo_btn], queue=False, api_visibility="private")
    defaults_btn.click(use_role_defaults, ctx.settings, picks, api_visibility="private")
    ctx.settings.change(follow_settings, ctx.settings, picks, api_visibility="private")
    export_btn.click(export_chat, params_in, export_files, api_name="chat_export")
    blind_outs = [*streamed, *[c for p in panes for c in (p.endpoint_dd, p.model_dd, p.refresh_btn)],
                  vote_row, reveal_md]
    blind_chk.change(partial(toggle_blind, panes=panes, vote_row=vote_row, reveal_md=reveal_md),
                     [blind_chk, session_state], blind_outs, api_visibility="private")
    vote_btn.click(partial(vote_blind, panes=panes, reveal_md=reveal_md), [vote_rd, *picks, *state_in], [*streamed, reveal_md],
                   api_visibility="private")
    return {"msg_box": msg_box, "send_btn": send_btn, "system_box": system_box, "blind_chk": blind_chk,
            "clear_btn": clear_btn, "export_btn": export_btn, **{f"chatbot_{i}": p.chatbot for i, p in enumerate(panes)}}
