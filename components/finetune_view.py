"""How a fine-tuning job looks in the tab: badge, progress line, chart data, event and checkpoint tables.

Pure functions from a JobSnapshot (pipeline.finetune.watch) to component values, so the tab's
handlers stay short and these can be tested without a browser.
"""

from __future__ import annotations

import html
import time
from typing import Any

import pandas as pd

from pipeline.finetune.metrics import loss_frame, metrics_frame
from pipeline.finetune.watch import JobSnapshot, progress_facts

BADGE_COLOURS = {"validating_files": "#6b7280", "queued": "#6b7280", "running": "#2563eb",
                 "succeeded": "#16a34a", "failed": "#dc2626", "cancelled": "#a16207", "unknown": "#6b7280"}
EVENT_COLUMNS = ["time (UTC)", "level", "message"]
CHECKPOINT_COLUMNS = ["step", "model", "train loss", "valid loss"]
MAX_EVENTS_SHOWN = 200


def badge_html(status: str | None) -> str:
    status = status or "no job"
    colour = BADGE_COLOURS.get(status, "#6b7280")
    label = html.escape(status.replace("_", " "))
    return (f'<span class="ft-badge" data-status="{html.escape(status)}" style="background:{colour};'
            f'color:white;padding:2px 10px;border-radius:999px;font-weight:600">{label}</span>')


def progress_markdown(snap: JobSnapshot, snippet: str | None = None) -> str:
    """The job's facts; `snippet` (Python calling the fine-tuned model) is shown once it succeeded."""
    lines = [" · ".join([f"**Job** `{snap.job_id}` on **{snap.base_model or '?'}**", *progress_facts(snap)])]
    if snap.fine_tuned_model:
        lines.append(f"Fine-tuned model: `{snap.fine_tuned_model}` — now the Chat tab's fine-tuned model.")
    if snap.trained_tokens:
        lines.append(f"Trained tokens: {snap.trained_tokens:,}")
    if snippet and snap.status == "succeeded" and snap.fine_tuned_model:
        lines.append(f"Call it from your own code with the openai SDK:\n\n```python\n{snippet}```")
    if snap.error:
        lines.append(f"**{snap.error}**")
    if snap.warning:
        lines.append(f"⚠ {snap.warning}")
    return "\n\n".join(lines)


def events_frame(snap: JobSnapshot) -> pd.DataFrame:
    rows = [[time.strftime("%H:%M:%S", time.gmtime(e["created_at"])), e["level"], e["message"]]
            for e in reversed(snap.events[-MAX_EVENTS_SHOWN:])]  # newest first, like the dashboard
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def checkpoints_frame(snap: JobSnapshot) -> pd.DataFrame:
    rows = [[c["step"], c["model"], c["train_loss"], c["valid_loss"]] for c in snap.checkpoints]
    return pd.DataFrame(rows, columns=CHECKPOINT_COLUMNS)


def chart_frame(snap: JobSnapshot | None, smoothing: bool) -> pd.DataFrame:
    series = ("train", "validation") if snap and snap.has_validation else ("train",)
    return loss_frame(snap.metrics if snap else [], smoothing=smoothing, series=series)


def loss_chart(snap: JobSnapshot | None, smoothing: bool) -> Any:
    """The loss chart's update: the points, over the job's whole step range.

    Gradio's LinePlot fixes its axis types and its set of series from the data it holds when its
    chart is built; later updates only swap the points (seen in chromium: a chart that began with an
    empty frame drew no lines; a validation series that appeared after the first points never
    showed). So an empty chart is None, and every frame names all the job's series from the start.
    """
    import gradio as gr

    frame = chart_frame(snap, smoothing)
    if frame.empty:
        return gr.LinePlot(value=None, x_lim=None)
    last = max(int(frame["step"].max()), (snap.total_steps or 0) if snap else 0)
    return gr.LinePlot(value=frame, x_lim=[0, last])


def table_frame(snap: JobSnapshot | None) -> pd.DataFrame:
    return metrics_frame(snap.metrics if snap else [])


def job_choice(row: dict[str, Any]) -> tuple[str, str]:
    """A dropdown entry (label, job id) for the list of earlier jobs."""
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row["created_at"])) if row.get("created_at") else ""
    model = row.get("fine_tuned_model") or row.get("model") or ""
    return f"{when} · {row['status']} · {model} · {row['job_id']}", row["job_id"]
