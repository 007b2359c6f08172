"""What the Dataset tab shows for a draft: validation of examples plus unreadable lines, a summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pipeline.dataset.jsonl import Unparsed
from pipeline.dataset.problems import problem
from pipeline.dataset.stats import stats_markdown
from pipeline.dataset.validate import ValidationReport, _fill_lists, validate_examples
from pipeline.models import pricing_source

#: Problems listed under the summary before "and N more".
LISTED = 8


def validate_draft(examples: Sequence[Any], unparsed: Sequence[Unparsed], model: str,
                   n_epochs: int | None = None) -> ValidationReport:
    """Validate the draft; lines kept raw (not JSON yet) count as errors too, so nothing hides."""
    report = validate_examples(examples, model, n_epochs=n_epochs or None)
    for j, u in enumerate(unparsed, start=1):
        report.dataset_problems.append(problem(u.code, f"Row raw {j}: {u.message}"))
    report.n_unparsed = len(unparsed)
    _fill_lists(report)
    return report


#: What an empty draft shows instead of "1 error: Only 0 examples" (a newcomer's first sight).
EMPTY_DRAFT = ("**No examples yet.** Start with one of these: pick a **sample dataset** below and click "
               "**Load sample**; **upload** a file you have (JSONL, JSON, CSV/TSV, Parquet); or let the teacher "
               "write examples in the **Generate** tab. Validation, token counts and cost appear here then.")


def summary_markdown(report: ValidationReport) -> str:
    if report.n_examples == 0 and not report.n_unparsed:
        return EMPTY_DRAFT
    usd = report.estimated_cost_usd
    cost = "no training price known" if usd is None else f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"
    approx = (f" · ⚠ token counts are **approximate** (counted with {report.encoding})"
              if report.tokens_approximate else "")
    status = "✔ no errors" if not report.errors else f"✖ **{len(report.errors)} error(s)**"
    lines = [
        f"**{report.n_examples:,} examples**"
        + (f" + {report.n_unparsed} unreadable row(s)" if report.n_unparsed else "")
        + f" · {report.total_tokens:,} tokens · {report.billing_tokens_per_epoch:,} billed per epoch"
        + f" · {report.n_epochs} epoch(s) · estimated training cost for `{report.model}`: **{cost}**{approx}",
        f"{status} · ⚠ {len(report.warnings)} warning(s) · prices: {pricing_source()}",
    ]
    counts = Counter(p["code"] for p in report.errors + report.warnings)
    if counts:
        lines.append("Problems by kind: " + ", ".join(f"`{c}` × {n}" for c, n in counts.most_common()))
    listed = [p for p in report.errors + report.warnings if p["line"] is None or p["code"] != "missing_system_message"]
    for p in listed[:LISTED]:
        icon = "✖" if p["severity"] == "error" else "⚠"
        lines.append(f"- {icon} {p['message']}")
    if len(listed) > LISTED:
        lines.append(f"- … and {len(listed) - LISTED} more: see the problems column.")
    figures = stats_markdown(report.stats) if report.stats else ""  # the data-prep notebook's report
    return "\n\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + (f"\n\n{figures}" if figures else "")
