"""Settings tab handlers, in the wiring convention (components/wiring.py): parameters are the tab's
component names, results `{name: value}`. None returns a key: key boxes come back empty, tables say
where a key comes from. Settings are the single source of truth: every other tab follows them.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable
from typing import Any

import gradio as gr

from components.wiring import outputs
from pipeline import endpoint_edit, model_lists, settings_view
from pipeline.endpoints import (
    ROLE_LABELS,
    ROLES,
    EndpointKind,
    RoleChoice,
    SessionSettings,
    key_source,
    role,
    with_role,
)
from pipeline.finetune.records import visitor_tag
from pipeline.session_store import SESSIONS

NEW = "+ New endpoint"
ROLE_PICKERS = tuple(f"{r}_{part}_dd" for r in ROLES for part in ("endpoint", "model"))
FORM = ("name_box", "kind_dd", "url_box", "key_env_box", "api_version_box", "headers_box", "caps_cbg", "key_box")


def _endpoint_choices(settings: SessionSettings) -> list[str]:
    return [NEW, *settings.endpoints()]


def _model_choices(settings: SessionSettings, endpoint: str, current: str | None) -> list[str]:
    cached = settings.model_cache.get(endpoint)
    models = model_lists.chat_models(cached.models) if cached else []
    return sorted({*models, *([current] if current else [])})


def _table(settings: SessionSettings) -> Any:
    return gr.update(value=settings_view.endpoint_rows(settings))


@outputs("precision_md")
def show_precision() -> dict:
    """When the Settings tab is opened: the local model's compute precision (its decision imports torch,
    so it waits for a visitor who looks, not for every page load)."""
    from pipeline.local.fastlm import int4_kernel_note
    from pipeline.local.precision import settings_line

    kernel = int4_kernel_note()
    return {"precision_md": settings_line() + (f"\n\n**Local decode kernel:** {kernel}" if kernel else "")}


@outputs("endpoints_df", "endpoint_dd", "budget_num", "confirm_num", "remember_chk", "remember_keys_chk",
         "remember_md", "workspace_md", "hf_md", *ROLE_PICKERS)
def render_settings(settings: SessionSettings, visitor: str | None) -> dict:
    """Everything the tab shows, from the session's settings (after a change or a page load)."""
    out = {"endpoints_df": _table(settings), "endpoint_dd": gr.update(choices=_endpoint_choices(settings)),
           "budget_num": settings.budget_usd, "confirm_num": settings.confirm_above_usd,
           "remember_chk": settings.remember, "remember_keys_chk": settings.remember_keys,
           "remember_md": remember_note(settings),
           "workspace_md": settings_view.workspace_summary(visitor),
           "hf_md": f"Hugging Face token: {hf_source(settings)}."}
    endpoints = list(settings.endpoints())
    for name in ROLES:
        choice = role(settings, name)
        out[f"{name}_endpoint_dd"] = gr.update(choices=endpoints, value=choice.endpoint)
        out[f"{name}_model_dd"] = gr.update(choices=_model_choices(settings, choice.endpoint, choice.model),
                                            value=choice.model)
    return out


def hf_source(settings: SessionSettings) -> str:
    if settings.hf_token:
        return "typed (this session)"
    return "$HF_TOKEN" if os.environ.get("HF_TOKEN") else "none (set HF_TOKEN or type one here)"


