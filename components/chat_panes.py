"""Helpers for the Chat tab: one pane's components, and turning pipeline state into what they show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr

from components.wiring import outputs
from pipeline.chat import ChatSession, PaneConfig, Params, Turn, extras, metrics_line
from pipeline.chat.tools import chat_tools, check_tool_choice, pending_calls, shown
from pipeline.endpoints import LOCAL_MODEL, SessionSettings, fine_tuned_stands_in, role
from pipeline.model_lists import chat_models, check_model_use, list_models, newest_fine_tuned_model

ROLE_TITLES = {"base": "Base model", "fine_tuned": "Fine-tuned model", "teacher": "Teacher model"}
PANE_ROLES = ("base", "fine_tuned", "teacher")
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "samples"
YOUR_DATASET = "Your dataset (first examples)"


def build_pane(settings: SessionSettings, i: int) -> dict[str, gr.components.Component]:
    """Pane i's components, by their tab names (pane_names)."""
    role_name, names = PANE_ROLES[i], pane_names(i)
    choice = role(settings, role_name)
    c: dict[str, gr.components.Component] = {}
    with gr.Column(min_width=260):
        with gr.Row(equal_height=True):
            c[names["endpoint"]] = gr.Dropdown(list(settings.endpoints()), value=choice.endpoint, label="Endpoint",
                                               scale=4, min_width=100, elem_id=f"chat-endpoint-{role_name}")
            c[names["refresh"]] = gr.Button("↻ Models", scale=1, min_width=60, size="sm")
        # Its own row, the pane's full width: a fine-tuned id ("ft:gpt-4o-mini-…:org:suffix:id") was cut off.
        c[names["model"]] = gr.Dropdown([choice.model], value=choice.model, label="Model", allow_custom_value=True,
                                        info=pane_info(settings, role_name), elem_id=f"chat-model-{role_name}")
        c[names["chatbot"]] = gr.Chatbot(label=ROLE_TITLES[role_name], height=420, buttons=["copy"],
                                         feedback_options=None, group_consecutive_messages=False)
        c[names["metrics"]] = gr.Markdown("", elem_classes=["pane-metrics"])
        # Shown only while a tool call of this pane waits for its result (pane_outputs).
        c[names["tool_result"]] = gr.Textbox(label="Tool result", visible=False, lines=1, max_lines=8,
                                             submit_btn="Send result", elem_id=f"chat-tool-result-{role_name}",
                                             placeholder='What the tool returned, JSON or text, e.g. {"temp": 18}')
        with gr.Row():
            c[names["stop"]] = gr.Button("Stop", size="sm", variant="stop", interactive=False)
            c[names["regen"]] = gr.Button("Regenerate", size="sm")
    return c


def pane_pickers(settings: SessionSettings) -> dict:
    """Every pane's endpoint and model pickers (by name) from the roles in Settings; the fine-tuned pane
    gets the newest fine-tuned model (looked up once per session)."""
    values = role_pickers(settings, PANE_ROLES, look_up_newest=True, info=pane_info)
    return {pane_names(i)[part]: values[2 * i + k]
            for i in range(len(PANE_ROLES)) for k, part in enumerate(("endpoint", "model"))}


def displayed(history: list[dict]) -> list[dict]:
    """What a Chatbot shows: role and readable content only (tool calls and results in words; error
    flags and call ids stay in the session)."""
    return [shown(m) for m in history]


def model_choices(settings: SessionSettings, endpoint: str) -> list[str]:
    """Chat model ids the endpoint serves, for a picker (a typed id is accepted too)."""
    listed = list_models(settings, endpoint, refresh=True)
    if listed.error:
        gr.Warning(listed.error)
    return chat_models(listed.models)


def refresh_model_picker(settings: SessionSettings, endpoint: str, model: str) -> gr.Dropdown:
    choices = model_choices(settings, endpoint)
    if not choices:
        return gr.Dropdown(choices=[model] if model else [], value=model)
    return gr.Dropdown(choices=choices, value=model if model in choices else choices[0])


@outputs("model")
def refresh_pane_models(settings: SessionSettings, endpoint: str, model: str) -> dict:
    """One model picker refreshed from its endpoint's list. Chat's panes and Evaluate's contestants wire
    it with a view where `endpoint` and `model` name that pane's (or slot's) pickers."""
    return {"model": refresh_model_picker(settings, endpoint, model)}


def role_pickers(settings: SessionSettings, roles: tuple[str, ...], *, look_up_newest: bool,
                 info: Callable[[SessionSettings, str], str] | None = None) -> list:
    """Endpoint and model dropdown updates [ep0, m0, ep1, m1, ...] from the visitor's role choices.

    With `look_up_newest`, the fine-tuned role's default is the newest succeeded fine-tuning job
    (one network call); without, only what the session already knows. `info(settings, role)` is the
    line under each model picker (default: only the fine-tuned one's, while the base stands in).
    """
    info = info or _stand_in_note
    if look_up_newest and "fine_tuned" in roles and "fine_tuned" not in settings.roles:
        newest_fine_tuned_model(settings)
    out = []
    for r in roles:
        choice = role(settings, r)
        out += [gr.Dropdown(choices=list(settings.endpoints()), value=choice.endpoint),
                gr.Dropdown(choices=[choice.model], value=choice.model, info=info(settings, r))]
    return out


