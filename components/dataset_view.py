"""Helpers of the Dataset tab that are about showing things: choices, the histogram, output mapping."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from pipeline.dataset.draft_view import token_bins
from pipeline.dataset.validate import ValidationReport
from pipeline.endpoints import LOCAL_MODEL
from pipeline.models import DATA_DIR, openai_fine_tunable_models

if TYPE_CHECKING:
    import plotly.graph_objects as go

SAMPLES_DIR = DATA_DIR / "samples"


def sample_choices() -> list[str]:
    """Sample datasets shipped in data/samples (whatever .jsonl files are there when the app starts)."""
    return sorted(p.name for p in SAMPLES_DIR.glob("*.jsonl")) if SAMPLES_DIR.is_dir() else []


def sample_path(name: str) -> Path:
    if name not in sample_choices():
        raise gr.Error(f"Unknown sample {name!r}; pick one of: {', '.join(sample_choices()) or 'none shipped'}.")
    return SAMPLES_DIR / name


def model_choices() -> list[str]:
    return [*openai_fine_tunable_models(), LOCAL_MODEL]


def histogram(report: ValidationReport) -> go.Figure:
    """Tokens per example, as bars of precomputed bins (plotly checks every value it is given: a
    histogram of 5,000 values took half a second to build here)."""
    import plotly.graph_objects as go  # here: plotly costs ~0.3 s of the app's first page

    if not report.token_lengths:  # an empty histogram draws bare axes from -1: say what will be here
        fig = go.Figure()
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.add_annotation(text="Tokens per example appear here once the draft has examples.",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10})
        return fig
    centres, counts, width = token_bins(report.token_lengths)
    fig = go.Figure(go.Bar(x=centres, y=counts, width=width * 0.95, marker_color="#6366f1"))
    approx = " (approximate)" if report.tokens_approximate else ""
    fig.update_layout(title=f"Tokens per example{approx}", xaxis_title="tokens", yaxis_title="examples",
                      height=260, margin={"l": 40, "r": 10, "t": 40, "b": 40}, bargap=0.05)
    if report.token_lengths and max(report.token_lengths) > report.context_limit:
        fig.add_vline(x=report.context_limit, line_dash="dash", line_color="red",
                      annotation_text=f"limit {report.context_limit:,}")
    return fig

