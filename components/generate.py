"""Generate tab."""

from __future__ import annotations

import gradio as gr

from components.context import AppContext


def build_generate_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    note_md = gr.Markdown("*Not available yet:* the teacher model will write training examples from templates (reasoning, knowledge, paraphrase, tone, custom).")
    return {"note_md": note_md}
