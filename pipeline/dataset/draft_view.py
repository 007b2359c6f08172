"""What the Dataset tab shows for a draft (report, table rows, summary), with work in proportion to
the change.

A 5,000-example draft re-tokenized and re-checked in full took ~1-2 s per redraw here, and the tab
redraws on every cell edit and on every batch a running generation appends. `DraftCache` remembers,
per stored JSON line (the example's content), its parsed value, duplicate key, table cells, token
count per encoding and problems per line number; a redraw after one edit or one appended batch
computes those for the new lines only and re-runs just the part of validation that looks across
examples (`validate.assemble_report`). The cache is one visitor's (kept in their session's gr.State).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline import drafts, tokens
from pipeline.dataset import editing
from pipeline.dataset.jsonl import Unparsed
from pipeline.dataset.problems import Problem, problem
from pipeline.dataset.stats import ExampleFacts, example_facts, stats_markdown
from pipeline.dataset.validate import (
    ValidationReport,
    assemble_report,
    check_example,
    dedupe_key,
    example_tokens,
)
from pipeline.models import pricing_source

#: Problems listed under the summary before "and N more".
LISTED = 8
#: Line numbers whose problems an entry remembers (rows move when rows above are deleted).
_LINES_KEPT = 4


@dataclass(slots=True)
class _Entry:
    """Everything derived from one JSON line of the draft (slots: 50,000 of them are kept)."""

    example: Any
    #: a digest of the example's dedupe key (only compared; the key itself is as long as the line)
    key: bytes
    cells: list[str] | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    #: what the data-prep statistics need, per encoding (they count the answer's tokens)
    facts: dict[str, ExampleFacts] = field(default_factory=dict)
    #: line number -> problems of check_example at that line
    checks: dict[int, list[Problem]] = field(default_factory=dict)
    #: the row's problems column, by the exact problems it shows
    texts: dict[tuple[Problem, ...], str] = field(default_factory=dict)


class DraftCache:
    """Per-example results of one visitor's draft, by the example's stored JSON line."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._by_id: dict[int, str] = {}  # id(entry.example) -> its line, for writing unchanged examples back
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()
        #: The draft as last read or written: (stamp, lines, their entries or None).
        self._last: tuple[drafts.Stamp | None, list[str], list[_Entry] | None] = (None, [], None)
        #: The rows last drawn, with what each was drawn from.
        self._rows: dict[int, tuple[_Entry, tuple[Problem, ...], list[str]]] = {}
        #: The last report: (the lines object it describes, (model, epochs, raw rows), report, entries).
        self._report: tuple[Sequence[str], tuple, ValidationReport, list[_Entry]] | None = None
        #: For the UI layer: results it keeps between redraws (the histogram figure).
        self.memo: dict[str, Any] = {}

    def __deepcopy__(self, memo: dict) -> DraftCache:
        return DraftCache()  # gradio deep-copies a State's initial value: each session starts empty

    def __len__(self) -> int:
        return len(self._entries)

    def lines(self, visitor: str) -> list[str]:
        """The visitor's draft lines; not read again while the file is as this cache last saw it."""
        stamp, lines, _ = self._last
        if stamp is None or drafts.draft_stamp(visitor) != stamp:
            stamp, lines = drafts.read_draft(visitor)
            self._last = (stamp, lines, None)
        return lines

    def saved(self, stamp: drafts.Stamp | None, lines: list[str]) -> None:
        """The draft was just written with these lines (the next redraw need not read it)."""
        self._last = (stamp, lines, None)

    def entries(self, lines: Sequence[str]) -> list[_Entry]:
        stamp, last_lines, last_entries = self._last
        if lines is last_lines and last_entries is not None:
            return last_entries
        out = self._entries_of(lines)
        if lines is last_lines:
            self._last = (stamp, last_lines, out)
        return out

    def _entries_of(self, lines: Sequence[str]) -> list[_Entry]:
        out = []
        for line in lines:
            entry = self._entries.get(line)
            if entry is None:
                value = json.loads(line)
                entry = _Entry(value, hashlib.blake2b(dedupe_key(value).encode("utf-8", "surrogatepass"), digest_size=16).digest())
                with self._lock:
                    self._entries[line] = entry
                    self._by_id[id(value)] = line
            out.append(entry)
        return out

    def uncached(self, lines: Sequence[str]) -> int:
        """How many of these lines this cache has not parsed yet (the work a report would start with)."""
        return sum(1 for line in lines if line not in self._entries)

    def examples(self, lines: Sequence[str]) -> list[Any]:
        """The parsed examples of these lines. Callers must not change them in place (none does: the
        dataset operations build new examples), or the cache would describe what is no longer there."""
        return [e.example for e in self.entries(lines)]

    def line_of(self, example: Any) -> str:
        """The stored line of an example this cache handed out, else its JSON (a new or edited one)."""
        line = self._by_id.get(id(example))
        entry = self._entries.get(line) if line is not None else None
        if entry is not None and entry.example is example:
            return line  # type: ignore[return-value]
        return json.dumps(example, ensure_ascii=False)

    def cells(self, example: Any) -> list[str]:
        """The table's [system, user, assistant, json] cells of an example."""
        line = self._by_id.get(id(example))
        entry = self._entries.get(line) if line is not None else None
        if entry is None or entry.example is not example:
            return editing.cells(example)
        if entry.cells is None:
            entry.cells = editing.cells(example)
        return entry.cells

    def keep_only(self, lines: Sequence[str]) -> None:
        """Forget lines no longer in the draft (called after a redraw, when it has grown stale)."""
        if len(self._entries) <= 2 * len(lines) + 1000:
            return
        with self._lock:
            wanted = set(lines)
            self._entries = {k: v for k, v in self._entries.items() if k in wanted}
            self._by_id = {id(v.example): k for k, v in self._entries.items()}

    def report(self, lines: Sequence[str], unparsed: Sequence[Unparsed], model: str,
               n_epochs: int | None = None) -> tuple[ValidationReport, list[_Entry]]:
        """The draft's validation report, equal to `validate_examples` on its examples plus a
        dataset-wide problem per unreadable (raw) row; the entries, for `rows`. The same draft asked
        again (turning a page, a redraw with nothing new) gets the report it got last time."""
        memo_key = (model, n_epochs or None, tuple(unparsed))
        # One at a time per session: page load fires this redraw twice at once (load, and the visitor
        # id arriving); the second then finds the first's report instead of validating all again.
        with self._report_lock:
            last = self._report
            if last is not None and last[0] is lines and last[1] == memo_key:
                return last[2], last[3]
            report, entries = self._report_of(lines, unparsed, model, n_epochs)
            self._report = (lines, memo_key, report, entries)
        return report, entries

    def _report_of(self, lines: Sequence[str], unparsed: Sequence[Unparsed], model: str,
                   n_epochs: int | None) -> tuple[ValidationReport, list[_Entry]]:
        entries = self.entries(lines)
        counter = tokens.counter_for(model)
        missing = [e for e in entries if counter.encoding not in e.tokens]
        if missing:
            counts = example_tokens([e.example for e in missing], counter)
            facts = example_facts([e.example for e in missing], counter)
            for e, n, f in zip(missing, counts, facts, strict=True):
                e.tokens[counter.encoding], e.facts[counter.encoding] = n, f
        checks = []
        for i, e in enumerate(entries):
            found = e.checks.get(i + 1)
            if found is None:
                if len(e.checks) >= _LINES_KEPT:
                    e.checks.clear()
                found = e.checks[i + 1] = check_example(e.example, i + 1, i, lines[i])
            checks.append(found)
        raw = [problem(u.code, f"Row raw {j}: {u.message}") for j, u in enumerate(unparsed, start=1)]
        report = assemble_report(model, counter, [e.example for e in entries], range(1, len(entries) + 1), checks,
                                 [e.key for e in entries],
                                 [e.tokens[counter.encoding] for e in entries], n_epochs=n_epochs or None,
                                 extra=raw, facts=[e.facts[counter.encoding] for e in entries])
        report.n_unparsed = len(unparsed)
        return report, entries

    def rows(self, entries: Sequence[_Entry], unparsed: Sequence[Unparsed], report: ValidationReport,
             shown: int | Sequence[int]) -> list[list[str]]:
        """The table's rows (as `editing.build_rows` draws them): for the first `shown` examples and
        every raw row, or for the rows of a page (line indexes, raw rows as -1, -2, ...:
        pipeline.dataset.paging)."""
        page = list(range(shown)) + [-(j + 1) for j in range(len(unparsed))] if isinstance(shown, int) else shown
        drawn, old = [], self._rows
        for i in page:
            if i < 0:
                u = unparsed[-i - 1]
                drawn.append((None, (), [f"{editing.RAW_KEY}{-i}", "", "", "", u.raw, f"✖ {u.message}"]))
                continue
            e = entries[i]
            found = tuple(report.example_problems[i])
            kept = old.get(i)
            if kept is not None and kept[0] is e and kept[1] == found:
                drawn.append(kept)  # the same example with the same problems: the same row
                continue
            text = e.texts.get(found)
            if text is None:
                if len(e.texts) >= _LINES_KEPT:
                    e.texts.clear()
                text = e.texts[found] = editing.problem_text(found)
            drawn.append((e, found, [str(i + 1), *self.cells(e.example), text]))
        self._rows = {i: d for i, d in zip(page, drawn, strict=True) if i >= 0}
        return [row for _e, _f, row in drawn]


