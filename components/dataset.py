"""Dataset tab: load, review, edit, validate (tokens, epochs, cost), split, dedupe and export the draft.

Every change is written to the visitor's draft (pipeline.drafts) at once, so a refresh or a restart
loses nothing; the table is rebuilt from the draft on page load and whenever another tab bumps
`ctx.dataset_rev`. Bulk changes take an undo snapshot first.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from components.context import AppContext
from components.dataset_render import (
    END,
    SHOWN,
    build_page_picker,
    build_page_turner,
    drawn,
    exists,
    render,
    show_draft,
    show_draft_if_changed,
    view,
    wire_pages,
)
from components.dataset_view import model_choices, sample_choices, sample_path
from components.wiring import outputs, wire
from pipeline import dataset as ds
from pipeline import drafts, workspace
from pipeline.dataset import draft_ops as dops
from pipeline.dataset import editing as ed
from pipeline.dataset import paging
from pipeline.dataset.draft_view import DraftCache
from pipeline.errors import InputError


@outputs(*SHOWN)
def validate_dataset(visitor: str | None, model_dd: str, epochs_num: float | None, page_start: int | None = 0,
                     filter_dd: str | None = None, search_box: str | None = "",
                     draft_cache: DraftCache | None = None) -> dict:
    return render(visitor, model_dd, epochs_num, draft_cache, **view(page_start, filter_dd, search_box))


@outputs(*SHOWN)
def load_file(upload_file: str | None, append_cb: bool, columns_box: str, import_system_box: str, visitor: str,
              model_dd: str, epochs_num: float | None, filter_dd: str | None = None, search_box: str | None = "",
              draft_cache: DraftCache | None = None) -> Iterator[dict]:
    if not upload_file:
        raise InputError("Choose a file first (.jsonl, .json, .csv, .tsv or .parquet).")
    cols = [c.strip() for c in (columns_box or "").split(",") if c.strip()] or None
    read = ds.read_dataset(upload_file, system_prompt=import_system_box or None, columns=cols)
    status = dops.import_read(visitor, read, append_cb, Path(upload_file).name)
    yield from drawn(visitor, model_dd, epochs_num, draft_cache, status, **view(0, filter_dd, search_box))


@outputs(*SHOWN)
def load_sample(sample_dd: str, append_cb: bool, visitor: str, model_dd: str, epochs_num: float | None,
                filter_dd: str | None = None, search_box: str | None = "",
                draft_cache: DraftCache | None = None) -> Iterator[dict]:
    read = ds.read_dataset(sample_path(sample_dd))
    status = dops.import_read(visitor, read, append_cb, f"sample {sample_dd}")
    yield from drawn(visitor, model_dd, epochs_num, draft_cache, status, **view(0, filter_dd, search_box))


@outputs(*SHOWN)
def save_edits(table_df: list[list], rendered: dict | list[int] | None, visitor: str, model_dd: str,
               epochs_num: float | None, page_start: int | None = 0, filter_dd: str | None = None,
               search_box: str | None = "", draft_cache: DraftCache | None = None) -> dict:
    """Save the page as edited: each row replaces the stored line its `#` names (pipeline.dataset.paging)."""
    cache = draft_cache if draft_cache is not None else DraftCache()
    at = view(page_start, filter_dd, search_box)
    try:
        dops.save_table(visitor, table_df, rendered, cache)
    except InputError as exc:
        if str(exc) != paging.CHANGED:
            raise
        return render(visitor, model_dd, epochs_num, cache, f"⚠ {exc}", **at)
    return render(visitor, model_dd, epochs_num, cache, "Saved.", **at)


@outputs(*SHOWN, "filter_dd", "search_box")
def add_row(visitor: str, model_dd: str, epochs_num: float | None, draft_cache: DraftCache | None = None) -> dict:
    workspace.visitor_dir(visitor or "")
    drafts.append_to_draft(visitor, [ed.EMPTY_EXAMPLE])
    shown = render(visitor, model_dd, epochs_num, draft_cache, "Added an empty row at the end: fill in its cells.",
                   start=END, which=paging.ALL, search="")
    return {**shown, "filter_dd": paging.ALL, "search_box": ""}


@outputs(*SHOWN)
def delete_rows(delete_box: str, visitor: str, model_dd: str, epochs_num: float | None, page_start: int | None = 0,
                filter_dd: str | None = None, search_box: str | None = "",
                draft_cache: DraftCache | None = None) -> dict:
    def change(ex: list, raw: list) -> tuple[list, list]:
        drop, drop_raw = ed.parse_row_spec(delete_box or "", len(ex), len(raw))
        if not drop and not drop_raw:
            raise InputError("Name the rows to delete by their # (e.g. `3, 5-7, raw 1`).")
        return [e for i, e in enumerate(ex) if i not in drop], [u for j, u in enumerate(raw) if j not in drop_raw]

    dops.bulk_change(visitor, f"deleting rows {delete_box}", change)
    return render(visitor, model_dd, epochs_num, draft_cache, f"Deleted rows {delete_box}. Undo restores them.",
                  **view(page_start, filter_dd, search_box))


@outputs(*SHOWN)
def apply_system_prompt(system_box: str, visitor: str, model_dd: str, epochs_num: float | None,
                        page_start: int | None = 0, filter_dd: str | None = None, search_box: str | None = "",
                        draft_cache: DraftCache | None = None) -> dict:
    dops.bulk_change(visitor, "setting the system prompt",
                     lambda ex, raw: (ds.set_system_prompt(ex, system_box or ""), raw))
    what = "Removed system messages" if not (system_box or "").strip() else "Set the system prompt of every row"
    return render(visitor, model_dd, epochs_num, draft_cache, f"{what}. Undo restores the previous ones.",
                  **view(page_start, filter_dd, search_box))


@outputs(*SHOWN)
def dedupe_rows(visitor: str, model_dd: str, epochs_num: float | None, page_start: int | None = 0,
                filter_dd: str | None = None, search_box: str | None = "",
                draft_cache: DraftCache | None = None) -> dict:
    workspace.visitor_dir(visitor or "")
    removed = dops.dedupe_draft(visitor)
    return render(visitor, model_dd, epochs_num, draft_cache,
                  f"Removed {removed:,} exact duplicate(s). Undo restores them.", **view(page_start, filter_dd, search_box))


@outputs(*SHOWN)
def clear_table(visitor: str, model_dd: str, epochs_num: float | None, draft_cache: DraftCache | None = None) -> dict:
    dops.bulk_change(visitor, "clearing the table", lambda ex, raw: ([], []))
    return render(visitor, model_dd, epochs_num, draft_cache, "Cleared the table. **Undo** brings it back.")


@outputs(*SHOWN)
def undo_change(visitor: str, model_dd: str, epochs_num: float | None, page_start: int | None = 0,
                filter_dd: str | None = None, search_box: str | None = "",
                draft_cache: DraftCache | None = None) -> dict:
    label = dops.undo(visitor) if exists(visitor) else None
    return render(visitor, model_dd, epochs_num, draft_cache, f"Undid {label}." if label else "Nothing to undo yet.",
                  **view(page_start, filter_dd, search_box))


@outputs("files", "status_md")
def split_dataset(visitor: str, fraction_sl: float, seed_num: float | None) -> dict:
    files, status = dops.split_draft(visitor, float(fraction_sl), int(seed_num or 0))
    return {"files": [str(f) for f in files], "status_md": status}


@outputs("files", "status_md")
def export_dataset(visitor: str) -> dict:
    files, status = dops.export_draft(visitor)
    return {"files": [str(f) for f in files], "status_md": status}


def build_dataset_tab(ctx: AppContext, tab: gr.Tab | None = None) -> dict[str, gr.components.Component]:
    c: dict[str, gr.components.Component] = {}
    with gr.Row():
        c["upload_file"] = gr.File(label="Upload a dataset (.jsonl .json .csv .tsv .parquet)", type="filepath", elem_id="dataset-upload",
                                   file_types=[".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt"], scale=2)
        with gr.Column(scale=2):
            c["sample_dd"] = gr.Dropdown(sample_choices(), label="…or a sample dataset", value=None)
            c["load_sample_btn"] = gr.Button("Load sample")
            c["append_cb"] = gr.Checkbox(False, label="Add to the table instead of replacing it")
        with gr.Column(scale=2):
            c["model_dd"] = gr.Dropdown(model_choices(), value=ds.DEFAULT_MODEL, allow_custom_value=True,
                                      label="Base model (for tokens and cost)")
            c["epochs_num"] = gr.Number(0, label="Epochs (0 = what OpenAI would pick)", precision=0, minimum=0)
            c["validate_btn"] = gr.Button("Validate", variant="primary")
    with gr.Accordion("Import options", open=False):
        c["columns_box"] = gr.Textbox(label="CSV/Parquet columns: user,assistant[,system] (blank = detect)")
        c["import_system_box"] = gr.Textbox(label="System prompt for converted prompt/completion or CSV rows")
    c["status_md"] = gr.Markdown()
    with gr.Row():
        c["summary_md"] = gr.Markdown()
        c["hist_plot"] = gr.Plot(show_label=False)
    build_page_picker(c)
    c["table_df"] = gr.Dataframe(headers=ed.HEADERS, type="array", interactive=True, wrap=True,
                                 static_columns=[0, 5], max_height=600, label="Examples (edit cells; one row "
                                 "per example; multi-turn rows: edit the json cell)",
                                 column_widths=["5%", "13%", "20%", "26%", "22%", "14%"],
                                 max_chars=500)
    build_page_turner(c)
    c["rendered"], c["page_start"] = gr.State(None), gr.State(0)
    with gr.Row():
        c["add_row_btn"] = gr.Button("Add row", size="sm")
        c["delete_box"] = gr.Textbox(placeholder="rows to delete, e.g. 3, 5-7, raw 1", show_label=False, scale=2)
        c["delete_btn"] = gr.Button("Delete rows", size="sm")
        c["dedupe_btn"] = gr.Button("Remove duplicates", size="sm")
        c["clear_btn"] = gr.Button("Clear table", size="sm", variant="stop")
        c["undo_btn"] = gr.Button("Undo last bulk change", size="sm")
    with gr.Row():
        c["system_box"] = gr.Textbox(label="System prompt for every row (blank removes them)", scale=4)
        c["system_btn"] = gr.Button("Set for all rows", scale=1)
    with gr.Row():
        c["fraction_sl"] = gr.Slider(0.05, 0.5, value=0.1, step=0.05, label="Validation fraction")
        c["seed_num"] = gr.Number(0, label="Split seed", precision=0)
        c["split_btn"] = gr.Button("Split train / validation")
        c["export_btn"] = gr.Button("Download JSONL, CSV, Parquet")
    c["files"] = gr.File(label="Files", file_count="multiple", interactive=False, height=120)
    with gr.Accordion("Validation report (JSON)", open=False):
        c["report_json"] = gr.JSON()
    c["draft_cache"], c["drawn_stamp"] = gr.State(DraftCache()), gr.State(None)
    c["visitor"], c["dataset_rev"] = ctx.visitor, ctx.dataset_rev

    # Once the page's visitor id is known, and whenever the draft's revision, model or epochs change
    # (not on a page turn: its handler redraws itself).
    ctx.after_start(show_draft, c, api_visibility="private")
    redraw = [c[n].change for n in ("model_dd", "epochs_num")]
    wire(functools.partial(gr.on, redraw), show_draft, c, api_name="show_draft", trigger_mode="always_last")
    # Another tab bumps the revision when it has changed the draft (a generation, the demo, a hold-out,
    # a Hub load, a batch): redrawn, with a status line that says so, not the tab's own last action's.
    wire(c["dataset_rev"].change, show_draft_if_changed, c, api_visibility="private", trigger_mode="always_last")
    if tab is not None:  # the Start tab's demo changes the draft mid-run without redrawing: see it now
        wire(tab.select, show_draft_if_changed, c, api_visibility="private")
    wire_pages(c)
    wire(c["validate_btn"].click, validate_dataset, c)
    wire(c["upload_file"].upload, load_file, c)
    wire(c["load_sample_btn"].click, load_sample, c)
    wire(c["table_df"].input, save_edits, c)
    wire(c["add_row_btn"].click, add_row, c)
    wire(c["delete_btn"].click, delete_rows, c)
    wire(c["system_btn"].click, apply_system_prompt, c, api_name="set_system_prompt")
    wire(c["dedupe_btn"].click, dedupe_rows, c, api_name="dedupe")
    wire(c["clear_btn"].click, clear_table, c)
    wire(c["undo_btn"].click, undo_change, c, api_name="undo")
    wire(c["split_btn"].click, split_dataset, c)
    wire(c["export_btn"].click, export_dataset, c)
    return c
