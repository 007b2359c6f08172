"""What the Dataset tab draws from the saved draft, one page of rows at a time, and the handlers that
turn pages (first, previous, next, last, jump to a row, filter or search).

The summary, token counts, histogram and report describe the whole draft; the table holds one page
(pipeline.dataset.paging: 50,000 rows sent whole were ~40 MB and froze the browser's grid). The page
drawn is remembered in `rendered` so an edit lands on the stored lines it showed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import gradio as gr

from components.dataset_view import histogram
from components.wiring import outputs, wire
from pipeline import dataset as ds
from pipeline import drafts, workspace
from pipeline.dataset import draft_ops as dops
from pipeline.dataset import paging
from pipeline.dataset.draft_view import EMPTY_DRAFT, DraftCache, report_for_page, summary_markdown
from pipeline.errors import InputError

#: What every redraw may change (`draft_cache` is the session's DraftCache, created on first use).
SHOWN = ("table_df", "rendered", "page_md", "page_start", "summary_md", "hist_plot", "report_json", "status_md",
         "draft_cache", "drawn_stamp")
#: Past the last page: the last page (`paging.clamp`).
END = 1 << 62


def exists(visitor: str | None) -> bool:
    try:
        workspace.visitor_dir(visitor or "")
        return True
    except InputError:
        return False


def render(visitor: str | None, model: str, epochs: float | None, cache: DraftCache | None,
           status: str = "", *, start: int | None = 0, which: str | None = None, search: str | None = "",
           row: int | None = None) -> dict:
    """Everything shown, from the saved draft; per-example work only for lines the cache has not seen.
    `row`: put this 1-based row at the top of the page (when the selection has it). The table goes
    out as a list of rows: gradio took ~70 ms to convert a 2,000-row DataFrame."""
    cache = cache if cache is not None else DraftCache()
    stamp = _stamp(visitor)  # before reading: a write in between makes the next look redraw again
    lines = cache.lines(visitor) if exists(visitor) else []  # type: ignore[arg-type]
    unparsed = dops.load_unparsed(visitor) if exists(visitor) else []  # type: ignore[arg-type]
    if not lines and not unparsed:
        return {**empty_view(cache, status, which, search), "drawn_stamp": stamp}
    report, entries = cache.report(lines, unparsed, model or ds.DEFAULT_MODEL, int(epochs or 0) or None)
    selection = paging.select(lines, report.example_problems, unparsed, which, search)
    if row is not None:
        at = paging.position_of(row, selection)
        start = at if at is not None else start
    first = paging.clamp(start, len(selection))
    page = selection[first:first + paging.PAGE_ROWS]
    rows = cache.rows(entries, unparsed, report, page)
    cache.keep_only(lines)
    return {"table_df": rows, "rendered": paging.Page.of(page, lines, unparsed).as_state(),
            "page_md": paging.describe(first, len(page), len(selection), len(lines), which, search),
            "page_start": first, "summary_md": summary_markdown(report), "hist_plot": histogram(report),
            "report_json": report_for_page(report), "status_md": status, "draft_cache": cache, "drawn_stamp": stamp}


def empty_view(cache: DraftCache, status: str, which: str | None, search: str | None) -> dict:
    """An empty draft: nothing to validate or chart. The summary's greeting says where to start; no
    token counter or plotly figure is built (~0.9 s of the app's CPU on every new visitor's page)."""
    cache.keep_only([])
    return {"table_df": [], "rendered": paging.Page.of([], [], []).as_state(),
            "page_md": paging.describe(0, 0, 0, 0, which, search), "page_start": 0, "summary_md": EMPTY_DRAFT,
            "hist_plot": None, "report_json": None, "status_md": status, "draft_cache": cache}


def view(page_start: int | None, filter_dd: str | None, search_box: str | None) -> dict[str, Any]:
    """The page a handler redraws: the one the visitor is on."""
    return {"start": page_start or 0, "which": filter_dd, "search": search_box}


def _stamp(visitor: str | None) -> tuple | None:
    return drafts.draft_stamp(visitor) if exists(visitor) else None


#: A draft with more examples than this not yet in the session's cache is drawn in two steps: its
#: first page at once, then the validation of every example (~10 s at 50,000 on this machine).
QUICK_AFTER = 2000


def quick_page(visitor: str, cache: DraftCache, start: int | None) -> dict | None:
    """The page of rows before the draft is validated (cells only; the problems column says it is
    being checked), or None when the cache would not take long to validate it all."""
    lines = cache.lines(visitor)
    if cache.uncached(lines) <= QUICK_AFTER:
        return None
    first = paging.clamp(start, len(lines))
    page = list(range(first, min(len(lines), first + paging.PAGE_ROWS)))
    examples = cache.examples([lines[i] for i in page])
    rows = [[str(i + 1), *cache.cells(ex), "…"] for i, ex in zip(page, examples, strict=True)]
    note = (f"**{len(lines):,} examples** · checking every example, counting tokens and cost… (the rows below "
            "can be read meanwhile; their problems column fills in when this is done)")
    return {"table_df": rows, "rendered": paging.Page.of(page, lines, []).as_state(),
            "page_md": paging.describe(first, len(page), len(lines), len(lines), None, ""), "page_start": first,
            "summary_md": note, "draft_cache": cache}


def drawn(visitor: str | None, model: str, epochs: float | None, cache: DraftCache | None, status: str = "", *,
          start: int | None = 0, which: str | None = None, search: str | None = "") -> Iterator[dict]:
    """`render` in two updates when the draft is large and new to this session's cache: its first
    page of rows at once, then everything validated."""
    cache = cache if cache is not None else DraftCache()
    plain = which in (None, paging.ALL) and not (search or "").strip()
    if plain and exists(visitor) and not dops.load_unparsed(visitor):  # type: ignore[arg-type]
        quick = quick_page(visitor, cache, start)  # type: ignore[arg-type]
        if quick is not None:
            yield {**quick, "status_md": status}
    yield render(visitor, model, epochs, cache, status, start=start, which=which, search=search)


@outputs(*SHOWN)
def show_draft(visitor: str | None, dataset_rev: int, model_dd: str, epochs_num: float | None,
               page_start: int | None = 0, filter_dd: str | None = None, search_box: str | None = "",
               draft_cache: DraftCache | None = None) -> Iterator[dict]:
    # The status line is left as it is: this redraw also runs when the page's visitor id settles, and
    # a "Loaded 53 examples" from a click just before vanished after a second (seen in chromium).
    before = _stamp(visitor)
    for shown in drawn(visitor, model_dd, epochs_num, draft_cache, **view(page_start, filter_dd, search_box)):
        if _stamp(visitor) != before:
            # The draft was written while this redraw read it (a sample loaded right after page load,
            # seen in CI): what it read is stale, and arriving after the writer's own redraw it would
            # blank the table. The writer shows the new draft itself.
            yield {name: gr.skip() for name in SHOWN}
            return
        yield {**shown, "status_md": gr.skip()}


CHANGED_ELSEWHERE = ("The table was changed from another tab (a generation, the Start tab's demo, a hold-out, a Hub "
                     "load, a batch) since this tab last drew it: these are its rows now.")


@outputs(*SHOWN)
def show_draft_if_changed(visitor: str | None, drawn_stamp: tuple | None, dataset_rev: int, model_dd: str,
                          epochs_num: float | None, page_start: int | None = 0, filter_dd: str | None = None,
                          search_box: str | None = "", draft_cache: DraftCache | None = None) -> Iterator[dict]:
    """The tab is opened, or another tab says it changed the draft: redraw when the draft changed since
    it was drawn. A demo run changes the draft without redrawing the tab (that took CPU from the run's
    next step); a visitor who looks sees the rows as they are now."""
    if drawn_stamp is not None and _stamp(visitor) == tuple(drawn_stamp):
        yield {}
        return
    for shown in show_draft(visitor, dataset_rev, model_dd, epochs_num, page_start, filter_dd, search_box,
                            draft_cache):
        if drawn_stamp is not None and shown.get("page_md") != gr.skip():  # (not a stale read's skips)
            # The line above the table told of this tab's last action ("Loaded 2 examples from a.jsonl"),
            # and it read as if it described the rows another tab has since written (seen in chromium).
            shown = {**shown, "status_md": CHANGED_ELSEWHERE}
        yield shown


#: What a page turn changes: the summary, chart and report describe the whole draft and stay (sent
#: again, the browser redrew the chart: ~3 s per click under load, whatever the page's size).
PAGE_ONLY = ("table_df", "rendered", "page_md", "page_start", "draft_cache")


def _page_of(shown: dict) -> dict:
    return {name: shown[name] for name in PAGE_ONLY}


def _turn(visitor: str | None, model_dd: str, epochs_num: float | None, draft_cache: DraftCache | None,
          start: int, filter_dd: str | None, search_box: str | None) -> dict:
    return _page_of(render(visitor, model_dd, epochs_num, draft_cache, start=start, which=filter_dd,
                           search=search_box))


@outputs(*PAGE_ONLY)
def first_page(visitor: str | None, model_dd: str, epochs_num: float | None, filter_dd: str | None,
               search_box: str | None, draft_cache: DraftCache | None = None) -> dict:
    return _turn(visitor, model_dd, epochs_num, draft_cache, 0, filter_dd, search_box)


@outputs(*PAGE_ONLY)
def previous_page(visitor: str | None, model_dd: str, epochs_num: float | None, page_start: int | None,
                  filter_dd: str | None, search_box: str | None, draft_cache: DraftCache | None = None) -> dict:
    start = max(0, (page_start or 0) - paging.PAGE_ROWS)
    return _turn(visitor, model_dd, epochs_num, draft_cache, start, filter_dd, search_box)


@outputs(*PAGE_ONLY)
def next_page(visitor: str | None, model_dd: str, epochs_num: float | None, page_start: int | None,
              filter_dd: str | None, search_box: str | None, draft_cache: DraftCache | None = None) -> dict:
    start = (page_start or 0) + paging.PAGE_ROWS
    return _turn(visitor, model_dd, epochs_num, draft_cache, start, filter_dd, search_box)


@outputs(*PAGE_ONLY)
def last_page(visitor: str | None, model_dd: str, epochs_num: float | None, filter_dd: str | None,
              search_box: str | None, draft_cache: DraftCache | None = None) -> dict:
    return _turn(visitor, model_dd, epochs_num, draft_cache, END, filter_dd, search_box)


@outputs(*PAGE_ONLY, "status_md", "filter_dd", "search_box")
def jump_to_row(jump_box: str | float | None, visitor: str | None, model_dd: str, epochs_num: float | None,
                page_start: int | None, filter_dd: str | None, search_box: str | None,
                draft_cache: DraftCache | None = None) -> dict:
    """Put row `jump_box` at the top of the page; a row the filter or search hides clears them."""
    text = str(jump_box if jump_box is not None else "").strip().replace(",", "").removeprefix("#").strip()
    if not text.isdigit() or int(text) < 1:
        raise InputError("Type the # of the row to go to (the number in the table's first column), e.g. 37412.")
    row = int(text)
    shown = render(visitor, model_dd, epochs_num, draft_cache, start=page_start, which=filter_dd,
                   search=search_box, row=row)
    top = shown["table_df"][0][0] if shown["table_df"] else None
    if top == str(row):
        return {**_page_of(shown), "status_md": ""}
    shown = render(visitor, model_dd, epochs_num, draft_cache, which=paging.ALL, search="", row=row)
    n = len(shown["draft_cache"].lines(visitor)) if exists(visitor) else 0
    if row > n:
        raise InputError(f"There is no row {row:,}: the draft has {n:,} example(s).")
    note = "" if (filter_dd in (None, paging.ALL) and not (search_box or "").strip()) else \
        f"Row {row:,} is not among the rows selected, so the filter and search were cleared."
    return {**_page_of(shown), "filter_dd": paging.ALL, "search_box": "", "status_md": note}


@outputs(*PAGE_ONLY)
def filter_rows(visitor: str | None, model_dd: str, epochs_num: float | None, filter_dd: str | None,
                search_box: str | None, draft_cache: DraftCache | None = None) -> dict:
    """A new filter or search starts at its first row."""
    return _turn(visitor, model_dd, epochs_num, draft_cache, 0, filter_dd, search_box)


def build_page_picker(c: dict[str, Any]) -> None:
    """Above the table: which rows (filter, search) and a jump to a row."""
    with gr.Row(equal_height=True):
        c["filter_dd"] = gr.Dropdown(list(paging.FILTERS), value=paging.ALL, show_label=False, scale=2,
                                     container=False)
        c["search_box"] = gr.Textbox("", placeholder="Search the rows (Enter)", show_label=False, scale=3,
                                     container=False)
        # A textbox, not a Number: an empty Number shows "0" and hides its placeholder (seen in chromium).
        c["jump_box"] = gr.Textbox("", placeholder="Go to row # (Enter)", show_label=False, scale=1,
                                   container=False)
        c["jump_btn"] = gr.Button("Go", size="sm", scale=0, min_width=60)


def build_page_turner(c: dict[str, Any]) -> None:
    """Under the table: where this page is, and the buttons that turn it."""
    with gr.Row(equal_height=True):
        c["page_md"] = gr.Markdown(elem_id="dataset-page")
        # Latin-1 arrows: the media-control glyphs (⏮ ⏭) were empty boxes in Debian's chromium.
        for name, label in (("first_btn", "« First"), ("prev_btn", "‹ Previous"), ("next_btn", "Next ›"),
                            ("last_btn", "Last »")):
            c[name] = gr.Button(label, size="sm", scale=0, min_width=90)


def wire_pages(c: dict[str, Any]) -> None:
    """Each page turn redraws by itself (show_draft does not listen to the page's state)."""
    for name, turn in (("first_btn", first_page), ("prev_btn", previous_page), ("next_btn", next_page),
                       ("last_btn", last_page)):
        wire(c[name].click, turn, c)
    wire(functools.partial(gr.on, [c["jump_btn"].click, c["jump_box"].submit]), jump_to_row, c, api_name="jump_to_row")
    wire(functools.partial(gr.on, [c["filter_dd"].input, c["search_box"].submit]), filter_rows, c,
         api_name="filter_rows")
