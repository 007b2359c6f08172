"""Hub tab: push the visitor's draft to a Hub dataset repo with a card, or load a Hub dataset into it.

Whose token: on a Space, the visitor's own (Sign in with Hugging Face, or one they type); the
Space owner's HF_TOKEN is never used for them (pipeline.hub.auth). Off Spaces, a typed token or
HF_TOKEN. A typed token lives only in the request that carries it: never stored, logged or shown.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from components.context import AppContext
from components.wiring import outputs, wire
from pipeline import drafts
from pipeline.endpoints import SessionSettings
from pipeline.errors import InputError
from pipeline.hub import auth
from pipeline.hub.card import LICENSES
from pipeline.hub.provenance import add_to_draft, card_info_for
from pipeline.hub.pull import load_from_hub
from pipeline.hub.push import card_text, push_dataset
from pipeline.hub.stats import split_for_push

MODES = {"Replace the draft": "replace", "Add to the draft": "append"}


def _visitor_token(typed: str | None, settings: SessionSettings | None, oauth_token: gr.OAuthToken | None
                   ) -> str | None:
    """The visitor's own token: sign-in, then typed here, then typed in Settings (None: resolve_token
    decides, which off Spaces means HF_TOKEN and on a Space means none)."""
    if oauth_token is not None and oauth_token.token:
        return oauth_token.token
    return (typed or "").strip() or (getattr(settings, "hf_token", None) or "").strip() or None


def _splits(visitor: str, val_fraction: float) -> dict[str, list[dict]]:
    return split_for_push(drafts.load_draft(visitor), float(val_fraction or 0))


@outputs("card_code")
def preview_card(visitor: str, repo_box: str, license_dd: str, val_sld: float) -> dict[str, Any]:
    """The README.md a push would upload (no network: a bare NAME is shown under 'your-name/')."""
    name = auth.check_repo_id(repo_box or "my-distilled-dataset")
    shown = name if "/" in name else f"your-name/{name}"
    splits = _splits(visitor, val_sld)
    return {"card_code": card_text(shown, splits, card_info_for(visitor, splits, license_dd))}


@outputs("push_md")
def push_draft(visitor: str, settings: SessionSettings | None, repo_box: str, private_chk: bool, message_box: str,
               license_dd: str, val_sld: float, token_box: str, oauth_token: gr.OAuthToken | None) -> dict[str, Any]:
    token = auth.resolve_token(_visitor_token(token_box, settings, oauth_token), required=True)
    splits = _splits(visitor, val_sld)
    result = push_dataset(splits, repo_box, token=str(token), private=bool(private_chk), commit_message=message_box,
                          card_info=card_info_for(visitor, splits, license_dd))
    counts = ", ".join(f"{n} {s}" for s, n in result.splits.items())
    visibility = "private" if result.private else "public"
    action = "Created" if result.created else "Updated"
    kept = " (an existing repo keeps its visibility)" if not result.created else ""
    return {"push_md": f"{action} [{result.repo_id}]({result.url}) ({visibility}{kept}): {counts}. "
                       f"[Commit]({result.commit_url})"}


@outputs("load_md", "dataset_rev")
def load_dataset_into_draft(visitor: str, settings: SessionSettings | None, dataset_rev: int, load_repo_box: str,
                            config_box: str, split_box: str, user_box: str, assistant_box: str, system_box: str,
                            mode_radio: str | None, token_box: str, oauth_token: gr.OAuthToken | None
                            ) -> dict[str, Any]:
    if mode_radio not in MODES:
        raise InputError("Choose whether the loaded examples replace your draft or are added to it.")
    mapping = {k: (v or "").strip() for k, v in
               {"user": user_box, "assistant": assistant_box, "system": system_box}.items() if (v or "").strip()}
    if mapping and not {"user", "assistant"} <= set(mapping):
        raise InputError("Name both the user column and the assistant column, or leave all three empty.")
    token = auth.resolve_token(_visitor_token(token_box, settings, oauth_token), required=False)
    result = load_from_hub(load_repo_box, config=(config_box or "").strip() or None,
                           split=(split_box or "train").strip(), mapping=mapping or None, token=token)
    if not result.examples:
        raise InputError(f"No chat examples in {result.repo_id} ({result.split}): {result.skipped} rows had no "
                         f"user or assistant turn. Columns: {', '.join(result.columns)}.")
    source = {"hub": result.repo_id, "config": result.config, "split": result.split}
    total = add_to_draft(visitor, result.examples, MODES[mode_radio], source)
    used = ", ".join(f"{role} <- {col}" for role, col in result.mapping.items())
    notes = [f"{result.skipped} rows skipped (no user or assistant turn)" if result.skipped else "",
             "stopped at the row limit (DISTILL_MAX_PULL_ROWS)" if result.truncated else ""]
    extra = "; ".join(n for n in notes if n)
    undo = " **Undo last bulk change** in the Dataset tab brings your previous table back." \
        if MODES[mode_radio] == "replace" else ""
    return {"load_md": f"Loaded {len(result.examples)} examples from {result.repo_id} ({result.config}/"
                       f"{result.split}; {used}). The draft now has {total}.{' ' + extra + '.' if extra else ''}{undo}",
            "dataset_rev": int(dataset_rev or 0) + 1}


def build_hub_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    who = ("Sign in with Hugging Face to push to your own account, or paste a token with write access."
           if auth.oauth_available() else "Paste a token with write access, or set HF_TOKEN before starting the app.")
    gr.Markdown(f"Push your dataset to the Hugging Face Hub with a dataset card, or load one from the Hub. {who}")
    login_btn = gr.LoginButton() if auth.oauth_available() else None
    token_box = gr.Textbox(label="Hugging Face token (optional when signed in or set in Settings)", type="password",
                           placeholder="hf_...", info="Used for this request only; never stored or shown.")
    with gr.Row(equal_height=True):
        with gr.Column():
            gr.Markdown("### Push the draft")
            repo_box = gr.Textbox(label="Dataset repo", placeholder="my-distilled-set or namespace/name")
            with gr.Row():
                private_chk = gr.Checkbox(True, label="Private repo")
                license_dd = gr.Dropdown(LICENSES, value="apache-2.0", label="License")
                val_sld = gr.Slider(0, 0.5, value=0.1, step=0.05, label="Validation fraction")
            message_box = gr.Textbox(label="Commit message", placeholder="Update dataset from Distill Studio")
            with gr.Row():
                preview_btn = gr.Button("Preview card")
                push_btn = gr.Button("Push to the Hub", variant="primary")
            push_md = gr.Markdown()
            card_code = gr.Code(label="Dataset card (README.md)", language="markdown", interactive=False)
        with gr.Column():
            gr.Markdown("### Load from the Hub")
            load_repo_box = gr.Textbox(label="Dataset repo", placeholder="namespace/name")
            with gr.Row():
                config_box = gr.Textbox(label="Config", placeholder="default")
                split_box = gr.Textbox("train", label="Split")
            gr.Markdown("Column mapping: leave empty for a `messages` column or a known pair "
                        "(question/answer, prompt/completion, instruction/output).")
            with gr.Row():
                user_box = gr.Textbox(label="User column")
                assistant_box = gr.Textbox(label="Assistant column")
                system_box = gr.Textbox(label="System column")
            mode_radio = gr.Radio(list(MODES), value=None, label="The loaded examples should...")
            load_btn = gr.Button("Load into the draft", variant="primary")
            load_md = gr.Markdown()

    c = {"visitor": ctx.visitor, "settings": ctx.settings, "dataset_rev": ctx.dataset_rev, "token_box": token_box,
         "repo_box": repo_box, "private_chk": private_chk, "license_dd": license_dd, "val_sld": val_sld,
         "message_box": message_box, "preview_btn": preview_btn, "push_btn": push_btn, "push_md": push_md,
         "card_code": card_code, "load_repo_box": load_repo_box, "config_box": config_box, "split_box": split_box,
         "user_box": user_box, "assistant_box": assistant_box, "system_box": system_box, "mode_radio": mode_radio,
         "load_btn": load_btn, "load_md": load_md}
    wire(preview_btn.click, preview_card, c, api_name="hub_preview_card")
    # The card is shown first (and checks the repo name) so a push never starts from a bad name.
    checked = wire(push_btn.click, preview_card, c, queue=False, api_visibility="private")
    wire(checked.success, push_draft, c, api_name="hub_push", concurrency_limit=2)
    wire(load_btn.click, load_dataset_into_draft, c, api_name="hub_load", concurrency_limit=2)
    comps = c
    if login_btn is not None:
        comps["login_btn"] = login_btn
    return comps