@outputs(*FORM, "result_md")
def show_endpoint(settings: SessionSettings, endpoint_dd: str) -> dict:
    """Fill the form with an endpoint, secrets left out (the key box only says whether one is set)."""
    if endpoint_dd == NEW or not endpoint_dd:
        fresh = {"name_box": "", "kind_dd": "compatible", "url_box": "", "key_env_box": "", "api_version_box": "",
                 "caps_cbg": sorted(EndpointKind.registry["compatible"].default_capabilities)}
        out = {k: gr.update(value=v, interactive=True) for k, v in fresh.items()}
        out["key_box"] = gr.update(value="", placeholder="API key (kept in this session only)", interactive=True)
        out["headers_box"] = gr.update(value="", placeholder="Name: value, one a line (optional)", interactive=True)
        out["result_md"] = ""
        return out
    endpoint = settings.endpoint(endpoint_dd)
    source = key_source(settings, endpoint)
    headers = ", ".join(endpoint.default_headers) or "none"
    editable = not endpoint.builtin  # a built-in's key can be typed, nothing else
    return {"name_box": gr.update(value=endpoint.name, interactive=editable),
            "kind_dd": gr.update(value=endpoint.kind, interactive=editable),
            "url_box": gr.update(value=endpoint.base_url or "", interactive=editable),
            "key_box": gr.update(value="", placeholder=f"Key: {source}. Type a new one to replace it.",
                                 interactive=endpoint.needs_key),
            "key_env_box": gr.update(value=endpoint.key_env or "", interactive=editable),
            "api_version_box": gr.update(value=endpoint.api_version or "", interactive=editable),
            "headers_box": gr.update(value="", placeholder=f"Headers set: {headers}. Empty keeps them.",
                                     interactive=editable),
            "caps_cbg": gr.update(value=sorted(endpoint.capabilities), interactive=editable),
            # A built-in's URL is the operator's (OPENAI_BASE_URL): with the server's key it must not move.
            "result_md": ("Built in: only its key can be typed here. For another base URL (your own server, a "
                          "proxy, another provider) choose **+ New endpoint**: it can fine-tune too."
                          if endpoint.builtin and endpoint.needs_key else "")}


@outputs("caps_cbg")
def kind_chosen(kind_dd: str) -> dict:
    """A new endpoint starts with what its kind supports (the visitor unticks what theirs lacks)."""
    kind = EndpointKind.registry.get(kind_dd)
    return {"caps_cbg": sorted(kind.default_capabilities)} if kind else {}


@outputs("settings", "endpoint_dd", "key_box", "headers_box", "forget_chk", "endpoints_df", "result_md")
def save_endpoint_clicked(settings: SessionSettings, endpoint_dd: str, name_box: str, kind_dd: str, url_box: str,
                          key_box: str, key_env_box: str, api_version_box: str, headers_box: str,
                          caps_cbg: list[str], forget_chk: bool) -> dict:
    """Save the form: a new or edited custom endpoint, or just the key of a built-in one."""
    current = settings.endpoints().get(endpoint_dd)
    if current is not None and current.builtin:
        if not current.needs_key:
            raise gr.Error("The built-in local backend needs no key and cannot be edited.")
        if not (key_box or "").strip() and not forget_chk:
            raise gr.Error(f"Type a key for '{endpoint_dd}' (or tick 'Forget' to drop the typed one).")
        new = endpoint_edit.set_key(settings, endpoint_dd, "" if forget_chk else key_box)
        saved = endpoint_dd
    else:
        new = endpoint_edit.save_endpoint(
            settings, name=name_box, kind=kind_dd, base_url=url_box, key=key_box, key_env=key_env_box,
            api_version=api_version_box, headers=headers_box, capabilities=caps_cbg,
            original_name=None if endpoint_dd in (NEW, None, "") else endpoint_dd, forget_secrets=forget_chk)
        saved = name_box.strip()
    source = key_source(new, new.endpoint(saved))
    return {"settings": new, "endpoint_dd": gr.update(choices=_endpoint_choices(new), value=saved),
            "key_box": gr.update(value="", placeholder=f"Key: {source}. Type a new one to replace it."),
            "headers_box": "", "forget_chk": False, "endpoints_df": _table(new),
            "result_md": f"Saved '{saved}' (key: {source}). Test it with *Test connection*."}


