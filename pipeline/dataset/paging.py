"""Which rows of a large draft the Dataset tab shows: a page of a selection (all rows, rows with
problems, rows matching a search), a jump to a row, and what a saved page changes in the stored lines.

A browser grid of 50,000 rows is unusable and sending it costs tens of megabytes, so the tab shows
PAGE_ROWS rows at a time. The rows of a selection are the draft's line indexes (0-based) in order,
followed by its unreadable (`raw`) rows as negative numbers -1, -2, ... A page remembers what it
showed (`Page`), so a saved edit replaces exactly those stored lines and nothing else, even when the
page is a filtered, non-contiguous set of lines and rows were appended meanwhile.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.dataset.editing import RAW_KEY, apply_table
from pipeline.dataset.jsonl import Unparsed
from pipeline.dataset.problems import Problem
from pipeline.errors import InputError

#: Rows sent to the browser at a time (a page of 200 chat examples is ~100-300 kB).
PAGE_ROWS = 200
ALL, ERRORS, PROBLEMS = "All rows", "Rows with errors", "Rows with errors or warnings"
FILTERS = (ALL, ERRORS, PROBLEMS)


def select(lines: Sequence[str], problems: Sequence[Sequence[Problem]], unparsed: Sequence[Unparsed],
           which: str | None, search: str | None) -> list[int]:
    """The rows of the selection: line indexes in order, then raw rows as -1, -2, ...

    The search is case-insensitive on the stored JSON line, with the query written as it is stored
    (so a quote or a line break in the query matches the escaped one in the line)."""
    which = which if which in FILTERS else ALL
    needle = json.dumps((search or "").strip(), ensure_ascii=False)[1:-1].lower()
    if which == ALL and not needle:
        rows = list(range(len(lines)))
    else:
        def keep(i: int) -> bool:
            found = problems[i] if i < len(problems) else ()
            if which == ERRORS and not any(p.severity == "error" for p in found):
                return False
            if which == PROBLEMS and not found:
                return False
            return not needle or needle in lines[i].lower()

        rows = [i for i in range(len(lines)) if keep(i)]
    # Raw rows are errors (not JSON yet): in every selection but a search that does not match them.
    rows += [-(j + 1) for j, u in enumerate(unparsed) if not needle or needle in u.raw.lower()]
    return rows


def clamp(start: int | None, total: int) -> int:
    """The page's first row: as asked (a jump puts its row at the top), or past the end the last page."""
    start = max(0, int(start or 0))
    return start if start < total else max(0, (total - 1) // PAGE_ROWS * PAGE_ROWS)


def position_of(row: int, selection: Sequence[int]) -> int | None:
    """Where the example at 1-based `row` is in the selection, or None when it is not in it."""
    examples = len(selection)
    while examples and selection[examples - 1] < 0:  # raw rows stand at the end
        examples -= 1
    at = bisect.bisect_left(selection, row - 1, 0, examples)
    return at if at < examples and selection[at] == row - 1 else None


def describe(start: int, shown: int, total: int, n_lines: int, which: str | None, search: str | None) -> str:
    """The line above the table: which rows of how many this page is."""
    if not total:
        return "No rows match." if (which not in (None, ALL) or (search or "").strip()) else ""
    where = f"Rows **{start + 1:,}–{start + shown:,}** of {total:,}"
    page = f" · page {start // PAGE_ROWS + 1:,} of {(total + PAGE_ROWS - 1) // PAGE_ROWS:,}" \
        if start % PAGE_ROWS == 0 else ""
    what = []
    if which not in (None, ALL):
        what.append(which.lower())
    if (search or "").strip():
        what.append(f"containing “{search.strip()}”")
    of = f" ({' '.join(what)}, of {n_lines:,} examples)" if what else ""
    return where + of + page


@dataclass
class Page:
    """What one drawn page showed: the line indexes, the raw rows, and a digest of their text, so a
    save can tell that the draft still holds those lines where the page found them."""

    lines: list[int]
    raw: list[int]
    digest: str

    @classmethod
    def of(cls, rows: Sequence[int], lines: Sequence[str], unparsed: Sequence[Unparsed]) -> Page:
        shown = [r for r in rows if r >= 0]
        raw = [-r - 1 for r in rows if r < 0]
        return cls(shown, raw, _digest(shown, raw, lines, unparsed))

    def as_state(self) -> dict[str, Any]:
        return {"lines": self.lines, "raw": self.raw, "digest": self.digest}

    @classmethod
    def from_state(cls, state: Any) -> Page | None:
        if isinstance(state, dict) and {"lines", "raw", "digest"} <= set(state):
            return cls(list(state["lines"]), list(state["raw"]), str(state["digest"]))
        return None

    def still_shows(self, lines: Sequence[str], unparsed: Sequence[Unparsed]) -> bool:
        if any(i >= len(lines) for i in self.lines) or any(j >= len(unparsed) for j in self.raw):
            return False
        return _digest(self.lines, self.raw, lines, unparsed) == self.digest


def _digest(shown: Sequence[int], raw: Sequence[int], lines: Sequence[str], unparsed: Sequence[Unparsed]) -> str:
    h = hashlib.blake2b(digest_size=12)
    for i in shown:
        h.update(f"{i}\n{lines[i]}\n".encode())
    for j in raw:
        h.update(f"raw {j}\n{unparsed[j].raw}\n".encode())
    return h.hexdigest()


def keyed(rows: Sequence[Sequence[Any]], n_lines: int, n_raw: int) -> list[int]:
    """The rows a table names by key (`#` or `raw N`), in range, as a selection: what a page drawn
    elsewhere showed, for a caller that did not keep the page's state."""
    out: set[int] = set()
    for row in rows:
        key = str(row[0]).strip() if row else ""
        if key.isdigit() and 0 < int(key) <= n_lines:
            out.add(int(key) - 1)
        elif key.startswith(RAW_KEY) and key[len(RAW_KEY):].isdigit() and 0 < int(key[len(RAW_KEY):]) <= n_raw:
            out.add(-int(key[len(RAW_KEY):]))
    return sorted(i for i in out if i >= 0) + sorted((i for i in out if i < 0), reverse=True)


CHANGED = ("The draft changed since this page was drawn (rows were replaced, deleted or reordered elsewhere), "
           "so this edit was not saved: the table now shows the draft as it is. Make the edit again.")


def apply_page(rows: Sequence[Sequence[Any]], page: Page, lines: Sequence[str], unparsed: Sequence[Unparsed],
               examples_of: Callable[[Sequence[str]], list[Any]], line_of: Callable[[Any], str],
               cells_of: Callable[[Any], list[str]]) -> tuple[list[str], list[Unparsed]]:
    """The stored lines and raw rows after saving an edited page.

    Each table row keyed `#` (its 1-based line) replaces that line; a shown line whose row is gone is
    deleted; a row without a key (added in the grid) goes after the keyed row above it. Lines not on
    the page, appended since included, are kept as they are. Raises InputError when the page no longer
    matches the draft (see Page)."""
    if not page.still_shows(lines, unparsed):
        raise InputError(CHANGED)
    shown = set(page.lines)
    base = dict(zip(page.lines, examples_of([lines[i] for i in page.lines]), strict=True))
    replaced: dict[int, list[str]] = {i: [] for i in page.lines}  # line -> what stands there now
    before_first: list[str] = []
    new_raw: list[Unparsed] = []
    kept_raw: dict[int, Unparsed] = {}
    anchor: int | None = None
    for row in rows:
        key = str(row[0]).strip() if row else ""
        if key.isdigit() and int(key) - 1 in shown:
            anchor = idx = int(key) - 1
            one = ["1", *list(row)[1:]]
            ex, raw = apply_table([one], [base[idx]], [], cells_of=cells_of)
            replaced[idx] += [line_of(e) for e in ex]
            new_raw += raw
        elif key.startswith(RAW_KEY) and key[len(RAW_KEY):].isdigit() and int(key[len(RAW_KEY):]) - 1 in page.raw:
            j = int(key[len(RAW_KEY):]) - 1
            one = [f"{RAW_KEY}1", *list(row)[1:]]
            ex, raw = apply_table([one], [], [unparsed[j]], cells_of=cells_of)
            target = replaced[anchor] if anchor is not None else before_first
            target += [line_of(e) for e in ex]
            if raw and raw[0] is unparsed[j]:
                kept_raw[j] = raw[0]
            else:
                new_raw += raw
        else:  # a row added in the grid (or a key this page did not show): new content only
            ex, raw = apply_table([["", *list(row)[1:]]], [], [], cells_of=cells_of)
            (replaced[anchor] if anchor is not None else before_first).extend(line_of(e) for e in ex)
            new_raw += raw
    out: list[str] = []
    first = min(page.lines) if page.lines else len(lines)
    for i, line in enumerate(lines):
        if i == first:
            out += before_first
        out += replaced.get(i, [line])
    if first >= len(lines):
        out += before_first
    shown_raw = set(page.raw)
    raws = [u if j not in shown_raw else kept_raw[j] for j, u in enumerate(unparsed)
            if j not in shown_raw or j in kept_raw]
    return out, raws + new_raw
