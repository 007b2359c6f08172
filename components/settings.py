"""Settings tab: endpoints and keys, role assignments, Hugging Face token, budgets, workspace.

Wiring only (components/wiring.py: handlers name their inputs); handlers are in
components/settings_handlers.py, logic in pipeline/. Keys typed here
live in the visitor's gr.State; their boxes are emptied after saving and nothing sends them back.
"""

from __future__ import annotations

import functools

import gradio as gr

from components import settings_handlers as h
from components.context import AppContext
from components.wiring import wire
from pipeline.endpoints import CAPABILITIES, ROLE_LABELS, ROLES, EndpointKind, SessionSettings
from pipeline.settings_view import ENDPOINT_COLUMNS, endpoint_rows

KINDS = [(k.label, name) for name, k in EndpointKind.registry.items() if k.user_addable]


def _build_endpoints(ui: dict) -> None:
    gr.Markdown("### Endpoints\nThe built-in local model needs no key. OpenAI uses a key typed here or "
                "`OPENAI_API_KEY` (`OPENAI_BASE_URL` moves it). Add any OpenAI-compatible server "
                "(vLLM, Ollama, llama.cpp, LM Studio) or Azure OpenAI.")
    ui["endpoints_df"] = gr.Dataframe(value=endpoint_rows(SessionSettings()), headers=ENDPOINT_COLUMNS,
                                      interactive=False, wrap=True, elem_id="endpoints-table",
                                      column_widths=["15%", "12%", "22%", "17%", "24%", "10%"])
    with gr.Row():
        ui["endpoint_dd"] = gr.Dropdown([h.NEW, "local", "openai"], value=h.NEW, label="Endpoint to edit",
                                        allow_custom_value=True)
        ui["name_box"] = gr.Textbox(label="Name", placeholder="my-vllm")
        ui["kind_dd"] = gr.Dropdown(KINDS, value="compatible", label="Kind")
    with gr.Row():
        ui["url_box"] = gr.Textbox(label="Base URL", placeholder="http://127.0.0.1:8000/v1", scale=2)
        ui["key_box"] = gr.Textbox(label="API key", type="password",
                                   placeholder="API key (kept in this session only)")
        ui["key_env_box"] = gr.Textbox(label="…or environment variable", placeholder="MY_SERVER_KEY")
    with gr.Row():
        ui["api_version_box"] = gr.Textbox(label="Azure API version", placeholder="2024-10-21")
        ui["headers_box"] = gr.Textbox(label="Extra headers", lines=2,
                                       placeholder="Name: value, one a line (optional)")
        ui["caps_cbg"] = gr.CheckboxGroup(list(CAPABILITIES), label="Capabilities",
                                          value=sorted(EndpointKind.registry["compatible"].default_capabilities))
    with gr.Row():
        ui["forget_chk"] = gr.Checkbox(label="Forget its typed key and headers", value=False)
        ui["save_btn"] = gr.Button("Save endpoint", variant="primary")
        ui["remove_btn"] = gr.Button("Remove", variant="stop")
        ui["test_model_box"] = gr.Textbox(label="Model to test (optional)", placeholder="gpt-4.1-mini")
        ui["test_btn"] = gr.Button("Test connection")
    ui["result_md"] = gr.Markdown()


def _build_roles(ui: dict) -> None:
    gr.Markdown("### Roles\nWhich endpoint and model plays each part. Without an OpenAI key all use the "
                "local model; the fine-tuned student defaults to your newest finished fine-tune.")
    for name in ROLES:
        with gr.Row():
            ui[f"{name}_endpoint_dd"] = gr.Dropdown(["local", "openai"], label=f"{ROLE_LABELS[name]}: endpoint",
                                                    allow_custom_value=True)
            ui[f"{name}_model_dd"] = gr.Dropdown([], label=f"{ROLE_LABELS[name]}: model",
                                                 allow_custom_value=True, scale=2)
    with gr.Row():
        ui["refresh_models_btn"] = gr.Button("Refresh model lists")
        ui["reset_roles_btn"] = gr.Button("Reset to defaults")
        ui["save_roles_btn"] = gr.Button("Save roles", variant="primary")
    ui["models_md"] = gr.Markdown()
    ui["roles_md"] = gr.Markdown()


