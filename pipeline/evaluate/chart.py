"""Accuracy against cost and latency, one point per contestant, and the break-even line (plotly).

Error bars are the 95% Wilson intervals: two points whose bars overlap a lot are not clearly apart
(the McNemar verdict says whether they are). Cost is per 100 questions; a free local model is placed
at what the same tokens would cost on OpenAI, and its name says so. The third panel, shown when a
fine-tuned model, a teacher and a training cost are known, is the break-even: total cost against
questions answered, training included, and where the two lines cross.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.evaluate.costs import chart_cost_per_100, cost_gaps

if TYPE_CHECKING:
    import plotly.graph_objects as go


COLOURS = {"base": "#7f7f7f", "few_shot": "#1f77b4", "fine_tuned": "#2ca02c", "teacher": "#d62728"}


def _name(r: dict) -> str:
    return r["label"] + (" (OpenAI-equivalent cost)" if r.get("equivalent_cost_per_100_usd") is not None else "")


def cost_chart(results: dict, break_even: dict | None = None) -> go.Figure:
    import plotly.graph_objects as go  # here: plotly costs ~0.3 s of the app's first page
    from plotly.subplots import make_subplots

    panels = 3 if break_even and break_even.get("questions") else 2
    titles = ["Accuracy vs cost per 100 questions", "Accuracy vs median latency",
              "Break-even: total cost vs questions"][:panels]
    fig = make_subplots(rows=1, cols=panels, subplot_titles=titles, horizontal_spacing=0.08)
    for r in results["results"]:
        acc = 100 * r["accuracy"]
        lo, hi = (100 * x for x in r.get("ci95") or (r["accuracy"], r["accuracy"]))
        err = {"type": "data", "symmetric": False, "array": [hi - acc], "arrayminus": [acc - lo], "visible": True}
        colour = COLOURS.get(r.get("role") or "", "#9467bd")
        hover = f"{r['label']}<br>{acc:.0f}% (95%: {lo:.0f}–{hi:.0f}%)<br>{r['correct']}/{r['total']}"
        cost = chart_cost_per_100(r)
        if cost is not None:
            fig.add_trace(go.Scatter(x=[cost], y=[acc], error_y=err, mode="markers+text", text=[r["label"]],
                                     textposition="top center", name=_name(r), legendgroup=r["label"],
                                     marker={"size": 12, "color": colour}, hovertext=[hover], hoverinfo="text+x"),
                          row=1, col=1)
        if r.get("median_latency_s") is not None:
            fig.add_trace(go.Scatter(x=[r["median_latency_s"]], y=[acc], error_y=err, mode="markers",
                                     name=_name(r), legendgroup=r["label"], showlegend=cost is None,
                                     marker={"size": 12, "color": colour}, hovertext=[hover], hoverinfo="text+x"),
                          row=1, col=2)
    gaps = cost_gaps(results)
    if gaps:  # said on the panel itself: an empty or partial panel looked like a drawing fault
        alone = len(gaps) == len(results["results"])
        fig.add_annotation(text="<br>".join(gaps) + ("<br>(prices: data/pricing.json)" if alone else ""),
                           showarrow=False, xref="x domain", yref="y domain", x=0.5, y=0.5 if alone else 0.02,
                           yanchor="middle" if alone else "bottom", font={"size": 11, "color": "#555"},
                           row=1, col=1)
    if panels == 3 and break_even is not None:  # panels is 3 only with a break-even
        n = int(break_even["questions"] * 2)
        xs = [0, n]
        fig.add_trace(go.Scatter(x=xs, y=[0, n * break_even["per_question_teacher"]], mode="lines",
                                 name=f"{break_even['teacher']}: pay per question", line={"color": COLOURS["teacher"]}),
                      row=1, col=3)
        fig.add_trace(go.Scatter(x=xs, y=[break_even["training_cost_usd"],
                                          break_even["training_cost_usd"] + n * break_even["per_question_fine_tuned"]],
                                 mode="lines", name=f"{break_even['fine_tuned']}: training + per question",
                                 line={"color": COLOURS["fine_tuned"]}), row=1, col=3)
        fig.add_vline(x=break_even["questions"], line_dash="dash", line_color="#444", row=1, col=3,
                      annotation_text=f"break-even: {break_even['questions']:,} questions")
        fig.update_xaxes(title_text="questions answered", row=1, col=3)
        fig.update_yaxes(title_text="total USD", row=1, col=3)
    fig.update_xaxes(title_text="USD per 100 questions", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="median seconds per answer", rangemode="tozero", row=1, col=2)
    for col in (1, 2):
        fig.update_yaxes(title_text="accuracy % (95% interval)", range=[-5, 105], row=1, col=col)
    fig.update_layout(height=420, margin={"l": 50, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.2})
    return fig
