"""Chat tab."""

from __future__ import annotations

import gradio as gr

from components.context import AppContext


def build_chat_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    note_md = gr.Markdown("*Not available yet:* the base, fine-tuned and teacher models answering side by side, streaming at once.")
    return {"note_md": note_md}
