"""How the Start tab shows a demo: the step table, the three answers, the scoreboard."""

from __future__ import annotations

import pandas as pd

from pipeline.demo import STEP_TITLES, DemoRun, Scenario

STEP_COLUMNS = ["Step", "What happened", "Time", "Cost", "On OpenAI (est.)"]


def money(usd: float | None) -> str:
    if usd is None:
        return "—"
    return "$0" if usd == 0 else f"${usd:,.4f}" if usd < 1 else f"${usd:,.2f}"


def steps_frame(scenario: Scenario, run: DemoRun | None, running: str | None = None) -> pd.DataFrame:
    rows = []
    for step in scenario.steps:
        result = run.results.get(step) if run and run.scenario == scenario.name else None
        if result:
            rows.append([STEP_TITLES[step], result.summary, f"{result.seconds:.0f} s", money(result.cost_usd),
                         money(result.equivalent_usd)])
        else:
            rows.append([STEP_TITLES[step], "running…" if step == running else "not run yet", "", "", ""])
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


def pitch_markdown(scenario: Scenario) -> str:
    steps = " → ".join(STEP_TITLES[s].lower() for s in scenario.steps)
    return f"**{scenario.title}.** {scenario.pitch}\n\n*Steps:* {steps}."


def panes_markdown(run: DemoRun | None) -> list[str]:
    """Three Markdown blocks: each model's answer to the held-out question."""
    result = run.results.get("compare") if run else None
    if not result:
        return ["*The base model's answer appears here.*", "*The fine-tuned model's answer appears here.*",
                "*The teacher's answer appears here.*"]
    blocks = []
    for pane in result.details["panes"]:
        mark = "✔ contains the expected fact" if pane["contains_expected"] else "✖ misses the expected fact"
        speed = f" · {pane['tokens_per_s']:.0f} tok/s" if pane.get("tokens_per_s") else ""
        answer = (pane["text"] or "").strip() or "*(empty answer)*"
        blocks.append(f"**{pane['label']}** · `{pane['model']}`{speed}\n\n{answer}\n\n{mark}")
    return blocks + [""] * (3 - len(blocks))


def question_markdown(run: DemoRun | None) -> str:
    result = run.results.get("compare") if run else None
    if not result:
        return ""
    return f"**Held-out question:** {result.details['question']}  \n**Expected:** {result.details['expected']}"


def scoreboard_frame(run: DemoRun | None) -> pd.DataFrame:
    result = run.results.get("benchmark") if run else None
    rows = result.details["results"] if result else []
    return pd.DataFrame([{"model": r["label"], "accuracy %": round(100 * r["accuracy"], 1),
                          "95% interval": _interval(r), "correct": f"{r['correct']}/{r['total']}"} for r in rows],
                        columns=["model", "accuracy %", "95% interval", "correct"])


def _interval(row: dict) -> str:
    lo, hi = row.get("ci95") or (row["accuracy"], row["accuracy"])
    return f"{100 * lo:.0f}–{100 * hi:.0f}%"


def totals_markdown(run: DemoRun | None) -> str:
    if not run or not run.results:
        return ""
    real = sum(r.cost_usd or 0.0 for r in run.results.values())
    eq = [r.equivalent_usd for r in run.results.values() if r.equivalent_usd is not None]
    took = sum(r.seconds for r in run.results.values())
    line = f"**So far:** {took:.0f} s, spent {money(real)}"
    if eq:
        line += f"; the same work on OpenAI would cost about {money(sum(eq))} (estimate from data/pricing.json)"
    return line + "."
