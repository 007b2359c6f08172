"""Dataset tab: load, review, edit, validate (tokens, epochs, cost), split, dedupe and export the draft.

Every change is written to the visitor's draft (pipeline.drafts) at once, so a refresh or a restart
loses nothing; the table is rebuilt from the draft on page load and whenever another tab bumps
`ctx.dataset_rev`. Bulk changes take an undo snapshot first.
"""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr

from components.context import AppContext
from components.dataset_view import histogram, model_choices, sample_choices, sample_path
from components.wiring import outputs, wire
from pipeline import dataset as ds
from pipeline import drafts, workspace
from pipeline.dataset import draft_ops as dops
from pipeline.dataset import editing as ed
from pipeline.dataset.draft_view import DraftCache, summary_markdown
from pipeline.errors import InputError

#: What every redraw may change (`draft_cache` is the session's DraftCache, created on first use).
SHOWN = ("table_df", "rendered", "summary_md", "hist_plot", "report_json", "status_md", "draft_cache")


def _exists(visitor: str | None) -> bool:
    try:
        workspace.visitor_dir(visitor or "")
        return True
    except InputError:
        return False


def _render(visitor: str | None, model: str, epochs: float | None, cache: DraftCache | None,
            status: str = "") -> dict:
    """Everything shown, from the saved draft; per-example work only for lines the cache has not seen.
    The table goes out as a list of rows: gradio took ~70 ms to convert a 2,000-row DataFrame."""
    cache = cache if cache is not None else DraftCache()
    lines = cache.lines(visitor) if _exists(visitor) else []  # type: ignore[arg-type]
    unparsed = dops.load_unparsed(visitor) if _exists(visitor) else []  # type: ignore[arg-type]
    report, entries = cache.report(lines, unparsed, model or ds.DEFAULT_MODEL, int(epochs or 0) or None)
    shown = min(len(lines), ed.TABLE_ROWS)  # rows past this are kept as they are when the table is saved
    rows = cache.rows(entries, unparsed, report, shown)
    cache.keep_only(lines)
    if shown < len(lines):
        status += f" Showing the first {shown:,} of {len(lines):,} rows; all are validated and exported."
    return {"table_df": rows,
            "rendered": [shown, len(unparsed)], "summary_md": summary_markdown(report),
            "hist_plot": histogram(report), "report_json": report.to_json(), "status_md": status,
            "draft_cache": cache}


def _stamp(visitor: str | None) -> tuple | None:
    return drafts.draft_stamp(visitor) if _exists(visitor) else None


@outputs(*SHOWN)
def show_draft(visitor: str | None, dataset_rev: int, model_dd: str, epochs_num: float | None,
               draft_cache: DraftCache | None = None) -> dict:
    # The status line is left as it is: this redraw also runs when the page's visitor id settles, and
    # a "Loaded 53 examples" from a click just before vanished after a second (seen in chromium).
    before = _stamp(visitor)
    shown = _render(visitor, model_dd, epochs_num, draft_cache)
    if _stamp(visitor) != before:
        # The draft was written while this redraw read it (a sample loaded right after page load, seen
        # in CI): what it read is stale, and arriving after the writer's own redraw it would blank the
        # table. The writer shows the new draft itself.
        return {name: gr.skip() for name in shown}
    return {**shown, "status_md": gr.skip()}


@outputs(*SHOWN)
def validate_dataset(visitor: str | None, model_dd: str, epochs_num: float | None,
                     draft_cache: DraftCache | None = None) -> dict:
    return _render(visitor, model_dd, epochs_num, draft_cache)


@outputs(*SHOWN)
def load_file(upload_file: str | None, append_cb: bool, columns_box: str, import_system_box: str, visitor: str,
              model_dd: str, epochs_num: float | None, draft_cache: DraftCache | None = None) -> dict:
    if not upload_file:
        raise InputError("Choose a file first (.jsonl, .json, .csv, .tsv or .parquet).")
    cols = [c.strip() for c in (columns_box or "").split(",") if c.strip()] or None
    read = ds.read_dataset(upload_file, system_prompt=import_system_box or None, columns=cols)
    status = dops.import_read(visitor, read, append_cb, Path(upload_file).name)
    return _render(visitor, model_dd, epochs_num, draft_cache, status)


@outputs(*SHOWN)
def load_sample(sample_dd: str, append_cb: bool, visitor: str, model_dd: str, epochs_num: float | None,
                draft_cache: DraftCache | None = None) -> dict:
    read = ds.read_dataset(sample_path(sample_dd))
    status = dops.import_read(visitor, read, append_cb, f"sample {sample_dd}")
    return _render(visitor, model_dd, epochs_num, draft_cache, status)


