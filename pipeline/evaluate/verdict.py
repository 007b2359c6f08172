"""Is the difference real? Pairwise comparisons of a scoreboard and the sentences that say so.

For every pair of contestants: the questions only A got right, only B got right, and the exact
McNemar p-value (pipeline.evaluate.stats). The scoreboard then says in words whether the fine-tuned
model beats the base model and the few-shot baseline (and how it stands against the teacher) at
95% confidence, and when it cannot tell, about how many questions would.
"""

from __future__ import annotations

from itertools import combinations

from pipeline.evaluate.stats import ALPHA, discordant, mcnemar_exact, questions_needed

#: The comparisons the scoreboard puts into words: (role of A, role of B).
SPOKEN = (("fine_tuned", "base"), ("fine_tuned", "few_shot"), ("fine_tuned", "teacher"))


def _right(results: dict, label: str) -> list[bool]:
    return [bool((it["answers"].get(label) or {}).get("correct")) for it in results["items"]]


def comparisons(results: dict) -> list[dict]:
    """[{a, b, a_only, b_only, p_value}] for every pair of results, in scoreboard order."""
    out = []
    for ra, rb in combinations(results["results"], 2):
        a_only, b_only = discordant(_right(results, ra["label"]), _right(results, rb["label"]))
        out.append({"a": ra["label"], "b": rb["label"], "a_only": a_only, "b_only": b_only,
                    "p_value": round(mcnemar_exact(a_only, b_only), 6)})
    return out


def _p(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.4f}" if p < 0.01 else f"p = {p:.2f}"


def sentence(cmp: dict, total: int) -> str:
    """One comparison in plain words."""
    a, b, a_only, b_only, p = cmp["a"], cmp["b"], cmp["a_only"], cmp["b_only"], cmp["p_value"]
    counts = f"{a_only} question{'s' * (a_only != 1)} only {a} got right, {b_only} only {b}"
    if p < ALPHA:
        win, lose = (a, b) if a_only > b_only else (b, a)
        return (f"**{win} beats {lose}** at 95% confidence ({counts}; exact McNemar {_p(p)}: a difference "
                "this large would happen by luck less than 1 time in 20).")
    if a_only == b_only:
        why = ("they got the same questions right" if a_only == 0 else
               "they split the questions they disagree on evenly, so more questions like these would not separate them")
        return f"**No difference between {a} and {b}**: {why} ({_p(p)})."
    need = questions_needed(a_only, b_only, total)
    more = (f" About {need:,} questions in all ({need - total:,} more like these) would tell at 95%."
            if need else " It would take a much larger benchmark to tell.")
    lead = a if a_only > b_only else b
    return (f"**Cannot tell {a} from {b} yet**: {lead} is ahead ({counts}), but {_p(p)} is luck-sized "
            f"(95% confidence needs p < 0.05).{more}")


def verdict_lines(results: dict) -> list[str]:
    """The fine-tuned model against base, few-shot and teacher; every pair when no role is known."""
    by_role: dict[str, list[str]] = {}
    for r in results["results"]:
        by_role.setdefault(r.get("role") or "", []).append(r["label"])
    cmps = {(c["a"], c["b"]): c for c in results.get("comparisons") or comparisons(results)}
    total = results.get("n_questions", len(results["items"]))
    lines = []
    for ra, rb in SPOKEN:
        for a in by_role.get(ra, []):
            for b in by_role.get(rb, []):
                c = cmps.get((a, b)) or cmps.get((b, a))
                if c:
                    lines.append(sentence(c, total))
    if not lines:
        lines = [sentence(c, total) for c in cmps.values()]
    return lines