def _stand_in_note(settings: SessionSettings, role_name: str) -> str:
    """Said under the fine-tuned pane's picker while the base model plays that part (three identical
    panes with no word of why looked like a broken fine-tune)."""
    if role_name != "fine_tuned" or not fine_tuned_stands_in(settings):
        return ""
    return "None yet: the base stands in until a job succeeds."


# One short line under each Chat pane's model picker. Every pane has one, so the three chat boxes start
# at the same height (with the stand-in note alone, the middle pane sat a line or two lower).
PANE_INFO = {"base": "The student as it is, before fine-tuning.", "fine_tuned": "The student after fine-tuning.",
             "teacher": "The strong model the examples come from."}


def pane_info(settings: SessionSettings, role_name: str) -> str:
    return _stand_in_note(settings, role_name) or PANE_INFO[role_name]


def few_shot_sources() -> list[str]:
    return [YOUR_DATASET] + sorted(p.name for p in SAMPLES_DIR.glob("*.jsonl"))


def configs_from(settings: SessionSettings, visitor: str | None, picks: list[str], few_shot: bool,
                 few_shot_source: str | None) -> list[PaneConfig]:
    """Pane configs from the pickers [ep0, m0, ep1, m1, ep2, m2]; the few-shot preset goes to the base pane."""
    shots: tuple[dict, ...] = ()
    if few_shot:
        # Only the listed sample names: the value comes from the browser and must not name any other path.
        sample = SAMPLES_DIR / few_shot_source if few_shot_source in few_shot_sources()[1:] else None
        shots = extras.few_shot_messages(extras.few_shot_examples(None if sample else visitor, sample))
        if not shots:
            gr.Warning("No examples for the few-shot prompt: your dataset is empty. Pick a sample file instead.")
    configs = [PaneConfig(r, picks[2 * i] or "local", picks[2 * i + 1] or LOCAL_MODEL,
                          few_shot=shots if r == "base" else ())
               for i, r in enumerate(PANE_ROLES)]
    for config in configs:  # the picks come from the client: only models this visitor may use
        check_model_use(settings, visitor, config.endpoint, config.model)
    return configs


def params_from(system: str, temperature: float | None, max_tokens: float | None, tools: str | None = None,
                tool_choice: str | None = "auto") -> Params:
    """Request parameters from the tab's boxes; tools that are not OpenAI tools JSON stop here with
    a message saying what is wrong (nothing is sent)."""
    return Params(system=system or "", temperature=temperature, max_tokens=int(max_tokens) if max_tokens else None,
                  tools=chat_tools(tools), tool_choice=check_tool_choice(tool_choice or "auto"))


PICKERS = tuple(f"{part}_{i}" for i in range(len(PANE_ROLES)) for part in ("endpoint", "model"))


def pane_names(i: int) -> dict[str, str]:
    """The tab's component names of pane i (components/wiring.py: handlers name what they use)."""
    return {part: f"{part}_{i}" for part in ("endpoint", "model", "refresh", "chatbot", "metrics", "stop", "regen",
                                             "tool_result")}


STREAMED = tuple(pane_names(i)[part] for part in ("chatbot", "metrics", "stop", "tool_result")
                 for i in range(len(PANE_ROLES)))


def _tool_result_box(history: list[dict], live: bool, clear: bool) -> gr.Textbox:
    """Pane's tool-result box: shown while a call waits, labelled with the call it answers. Its text is
    kept while it stays shown (another pane streaming must not wipe what the visitor is typing)."""
    waiting = [] if live else pending_calls(history)
    value = {"value": ""} if clear or not waiting else {}
    if not waiting:
        return gr.Textbox(visible=False, **value)
    call = waiting[0]
    # The call id stays out of sight (it is long and says nothing); with parallel calls, which one this is.
    more = f" (call 1 of {len(waiting)} waiting)" if len(waiting) > 1 else ""
    return gr.Textbox(visible=True, label=f"Result of {call['function']['name']}{more}: type it, then Enter",
                      **value)


def pane_outputs(session: ChatSession, turn: Turn | None = None, cleared: int | None = None) -> dict:
    """Chatbot values, metric lines, Stop buttons and tool-result boxes of every pane (by name), from a
    live turn or the session; `cleared`: the pane whose tool-result box was just sent."""
    hide = session.blind_order is not None and not session.blind_revealed
    out: dict = {}
    for i in range(len(PANE_ROLES)):
        names = pane_names(i)
        history = turn.histories[i] if turn else session.histories[i]
        state = turn.states[i] if turn and turn.states and turn.states[i] is not None else session.metrics[i]
        out[names["chatbot"]] = displayed(history)
        out[names["metrics"]] = metrics_line(state, hide_cost=hide)
        # Stop is live only while this pane streams: three red buttons at rest read as "still running".
        live = turn is not None and bool(turn.states) and turn.states[i] is not None and not turn.states[i].final
        out[names["stop"]] = gr.Button(interactive=live)
        out[names["tool_result"]] = _tool_result_box(history, live, cleared == i)
    return out


def blind_labels(on: bool) -> dict:
    out: dict = {}
    for i, role_name in enumerate(PANE_ROLES):
        names = pane_names(i)
        out[names["chatbot"]] = gr.Chatbot(value=[], label=f"Model {extras.LETTERS[i]}" if on else ROLE_TITLES[role_name])
        for part in ("endpoint", "model", "refresh"):
            out[names[part]] = gr.update(visible=not on)
        out[names["metrics"]] = ""
        out[names["tool_result"]] = gr.Textbox(visible=False, value="")  # a new round: no call waits
    return out
