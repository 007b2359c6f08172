"""The scoreboard as `eval` prints it (interactive runs and collected evaluation batches alike)."""

from __future__ import annotations

from pipeline.evaluate.costs import break_even_words, chart_cost_per_100


def print_table(results: dict, asked_break_even: bool) -> None:
    print(f"{'contestant':<52} {'accuracy':>8} {'95% interval':>13} {'correct':>9} {'median s':>8} {'cost/100':>10}")
    for r in results["results"]:
        cost = chart_cost_per_100(r)
        shown = "unknown" if cost is None else f"${cost:.4f}" + ("*" if r.get("equivalent_cost_per_100_usd") is not None else "")
        lat = "-" if r["median_latency_s"] is None else f"{r['median_latency_s']:.2f}"
        lo, hi = r["ci95"]
        print(f"{r['label']:<52} {r['accuracy']:>8.0%} {f'{lo:.0%}-{hi:.0%}':>13} {r['correct']:>4}/{r['total']:<4} "
              f"{lat:>8} {shown:>10}")
    if any(r.get("equivalent_cost_per_100_usd") is not None for r in results["results"]):
        print("* free on the local backend; what the same tokens would cost on OpenAI")
    for line in results["verdicts"]:
        print("- " + line.replace("**", ""))
    if asked_break_even or results.get("break_even"):
        print(break_even_words(results.get("break_even")).replace("**", ""))
