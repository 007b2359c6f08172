"""Results as tables (pandas) for the Evaluate tab and reports: scoreboard, per-question drill-down,
benchmark review and run-to-run changes."""

from __future__ import annotations

import pandas as pd

from pipeline.evaluate.costs import chart_cost_per_100
from pipeline.evaluate.stats import wilson_interval

SCOREBOARD_COLUMNS = ["contestant", "accuracy %", "95% interval", "correct", "errors", "median latency s",
                      "tokens / 100 q", "cost / 100 q"]
REVIEW_COLUMNS = ["#", "question", "expected", "scoring", "full answer (reference)"]
CHANGE_COLUMNS = ["question", "expected", "contestant", "before", "after"]


def _money(x: float | None, equivalent: bool = False) -> str:
    return "unknown" if x is None else f"${x:.4f}" + (" (OpenAI equivalent; free here)" if equivalent else "")


def scoreboard_frame(results: dict, live: bool = False) -> pd.DataFrame:
    """`live`: results of a run still answering. Each contestant's accuracy and interval are then over
    the questions it has answered so far, and `correct` says how many those are: scored over the whole
    benchmark, a contestant that had answered 6 of 18, all right, showed 33% (16-56%) and 6/18."""
    rows = []
    for r in results["results"]:
        partial = live and r["answered"] < r["total"]
        if partial:
            r = _over_answered(r)
        lo, hi = r.get("ci95") or (r["accuracy"], r["accuracy"])
        lat = r.get("median_latency_s")
        correct = f"{r['correct']}/{r['answered']} so far (of {r['total']})" if partial else f"{r['correct']}/{r['total']}"
        rows.append({
            "contestant": r["label"], "accuracy %": round(100 * r["accuracy"], 1),
            "95% interval": f"{100 * lo:.0f}–{100 * hi:.0f}%", "correct": correct,
            "errors": r["errors"], "median latency s": None if lat is None else round(lat, 2),
            "tokens / 100 q": r["tokens_per_100"],
            "cost / 100 q": _money(chart_cost_per_100(r), r.get("equivalent_cost_per_100_usd") is not None),
        })
    return pd.DataFrame(rows, columns=SCOREBOARD_COLUMNS)


def _over_answered(row: dict) -> dict:
    """The row's accuracy and interval over the questions answered so far."""
    answered, correct = row["answered"], row["correct"]
    lo, hi = wilson_interval(correct, answered) if answered else (0.0, 1.0)
    return {**row, "accuracy": correct / answered if answered else 0.0, "ci95": [lo, hi]}


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


def review_frame(rows: list[dict]) -> pd.DataFrame:
    """Benchmark lines (as written by bench make/write) for review and editing."""
    out = []
    for n, row in enumerate(rows, 1):
        question = next((m.get("content") or "" for m in reversed(row.get("messages", [])) if m.get("role") == "user"), "")
        out.append({"#": n, "question": question, "expected": row.get("expected", ""), "scoring": row.get("scoring", ""),
                    "full answer (reference)": row.get("reference", "")})
    return pd.DataFrame(out, columns=REVIEW_COLUMNS)


def changes_frame(changes: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"question": c["question"], "expected": c["expected"], "contestant": c["label"],
                          "before": c["before"], "after": c["after"]} for c in changes], columns=CHANGE_COLUMNS)