def _build_rest(ui: dict) -> None:
    gr.Markdown("### Hugging Face\nFor pushing datasets to the Hub. Typed here, or `HF_TOKEN`.")
    with gr.Row():
        ui["hf_box"] = gr.Textbox(label="Hugging Face token", type="password", placeholder="hf_…")
        ui["hf_forget_chk"] = gr.Checkbox(label="Forget the typed token", value=False)
        ui["hf_save_btn"] = gr.Button("Save token")
    ui["hf_md"] = gr.Markdown()
    gr.Markdown("### Budgets")
    with gr.Row():
        ui["budget_num"] = gr.Number(label="Generation budget (USD per run)", minimum=0)
        ui["confirm_num"] = gr.Number(label="Ask before fine-tunes and batches costing more than (USD)", minimum=0)
        ui["budgets_save_btn"] = gr.Button("Save budgets")
    ui["budgets_md"] = gr.Markdown()
    gr.Markdown("### Remember in this browser\nA refresh keeps your settings for this session (in the "
                "server's memory, never on disk). To find them on a later visit, tick the first box: endpoints, "
                "roles and budgets are kept in this browser's storage; keys only if you tick the second box.")
    with gr.Row():
        ui["remember_chk"] = gr.Checkbox(label="Remember my endpoints in this browser", value=False)
        ui["remember_keys_chk"] = gr.Checkbox(label="…and their keys (only on a computer you trust)",
                                              value=False)
    ui["remember_md"] = gr.Markdown(elem_id="remember-note")
    gr.Markdown("### Workspace")
    with gr.Row():
        ui["workspace_md"] = gr.Markdown()
        ui["workspace_btn"] = gr.Button("Refresh", size="sm", scale=0)
    # Read-only, decided once per process (pipeline/local/precision.py). Filled when the tab is opened:
    # deciding imports torch (~2 s of CPU). Built with the app it delayed the first page; filled at page
    # load it took a worker thread and the import lock from the model's warm-up and delayed the first chat.
    ui["precision_md"] = gr.Markdown(elem_id="precision-line")


def build_settings_tab(ctx: AppContext, tab: gr.Tab | None = None) -> dict[str, gr.components.Component]:
    """`tab`: the Settings tab itself; opening it fills the compute-precision line."""
    ui: dict = {"settings": ctx.settings, "visitor": ctx.visitor, "remembered": ctx.remembered}
    _build_endpoints(ui)
    _build_roles(ui)
    _build_rest(ui)
    # No triggers: on page load and whenever the settings or the visitor id change (any tab's doing).
    wire(functools.partial(gr.on, None), h.render_settings, ui, api_name="show_settings")
    wire(ui["workspace_btn"].click, h.render_settings, ui, api_visibility="private")
    wire(ctx.settings.change, h.keep_settings, ui, api_visibility="private")
    if tab is not None:
        wire(tab.select, h.show_precision, ui, api_visibility="private")
    wire(ui["endpoint_dd"].input, h.show_endpoint, ui, api_name="show_endpoint")
    wire(ui["kind_dd"].input, h.kind_chosen, ui, api_visibility="private")
    wire(ui["save_btn"].click, h.save_endpoint_clicked, ui, api_name="save_endpoint")
    wire(ui["remove_btn"].click, h.remove_endpoint_clicked, ui, api_name="remove_endpoint")
    wire(ui["test_btn"].click, h.test_endpoint_clicked, ui, api_name="test_connection")
    for r in ROLES:
        wire(ui[f"{r}_endpoint_dd"].input, h.models_for_role(r), ui, api_name=f"models_for_{r}")
    wire(ui["refresh_models_btn"].click, h.refresh_models_clicked, ui, api_name="refresh_models")
    wire(ui["save_roles_btn"].click, h.save_roles_clicked, ui, api_name="save_roles")
    wire(ui["reset_roles_btn"].click, h.reset_roles_clicked, ui, api_name="reset_roles")
    wire(ui["hf_save_btn"].click, h.save_hf_token_clicked, ui, api_name="save_hf_token")
    wire(ui["budgets_save_btn"].click, h.save_budgets_clicked, ui, api_name="save_budgets")
    wire(functools.partial(gr.on, [ui["remember_chk"].input, ui["remember_keys_chk"].input]), h.set_remember, ui,
         api_name="set_remember")
    return ui
