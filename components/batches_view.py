"""What the batches panel shows: a table of the visitor's batches with a progress bar each, the
picker's choices, and the one-line messages of its actions. Pure functions of pipeline.batch records
(no gradio), so they are tested without a browser."""

from __future__ import annotations

import html
import time

from pipeline.batch import BatchEstimate, BatchRecord, CollectReport, estimate_cost

KIND_WORDS = {"generate": "generation", "eval": "evaluation"}
STATE_WORDS = {"built": "not submitted", "validating": "validating", "in_progress": "running",
               "finalizing": "finalizing", "cancelling": "cancelling", "completed": "finished: collect it",
               "failed": "failed", "expired": "expired (24 h passed)", "cancelled": "cancelled",
               "collected": "collected"}
#: States in which the provider may still change something (the timer polls only while one is listed).
MOVING = ("validating", "in_progress", "finalizing", "cancelling")
EMPTY = {
    "generate": "No generation batches yet. Choose **Batch** above and submit: the teacher's provider answers "
                "within 24 hours at half price, and your batches wait here (also after you close the browser) "
                "until you collect them into your draft.",
    "eval": "No evaluation batches yet. Choose **Batch** above and submit: the provider answers within 24 hours at "
            "half price, and your batches wait here (also after you close the browser) until you collect them "
            "onto the scoreboard.",
}
_CELL = "padding:4px 8px;border-bottom:1px solid var(--border-color-primary);text-align:left;vertical-align:middle"


def when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else "—"


def state_word(r: BatchRecord) -> str:
    return STATE_WORDS.get(r.state, r.state)


def requests_cell(r: BatchRecord) -> str:
    c = r.counts()
    text = f"{c['completed']:,}/{c['total']:,} done"
    return text + (f" · {c['failed']:,} failed" if c["failed"] else "")


def expected_cell(r: BatchRecord) -> str:
    if r.state == "collected":
        return "—"
    if r.state == "built":
        return "not sent"
    return "finished" if r.finished() else when(r.expected_by())


def table_html(records: list[BatchRecord], kind: str) -> str:
    """The list as an HTML table (a Dataframe cannot hold a progress bar)."""
    if not records:
        return f'<div class="batch-empty">{html.escape(EMPTY[kind]).replace("**Batch**", "<b>Batch</b>")}</div>'
    head = "".join(f'<th style="{_CELL};white-space:nowrap">{h}</th>' for h in
                   ("Batch", "Kind", "State", "Requests", "Progress", "Created", "Expected by"))
    rows = []
    for r in records:
        pct = 100 * r.progress()
        bar = (f'<progress max="100" value="{pct:.1f}" style="width:110px;height:12px" '
               f'aria-label="Progress of {html.escape(r.id)}"></progress> {pct:.0f}%')
        cells = (f"<b>{html.escape(r.id)}</b><br><small>{html.escape(r.title)}</small>", KIND_WORDS.get(r.kind, r.kind),
                 html.escape(state_word(r)), requests_cell(r), bar, when(r.created_at), expected_cell(r))
        # Only the title may wrap: dates, counts and the bar stay on one line each.
        rows.append("<tr>" + "".join(f'<td style="{_CELL}{"" if i == 0 else ";white-space:nowrap"}">{c}</td>'
                                     for i, c in enumerate(cells)) + "</tr>")
    return (f'<table class="batch-list" style="width:100%;border-collapse:collapse"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def choices(records: list[BatchRecord]) -> list[tuple[str, str]]:
    return [(f"{r.id} · {state_word(r)} · {requests_cell(r)}", r.id) for r in records]


def other_kind_line(others: list[BatchRecord], kind: str) -> str:
    """One line pointing at the visitor's batches of the other kind (each tab lists its own)."""
    if not others:
        return ""
    tab = "Evaluate" if kind == "generate" else "Generate"
    word = KIND_WORDS["eval" if kind == "generate" else "generate"]
    moving = sum(r.state in MOVING for r in others)
    extra = f" ({moving} running)" if moving else ""
    return f"You also have {len(others)} {word} batch{'es' if len(others) != 1 else ''}{extra}: see the {tab} tab."


def actions(r: BatchRecord | None) -> set[str]:
    """The panel's buttons that can do something for this batch."""
    if r is None:
        return set()
    out = {"batch_export_btn"}
    if r.state not in ("built", "collected"):  # a running one: collect asks for news, says how far it is
        out.add("batch_collect_btn")
    if r.state in MOVING and r.state != "cancelling":
        out.add("batch_cancel_btn")
    done = r.collected or {}
    if r.state == "collected" and (done.get("failed") or done.get("unparsed")):
        out.add("batch_retry_btn")
    return out


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def estimate_words(est: BatchEstimate) -> str:
    if est.batch_cost_usd == 0 and est.interactive_cost_usd == 0:  # the local backend's models cost nothing
        return f"{plural(est.requests, 'request')}: free (no provider charges for this model)"
    return est.describe()


def cost_line(r: BatchRecord) -> str:
    return estimate_words(estimate_cost(r))


def submitted_line(r: BatchRecord) -> str:
    return (f"Submitted **{r.id}**: {cost_line(r)}. Results are due by {when(r.expected_by())}; this list "
            "follows it, and it stays here if you close the browser.")


def file_only_line(r: BatchRecord) -> str:
    return (f"Wrote the request file of **{r.id}** ({plural(r.requests, 'request')}; sent here it would be: "
            f"{cost_line(r)}). Download it below, run it where you like (OpenAI, Azure OpenAI, `vllm run-batch`), "
            "then import the results file into this batch.")


def not_sent_line(r: BatchRecord, exc: Exception) -> str:
    return f"**Not submitted:** {exc} The request file is kept in {r.id}."


def confirm_line(r: BatchRecord, threshold_usd: float) -> str:
    return (f"**{cost_line(r)}: above your ${threshold_usd:,.2f} confirmation threshold (Settings). "
            "Submit it?**")


def collected_line(r: BatchRecord, report: CollectReport) -> str:
    if report.waiting:  # answer checks or the judge went out as a second batch of the same record
        return f"{report.message} This list follows it."
    if report.already:
        before = (f"{report.appended} examples were added then" if r.kind == "generate"
                  else "its scores are on the scoreboard")
        return f"Batch {r.id} was already collected ({before}); nothing was added again."
    failed = f"{plural(report.failed, 'request')} failed"
    retry = (" **Retry failed requests** sends the failed and unparsed ones again as a new, smaller batch."
             if report.failed or report.unparsed else "")
    cost = f" Cost: ${report.cost_usd:.4f} at batch prices." if report.cost_usd else ""
    checked = f"{report.check_dropped:,} dropped by the answer check, " if r.plan.get("check") else ""
    if r.kind == "generate":
        return (f"Collected {r.id}: **{plural(report.appended, 'example')} added to your draft** (Dataset tab); "
                f"{plural(report.duplicates, 'duplicate')} dropped, {plural(report.unparsed, 'reply', 'replies')} unparsed, "
                f"{checked}{failed}.{cost}{retry}")
    return f"Collected {r.id}: scored and saved, the scoreboard below shows it; {failed}.{cost}{retry}"
