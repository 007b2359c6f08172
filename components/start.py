"""Start tab."""

from __future__ import annotations

import gradio as gr

from components.context import AppContext


def build_start_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    note_md = gr.Markdown("*Not available yet:* guided demo scenarios (fictional person, step-by-step reasoning) that run the whole story in a few clicks.")
    return {"note_md": note_md}
