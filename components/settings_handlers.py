"""Settings tab handlers. Each gets the tab's components (`ui`) bound first, returns a dict keyed by
component, and never returns a key: key boxes come back empty, tables say where a key comes from.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gradio as gr

from components.errors import shown_errors
from pipeline import endpoint_edit, model_lists, settings_view
from pipeline.endpoints import (
    ROLE_LABELS,
    ROLES,
    EndpointKind,
    SessionSettings,
    key_source,
    role,
    with_role,
)
from pipeline.finetune.records import visitor_tag

Ui = dict[str, Any]
NEW = "+ New endpoint"


def _endpoint_choices(settings: SessionSettings) -> list[str]:
    return [NEW, *settings.endpoints()]


def _model_choices(settings: SessionSettings, endpoint: str, current: str | None) -> list[str]:
    cached = settings.model_cache.get(endpoint)
    models = model_lists.chat_models(cached.models) if cached else []
    return sorted({*models, *([current] if current else [])})


def _table(settings: SessionSettings) -> Any:
    return gr.update(value=settings_view.endpoint_rows(settings))


@shown_errors
def render_settings(ui: Ui, settings: SessionSettings, visitor: str | None) -> dict:
    """Everything the tab shows, from the session's settings (after a change or a page load)."""
    out = {ui["endpoints_df"]: _table(settings),
           ui["endpoint_dd"]: gr.update(choices=_endpoint_choices(settings)),
           ui["budget_num"]: settings.budget_usd, ui["confirm_num"]: settings.confirm_above_usd,
           ui["remember_chk"]: settings.remember, ui["remember_keys_chk"]: settings.remember_keys,
           ui["workspace_md"]: settings_view.workspace_summary(visitor),
           ui["hf_md"]: f"Hugging Face token: {hf_source(settings)}."}
    endpoints = list(settings.endpoints())
    for name in ROLES:
        choice = role(settings, name)
        out[ui[f"{name}_endpoint_dd"]] = gr.update(choices=endpoints, value=choice.endpoint)
        out[ui[f"{name}_model_dd"]] = gr.update(
            choices=_model_choices(settings, choice.endpoint, choice.model), value=choice.model)
    return out


def hf_source(settings: SessionSettings) -> str:
    if settings.hf_token:
        return "typed (this session)"
    return "$HF_TOKEN" if os.environ.get("HF_TOKEN") else "none (set HF_TOKEN or type one here)"


@shown_errors
def show_endpoint(ui: Ui, settings: SessionSettings, selected: str) -> dict:
    """Fill the form with an endpoint, secrets left out (the key box only says whether one is set)."""
    if selected == NEW or not selected:
        fresh = {"name_box": "", "kind_dd": "compatible", "url_box": "", "key_env_box": "", "api_version_box": "",
                 "caps_cbg": sorted(EndpointKind.registry["compatible"].default_capabilities)}
        out = {ui[k]: gr.update(value=v, interactive=True) for k, v in fresh.items()}
        out[ui["key_box"]] = gr.update(value="", placeholder="API key (kept in this session only)", interactive=True)
        out[ui["headers_box"]] = gr.update(value="", placeholder="Name: value, one a line (optional)", interactive=True)
        return out
    endpoint = settings.endpoint(selected)
    source = key_source(settings, endpoint)
    headers = ", ".join(endpoint.default_headers) or "none"
    editable = not endpoint.builtin  # a built-in's key can be typed, nothing else
    return {ui["name_box"]: gr.update(value=endpoint.name, interactive=editable),
            ui["kind_dd"]: gr.update(value=endpoint.kind, interactive=editable),
            ui["url_box"]: gr.update(value=endpoint.base_url or "", interactive=editable),
            ui["key_box"]: gr.update(value="", placeholder=f"Key: {source}. Type a new one to replace it.",
                                     interactive=endpoint.needs_key),
            ui["key_env_box"]: gr.update(value=endpoint.key_env or "", interactive=editable),
            ui["api_version_box"]: gr.update(value=endpoint.api_version or "", interactive=editable),
            ui["headers_box"]: gr.update(value="", placeholder=f"Headers set: {headers}. Empty keeps them.",
                                         interactive=editable),
            ui["caps_cbg"]: gr.update(value=sorted(endpoint.capabilities), interactive=editable)}