def validate_draft(examples: Sequence[Any], unparsed: Sequence[Unparsed], model: str,
                   n_epochs: int | None = None) -> ValidationReport:
    """Validate a draft without a cache; lines kept raw (not JSON yet) count as errors too."""
    lines = [json.dumps(ex, ensure_ascii=False) for ex in examples]
    return DraftCache().report(lines, unparsed, model, n_epochs)[0]


#: Problems of each severity the report panel lists (a 50,000-row draft can have 50,000 warnings: ~10 MB).
REPORT_LISTED = 100


def report_for_page(report: ValidationReport) -> dict[str, Any]:
    """The report as the tab's JSON panel shows it: every figure, the first REPORT_LISTED errors and
    warnings, and how many there are in all (the table's filter reaches every one)."""
    out = report.to_json()
    for kind in ("errors", "warnings"):
        found = out[kind]
        if len(found) > REPORT_LISTED:
            out[kind] = found[:REPORT_LISTED]
            out[f"{kind}_total"] = len(found)
            out["note"] = (f"Lists the first {REPORT_LISTED} of each kind; choose \"Rows with errors or warnings\" "
                           "above the table to see every row with problems.")
    return out


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
    status = "✔ no errors" if not report.errors else f"✖ **{len(report.errors):,} error(s)**"
    lines = [
        f"**{report.n_examples:,} examples**"
        + (f" + {report.n_unparsed} unreadable row(s)" if report.n_unparsed else "")
        + f" · {report.total_tokens:,} tokens · {report.billing_tokens_per_epoch:,} billed per epoch"
        + f" · {report.n_epochs} epoch(s) · estimated training cost for `{report.model}`: **{cost}**{approx}",
        f"{status} · ⚠ {len(report.warnings):,} warning(s) · prices: {pricing_source()}",
    ]
    counts = Counter(p["code"] for p in report.errors + report.warnings)
    if counts:
        lines.append("Problems by kind: " + ", ".join(f"`{c}` × {n}" for c, n in counts.most_common()))
    listed = [p for p in report.errors + report.warnings if p["line"] is None or p["code"] != "missing_system_message"]
    for p in listed[:LISTED]:
        icon = "✖" if p["severity"] == "error" else "⚠"
        lines.append(f"- {icon} {p['message']}")
    if len(listed) > LISTED:
        lines.append(f"- … and {len(listed) - LISTED:,} more: choose **Rows with errors or warnings** above the "
                     "table to see every one, or type a line's number in **Go to row #**.")
    figures = stats_markdown(report.stats) if report.stats else ""  # the data-prep notebook's report
    return "\n\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + (f"\n\n{figures}" if figures else "")


def token_bins(lengths: Sequence[int], n_bins: int = 30) -> tuple[list[float], list[int], float]:
    """(bin centres, counts, bin width) of the token counts: the histogram drawn as 30 bars, so the
    page receives 30 numbers instead of one per example."""
    values = np.asarray(lengths)
    lo, hi = int(values.min()), int(values.max())
    width = max(1.0, (hi - lo) / n_bins) if hi > lo else 1.0
    counts = np.bincount(np.minimum(n_bins - 1, ((values - lo) / width).astype(int)), minlength=n_bins)
    last = int(np.flatnonzero(counts).max())
    return [lo + width * (k + 0.5) for k in range(last + 1)], counts[:last + 1].tolist(), width