@outputs("settings", "endpoint_dd", "endpoints_df", "result_md")
def remove_endpoint_clicked(settings: SessionSettings, endpoint_dd: str) -> dict:
    if endpoint_dd in (NEW, None, ""):
        raise gr.Error("Choose the endpoint to remove first.")
    new = endpoint_edit.remove_endpoint(settings, endpoint_dd)
    return {"settings": new, "endpoint_dd": gr.update(choices=_endpoint_choices(new), value=NEW),
            "endpoints_df": _table(new), "result_md": f"Removed '{endpoint_dd}' and its key."}


@outputs("result_md", "endpoints_df")
def test_endpoint_clicked(settings: SessionSettings, endpoint_dd: str, test_model_box: str) -> dict:
    """One cheap call against the saved endpoint; the outcome in words."""
    if endpoint_dd in (NEW, None, ""):
        raise gr.Error("Save the endpoint first, then test it.")
    result = model_lists.test_connection(settings, endpoint_dd, test_model_box)
    mark = "✅" if result.ok else "❌"
    return {"result_md": f"{mark} **{endpoint_dd}**: {result.message}", "endpoints_df": _table(settings)}


test_endpoint_clicked.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


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


def _role_models(settings: SessionSettings, role_name: str, endpoint: str, model: str) -> dict:
    """The model choices of a role's endpoint (fetched once per session, then cached)."""
    model_lists.list_models(settings, endpoint)
    choices = _model_choices(settings, endpoint, None)
    value = model if model in choices else (choices[0] if choices else model)
    return {f"{role_name}_model_dd": gr.update(choices=_model_choices(settings, endpoint, value), value=value),
            "models_md": _models_note(settings, [endpoint]), "endpoints_df": _table(settings)}


def models_for_role(role_name: str) -> Callable[..., dict]:
    """The handler of one role's endpoint picker; its inputs are named after that role's pickers."""
    endpoint_name, model_name = f"{role_name}_endpoint_dd", f"{role_name}_model_dd"

    @outputs(model_name, "models_md", "endpoints_df")
    def handler(**values: Any) -> dict:
        return _role_models(values["settings"], role_name, values[endpoint_name], values[model_name])

    handler.__name__ = f"models_for_{role_name}"
    handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("settings", endpoint_name, model_name)])
    return handler


@outputs("models_md", "endpoints_df", *ROLE_PICKERS[1::2])
def refresh_models_clicked(settings: SessionSettings, teacher_endpoint_dd: str, teacher_model_dd: str,
                           base_endpoint_dd: str, base_model_dd: str, fine_tuned_endpoint_dd: str,
                           fine_tuned_model_dd: str, judge_endpoint_dd: str, judge_model_dd: str) -> dict:
    """Fetch again the model lists of the endpoints the roles use."""
    picked = dict(zip(ROLE_PICKERS, (teacher_endpoint_dd, teacher_model_dd, base_endpoint_dd, base_model_dd,
                                     fine_tuned_endpoint_dd, fine_tuned_model_dd, judge_endpoint_dd,
                                     judge_model_dd), strict=True))
    endpoints = [picked[f"{r}_endpoint_dd"] for r in ROLES]
    for name in dict.fromkeys(endpoints):
        model_lists.list_models(settings, name, refresh=True)
    out = {"models_md": _models_note(settings, endpoints), "endpoints_df": _table(settings)}
    for r in ROLES:
        endpoint, model = picked[f"{r}_endpoint_dd"], picked[f"{r}_model_dd"]
        out[f"{r}_model_dd"] = gr.update(choices=_model_choices(settings, endpoint, model), value=model)
    return out


