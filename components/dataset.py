"""Dataset tab."""

from __future__ import annotations

import gradio as gr

from components.context import AppContext


def build_dataset_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    note_md = gr.Markdown("*Not available yet:* upload, review, edit, validate, count tokens and cost, split, dedupe and export chat datasets.")
    return {"note_md": note_md}
