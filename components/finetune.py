"""Fine-tune tab."""

from __future__ import annotations

import gradio as gr

from components.context import AppContext


def build_finetune_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    note_md = gr.Markdown("*Not available yet:* launch a fine-tuning job on OpenAI or the local backend and watch its status, events and loss curve.")
    return {"note_md": note_md}
