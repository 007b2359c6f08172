"""Settings tab."""

from __future__ import annotations

import gradio as gr

from components.context import AppContext


def build_settings_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    note_md = gr.Markdown("*Not available yet:* endpoints, API keys, role assignments and workspace usage.")
    return {"note_md": note_md}