@shown_errors
def save_endpoint_clicked(ui: Ui, settings: SessionSettings, selected: str, name: str, kind: str,
                          url: str, key: str, key_env: str, api_version: str, headers: str,
                          caps: list[str], forget: bool) -> dict:
    """Save the form: a new or edited custom endpoint, or just the key of a built-in one."""
    current = settings.endpoints().get(selected)
    if current is not None and current.builtin:
        if not current.needs_key:
            raise gr.Error("The built-in local backend needs no key and cannot be edited.")
        if not (key or "").strip() and not forget:
            raise gr.Error(f"Type a key for '{selected}' (or tick 'Forget' to drop the typed one).")
        new = endpoint_edit.set_key(settings, selected, "" if forget else key)
        saved = selected
    else:
        new = endpoint_edit.save_endpoint(
            settings, name=name, kind=kind, base_url=url, key=key, key_env=key_env,
            api_version=api_version, headers=headers, capabilities=caps,
            original_name=None if selected in (NEW, None, "") else selected, forget_secrets=forget)
        saved = name.strip()
    source = key_source(new, new.endpoint(saved))
    return {ui["settings"]: new, ui["endpoint_dd"]: gr.update(choices=_endpoint_choices(new), value=saved),
            ui["key_box"]: gr.update(value="", placeholder=f"Key: {source}. Type a new one to replace it."),
            ui["headers_box"]: "", ui["forget_chk"]: False, ui["endpoints_df"]: _table(new),
            ui["result_md"]: f"Saved '{saved}' (key: {source}). Test it with *Test connection*."}


@shown_errors
def remove_endpoint_clicked(ui: Ui, settings: SessionSettings, selected: str) -> dict:
    if selected in (NEW, None, ""):
        raise gr.Error("Choose the endpoint to remove first.")
    new = endpoint_edit.remove_endpoint(settings, selected)
    return {ui["settings"]: new, ui["endpoint_dd"]: gr.update(choices=_endpoint_choices(new), value=NEW),
            ui["endpoints_df"]: _table(new), ui["result_md"]: f"Removed '{selected}' and its key."}


@shown_errors
def test_endpoint_clicked(ui: Ui, settings: SessionSettings, selected: str, model: str) -> dict:
    """One cheap call against the saved endpoint; the outcome in words."""
    if selected in (NEW, None, ""):
        raise gr.Error("Save the endpoint first, then test it.")
    result = model_lists.test_connection(settings, selected, model)
    mark = "✅" if result.ok else "❌"
    return {ui["result_md"]: f"{mark} **{selected}**: {result.message}", ui["endpoints_df"]: _table(settings)}


def _models_note(settings: SessionSettings, names: list[str]) -> str:
    notes = []
    for name in dict.fromkeys(names):
        listed = settings.model_cache.get(name)
        if listed is None:
            continue
        if listed.error:
            kept = f" Keeping the last list ({len(listed.models)} models)." if listed.models else ""
            notes.append(f"❌ {name}: {listed.error}{kept}")
        else:
            when = time.strftime("%H:%M:%S UTC", time.gmtime(listed.fetched_at or 0))
            notes.append(f"✅ {name}: {len(listed.models)} models (fetched {when}).")
    return "  \n".join(notes)


