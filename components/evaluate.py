"""Evaluate tab."""

from __future__ import annotations

import gradio as gr

from components.context import AppContext


def build_evaluate_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    note_md = gr.Markdown("*Not available yet:* score models on held-out benchmark questions and compare them on a scoreboard.")
    return {"note_md": note_md}
