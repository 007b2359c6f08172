"""Hub tab."""

from __future__ import annotations

import gradio as gr

from components.context import AppContext


def build_hub_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    note_md = gr.Markdown("*Not available yet:* push the dataset to a Hugging Face Hub dataset repo with a dataset card, or load one from the Hub.")
    return {"note_md": note_md}