@outputs("settings", "roles_md")
def save_roles_clicked(settings: SessionSettings, teacher_endpoint_dd: str, teacher_model_dd: str,
                       base_endpoint_dd: str, base_model_dd: str, fine_tuned_endpoint_dd: str,
                       fine_tuned_model_dd: str, judge_endpoint_dd: str, judge_model_dd: str) -> dict:
    picked = {"teacher": (teacher_endpoint_dd, teacher_model_dd), "base": (base_endpoint_dd, base_model_dd),
              "fine_tuned": (fine_tuned_endpoint_dd, fine_tuned_model_dd),
              "judge": (judge_endpoint_dd, judge_model_dd)}
    new = settings
    for name, (endpoint, model) in picked.items():
        if name not in settings.roles and RoleChoice(endpoint, (model or "").strip()) == role(settings, name):
            continue  # left as shown: it keeps following its default (the fine-tuned one, the base role's)
        new = with_role(new, name, endpoint, model or "")
    summary = ", ".join(f"{ROLE_LABELS[r]}: {c.endpoint} · {c.model}" for r, c in new.roles.items())
    return {"settings": new, "roles_md": f"Saved roles. {summary or 'All follow their defaults'}."}


@outputs("settings", "roles_md")
def reset_roles_clicked(settings: SessionSettings) -> dict:
    """Back to the defaults; the fine-tuned role looks up the newest succeeded job again."""
    new = settings.copy()
    new.roles = {}
    tuned = model_lists.newest_fine_tuned_model(new, refresh=True)
    return {"settings": new, "roles_md": f"Roles reset to defaults (fine-tuned student: `{tuned}`)."}


@outputs("settings", "hf_box", "hf_forget_chk", "hf_md")
def save_hf_token_clicked(settings: SessionSettings, hf_box: str, hf_forget_chk: bool) -> dict:
    if not (hf_box or "").strip() and not hf_forget_chk:
        raise gr.Error("Type a Hugging Face token first (or tick 'Forget' to drop the typed one).")
    new = endpoint_edit.set_hf_token(settings, "" if hf_forget_chk else hf_box)
    return {"settings": new, "hf_box": "", "hf_forget_chk": False, "hf_md": f"Hugging Face token: {hf_source(new)}."}


@outputs("settings", "budgets_md")
def save_budgets_clicked(settings: SessionSettings, budget_num: float, confirm_num: float) -> dict:
    new = endpoint_edit.set_budgets(settings, budget_num, confirm_num)
    return {"settings": new, "budgets_md": f"Saved: generation budget ${new.budget_usd:.2f}; "
            f"fine-tunes and batches above ${new.confirm_above_usd:.2f} ask first."}


def remember_note(settings: SessionSettings) -> str:
    if not settings.remember:
        return "This browser keeps nothing: a refresh keeps your settings for this session only."
    keys = "with their keys" if settings.remember_keys else "without keys"
    return f"This browser keeps your endpoints, roles and budgets, {keys}, for your next visits."


@outputs("settings", "remember_keys_chk", "remember_md")
def set_remember(settings: SessionSettings, remember_chk: bool, remember_keys_chk: bool) -> dict:
    """Both boxes as the page shows them now. A box is written back only when it must change (keys
    without endpoints): the reply to a first click must not undo a second click made meanwhile."""
    new = settings.copy()
    new.remember, new.remember_keys = bool(remember_chk), bool(remember_chk and remember_keys_chk)
    out: dict[str, Any] = {"settings": new, "remember_md": remember_note(new)}
    if remember_keys_chk and not new.remember_keys:
        out["remember_keys_chk"] = False
    return out


@outputs("remembered")
def keep_settings(settings: SessionSettings, visitor: str | None) -> dict:
    """After every change: the session's copy in server memory (a refresh finds it) and, if the visitor
    asked, the browser's copy (private event: not callable through the API)."""
    SESSIONS.put(visitor, settings)
    return {"remembered": settings_view.to_browser(settings)}


def restore_settings(settings: SessionSettings, stored: Any, visitor: str | None = None) -> SessionSettings:
    """On page load: this session's settings if the visitor had some (a refresh), else what this browser
    remembered if they asked for that; and whose they are (so model pickers on a shared endpoint list
    only this visitor's fine-tuned models)."""
    live = SESSIONS.get(visitor)
    if isinstance(live, SessionSettings):
        restored = live.copy()
    else:
        restored = (settings_view.from_browser(settings, stored)[0] if stored else settings).copy()
    restored.owner = visitor_tag(visitor) if visitor else ""
    return restored
