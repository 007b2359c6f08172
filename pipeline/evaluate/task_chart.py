"""How task scoring shows in Evaluate: the confusion matrix as a heat map per model, and tables of
per-label precision/recall/F1 and per-field accuracy (from runner.task_reports' `labels` / `fields`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go


def confusion_heatmap(results: dict) -> go.Figure | None:
    """One heat map per model (rows: expected label, columns: answered label); None without label items."""
    import plotly.graph_objects as go  # here: plotly costs ~0.3 s of the app's first page
    from plotly.subplots import make_subplots

    reports = results.get("labels") or {}
    if not reports:
        return None
    names = list(reports)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[
        f"{n}: accuracy {reports[n]['accuracy']:.0%}, macro F1 {reports[n]['macro_f1']:.2f}" for n in names],
        horizontal_spacing=0.12)
    for k, name in enumerate(names, start=1):
        rep = reports[name]
        fig.add_trace(go.Heatmap(
            z=rep["confusion"], x=rep["columns"], y=rep["labels"], colorscale="Blues", showscale=False,
            text=rep["confusion"], texttemplate="%{text}",
            hovertemplate="expected %{y}<br>answered %{x}<br>%{z} item(s)<extra>" + name + "</extra>"), 1, k)
        fig.update_xaxes(title_text="answered", row=1, col=k)
        fig.update_yaxes(autorange="reversed", row=1, col=k, title_text="expected" if k == 1 else None)
    fig.update_layout(height=340, margin={"l": 60, "r": 10, "t": 50, "b": 60}, title="Confusion matrix")
    return fig


def task_markdown(results: dict) -> str:
    """Per-label precision/recall/F1 and per-field accuracy, as Markdown tables ("" when not relevant)."""
    parts = []
    for name, rep in (results.get("labels") or {}).items():
        rows = [f"| {lab} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1']:.2f} | {v['support']} |"
                for lab, v in rep["per_label"].items()]
        parts.append(f"**{name}** per label (macro F1 {rep['macro_f1']:.2f})\n\n"
                     "| label | precision | recall | F1 | items |\n|---|---|---|---|---|\n" + "\n".join(rows))
    for name, fields in (results.get("fields") or {}).items():
        if fields:
            rows = [f"| {field} | {acc:.0%} |" for field, acc in fields.items()]
            parts.append(f"**{name}** per field (JSON answers)\n\n| field | right |\n|---|---|\n" + "\n".join(rows))
    return "\n\n".join(parts)