@shown_errors
def models_for_role(ui: Ui, role_name: str, settings: SessionSettings, endpoint: str, model: str) -> dict:
    """The model choices of a role's endpoint (fetched once per session, then cached)."""
    model_lists.list_models(settings, endpoint)
    choices = _model_choices(settings, endpoint, None)
    value = model if model in choices else (choices[0] if choices else model)
    return {ui[f"{role_name}_model_dd"]: gr.update(choices=_model_choices(settings, endpoint, value), value=value),
            ui["models_md"]: _models_note(settings, [endpoint]), ui["endpoints_df"]: _table(settings)}


@shown_errors
def refresh_models_clicked(ui: Ui, settings: SessionSettings, *pairs: str) -> dict:
    """Fetch again the model lists of the endpoints the roles use."""
    endpoints, models = list(pairs[0::2]), list(pairs[1::2])
    for name in dict.fromkeys(endpoints):
        model_lists.list_models(settings, name, refresh=True)
    out = {ui["models_md"]: _models_note(settings, endpoints), ui["endpoints_df"]: _table(settings)}
    for name, endpoint, model in zip(ROLES, endpoints, models, strict=True):
        out[ui[f"{name}_model_dd"]] = gr.update(choices=_model_choices(settings, endpoint, model), value=model)
    return out


@shown_errors
def save_roles_clicked(ui: Ui, settings: SessionSettings, *pairs: str) -> dict:
    new = settings
    for name, endpoint, model in zip(ROLES, pairs[0::2], pairs[1::2], strict=True):
        new = with_role(new, name, endpoint, model or "")
    summary = ", ".join(f"{ROLE_LABELS[r]}: {c.endpoint} · {c.model}" for r, c in new.roles.items())
    return {ui["settings"]: new, ui["roles_md"]: f"Saved roles. {summary}."}


@shown_errors
def reset_roles_clicked(ui: Ui, settings: SessionSettings) -> dict:
    """Back to the defaults; the fine-tuned role looks up the newest succeeded job again."""
    new = settings.copy()
    new.roles = {}
    tuned = model_lists.newest_fine_tuned_model(new, refresh=True)
    return {ui["settings"]: new, ui["roles_md"]: f"Roles reset to defaults (fine-tuned student: `{tuned}`)."}


@shown_errors
def save_hf_token_clicked(ui: Ui, settings: SessionSettings, token: str, forget: bool) -> dict:
    if not (token or "").strip() and not forget:
        raise gr.Error("Type a Hugging Face token first (or tick 'Forget' to drop the typed one).")
    new = endpoint_edit.set_hf_token(settings, "" if forget else token)
    return {ui["settings"]: new, ui["hf_box"]: "", ui["hf_forget_chk"]: False,
            ui["hf_md"]: f"Hugging Face token: {hf_source(new)}."}


@shown_errors
def save_budgets_clicked(ui: Ui, settings: SessionSettings, budget: float, confirm: float) -> dict:
    new = endpoint_edit.set_budgets(settings, budget, confirm)
    return {ui["settings"]: new, ui["budgets_md"]: f"Saved: generation budget ${new.budget_usd:.2f}; "
            f"fine-tunes above ${new.confirm_above_usd:.2f} ask first."}


@shown_errors
def set_remember(ui: Ui, settings: SessionSettings, remember: bool, remember_keys: bool) -> dict:
    new = settings.copy()
    new.remember, new.remember_keys = bool(remember), bool(remember and remember_keys)
    return {ui["settings"]: new, ui["remember_keys_chk"]: new.remember_keys}


def remember_in_browser(settings: SessionSettings) -> Any:
    """The visitor's browser copy (private event: not callable through the API)."""
    return settings_view.to_browser(settings)


def restore_settings(settings: SessionSettings, stored: Any, visitor: str | None = None) -> SessionSettings:
    """On page load: settings this browser remembered, if the visitor asked for that, and whose they are
    (so model pickers on a shared endpoint list only this visitor's fine-tuned models)."""
    restored = (settings_view.from_browser(settings, stored)[0] if stored else settings).copy()
    restored.owner = visitor_tag(visitor) if visitor else ""
    return restored
