"""Results as tables (pandas) for the Evaluate tab and reports: scoreboard and per-question drill-down."""

from __future__ import annotations

import pandas as pd


def _money(x: float | None) -> str:
    return "unknown" if x is None else f"${x:.4f}"


def scoreboard_frame(results: dict) -> pd.DataFrame:
    rows = [{
        "model": r["label"], "accuracy %": round(100 * r["accuracy"], 1), "correct": f"{r['correct']}/{r['total']}",
        "errors": r["errors"],
        "mean latency s": None if r["mean_latency_s"] is None else round(r["mean_latency_s"], 2),
        "tokens / 100 q": r["tokens_per_100"], "cost / 100 q": _money(r["cost_per_100_usd"]),
    } for r in results["results"]]
    return pd.DataFrame(rows, columns=["model", "accuracy %", "correct", "errors", "mean latency s",
                                       "tokens / 100 q", "cost / 100 q"])


def accuracy_frame(results: dict) -> pd.DataFrame:
    return pd.DataFrame({"model": [r["label"] for r in results["results"]],
                         "accuracy %": [round(100 * r["accuracy"], 1) for r in results["results"]]})


def drilldown_frame(results: dict, max_answer_chars: int = 400) -> pd.DataFrame:
    """One row per question: question, expected, then each model's answer with ✓ / ✗ and what was compared."""
    models = [r["label"] for r in results["results"]]
    rows = []
    for it in results["items"]:
        row = {"#": it["index"] + 1, "question": it["question"], "expected": it["expected"], "scoring": it["scoring"]}
        for m in models:
            a = it["answers"].get(m)
            if a is None:
                row[m] = "(not run)"
            elif a["error"]:
                row[m] = f"✗ error: {a['error']}"
            else:
                text = a["answer"] if len(a["answer"]) <= max_answer_chars else a["answer"][:max_answer_chars] + "…"
                row[m] = f"{'✓' if a['correct'] else '✗'} [{a['verdict']}] {text}"
        rows.append(row)
    return pd.DataFrame(rows, columns=["#", "question", "expected", "scoring", *models])