@outputs(*SHOWN)
def save_edits(table_df: list[list], rendered: list[int] | None, visitor: str, model_dd: str,
               epochs_num: float | None, draft_cache: DraftCache | None = None) -> dict:
    cache = draft_cache if draft_cache is not None else DraftCache()
    dops.save_table(visitor, table_df, rendered, cache)
    return _render(visitor, model_dd, epochs_num, cache, "Saved.")


@outputs(*SHOWN)
def add_row(visitor: str, model_dd: str, epochs_num: float | None, draft_cache: DraftCache | None = None) -> dict:
    workspace.visitor_dir(visitor or "")
    drafts.append_to_draft(visitor, [ed.EMPTY_EXAMPLE])
    return _render(visitor, model_dd, epochs_num, draft_cache, "Added an empty row at the end: fill in its cells.")


@outputs(*SHOWN)
def delete_rows(delete_box: str, visitor: str, model_dd: str, epochs_num: float | None,
                draft_cache: DraftCache | None = None) -> dict:
    def change(ex: list, raw: list) -> tuple[list, list]:
        drop, drop_raw = ed.parse_row_spec(delete_box or "", len(ex), len(raw))
        if not drop and not drop_raw:
            raise InputError("Name the rows to delete by their # (e.g. `3, 5-7, raw 1`).")
        return [e for i, e in enumerate(ex) if i not in drop], [u for j, u in enumerate(raw) if j not in drop_raw]

    dops.bulk_change(visitor, f"deleting rows {delete_box}", change)
    return _render(visitor, model_dd, epochs_num, draft_cache, f"Deleted rows {delete_box}. Undo restores them.")


@outputs(*SHOWN)
def apply_system_prompt(system_box: str, visitor: str, model_dd: str, epochs_num: float | None,
                        draft_cache: DraftCache | None = None) -> dict:
    dops.bulk_change(visitor, "setting the system prompt",
                     lambda ex, raw: (ds.set_system_prompt(ex, system_box or ""), raw))
    what = "Removed system messages" if not (system_box or "").strip() else "Set the system prompt of every row"
    return _render(visitor, model_dd, epochs_num, draft_cache, f"{what}. Undo restores the previous ones.")


@outputs(*SHOWN)
def dedupe_rows(visitor: str, model_dd: str, epochs_num: float | None, draft_cache: DraftCache | None = None) -> dict:
    before = len(drafts.draft_lines(visitor)) if _exists(visitor) else 0
    examples, _ = dops.bulk_change(visitor, "removing duplicates", lambda ex, raw: (ds.dedupe_examples(ex)[0], raw))
    return _render(visitor, model_dd, epochs_num, draft_cache,
                   f"Removed {before - len(examples)} exact duplicate(s). Undo restores them.")


@outputs(*SHOWN)
def clear_table(visitor: str, model_dd: str, epochs_num: float | None, draft_cache: DraftCache | None = None) -> dict:
    dops.bulk_change(visitor, "clearing the table", lambda ex, raw: ([], []))
    return _render(visitor, model_dd, epochs_num, draft_cache, "Cleared the table. **Undo** brings it back.")


@outputs(*SHOWN)
def undo_change(visitor: str, model_dd: str, epochs_num: float | None, draft_cache: DraftCache | None = None) -> dict:
    label = dops.undo(visitor) if _exists(visitor) else None
    return _render(visitor, model_dd, epochs_num, draft_cache, f"Undid {label}." if label else "Nothing to undo yet.")


@outputs("files", "status_md")
def split_dataset(visitor: str, fraction_sl: float, seed_num: float | None) -> dict:
    files, status = dops.split_draft(visitor, float(fraction_sl), int(seed_num or 0))
    return {"files": [str(f) for f in files], "status_md": status}


@outputs("files", "status_md")
def export_dataset(visitor: str) -> dict:
    files, status = dops.export_draft(visitor)
    return {"files": [str(f) for f in files], "status_md": status}


def build_dataset_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
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
    c["table_df"] = gr.Dataframe(headers=ed.HEADERS, type="array", interactive=True, wrap=True,
                                 static_columns=[0, 5], max_height=600, label="Examples (edit cells; one row "
                                 "per example; multi-turn rows: edit the json cell)",
                                 column_widths=["5%", "13%", "20%", "26%", "22%", "14%"],
                                 max_chars=500)
    c["rendered"] = gr.State(None)
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
        c["export_btn"] = gr.Button("Download JSONL + CSV")
    c["files"] = gr.File(label="Files", file_count="multiple", interactive=False, height=120)
    with gr.Accordion("Validation report (JSON)", open=False):
        c["report_json"] = gr.JSON()
    c["draft_cache"] = gr.State(DraftCache())
    c["visitor"], c["dataset_rev"] = ctx.visitor, ctx.dataset_rev

    # Triggers None: on page load and whenever the visitor id, the draft's revision, model or epochs change.
    wire(functools.partial(gr.on, None), show_draft, c, api_name="show_draft")
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
