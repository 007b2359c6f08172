"""Dataset tab: load, review, edit, validate (tokens, epochs, cost), split, dedupe and export the draft.

Every change is written to the visitor's draft (pipeline.drafts) at once, so a refresh or a restart
loses nothing; the table is rebuilt from the draft on page load and whenever another tab bumps
`ctx.dataset_rev`. Bulk changes take an undo snapshot first.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from components.context import AppContext
from components.dataset_view import histogram, model_choices, sample_choices, sample_path
from components.errors import shown_errors
from components.wiring import keyed
from pipeline import dataset as ds
from pipeline import drafts, workspace
from pipeline.dataset import draft_ops as dops
from pipeline.dataset import editing as ed
from pipeline.dataset.draft_view import summary_markdown, validate_draft
from pipeline.errors import InputError


def _exists(visitor: str | None) -> bool:
    try:
        workspace.visitor_dir(visitor or "")
        return True
    except InputError:
        return False


def _render(visitor: str | None, model: str, epochs: float | None, status: str = "") -> dict:
    """Everything shown, rebuilt from the saved draft."""
    examples = drafts.load_draft(visitor) if _exists(visitor) else []
    unparsed = dops.load_unparsed(visitor) if _exists(visitor) else []
    report = validate_draft(examples, unparsed, model or ds.DEFAULT_MODEL, int(epochs or 0) or None)
    shown = min(len(examples), ed.TABLE_ROWS)  # rows past this are kept as they are when the table is saved
    rows = ed.build_rows(examples[:shown], unparsed, report.example_problems[:shown])
    if shown < len(examples):
        status += f" Showing the first {shown:,} of {len(examples):,} rows; all are validated and exported."
    return {"table_df": pd.DataFrame(rows, columns=ed.HEADERS), "rendered": [shown, len(unparsed)],
            "summary_md": summary_markdown(report), "hist_plot": histogram(report),
            "report_json": report.to_json(), "status_md": status}


def _stamp(visitor: str | None) -> tuple | None:
    return drafts.draft_stamp(visitor) if _exists(visitor) else None


@shown_errors
def show_draft(visitor: str | None, rev: int, model: str, epochs: float | None) -> dict:
    # The status line is left as it is: this redraw also runs when the page's visitor id settles, and
    # a "Loaded 53 examples" from a click just before vanished after a second (seen in chromium).
    before = _stamp(visitor)
    shown = _render(visitor, model, epochs)
    if _stamp(visitor) != before:
        # The draft was written while this redraw read it (a sample loaded right after page load, seen
        # in CI): what it read is stale, and arriving after the writer's own redraw it would blank the
        # table. The writer shows the new draft itself.
        return {name: gr.skip() for name in shown}
    return {**shown, "status_md": gr.skip()}


@shown_errors
def validate_dataset(visitor: str | None, model: str, epochs: float | None) -> dict:
    return _render(visitor, model, epochs)


@shown_errors
def load_file(path: str | None, append: bool, columns: str, system: str, visitor: str, model: str,
              epochs: float | None) -> dict:
    if not path:
        raise InputError("Choose a file first (.jsonl, .json, .csv, .tsv or .parquet).")
    cols = [c.strip() for c in (columns or "").split(",") if c.strip()] or None
    read = ds.read_dataset(path, system_prompt=system or None, columns=cols)
    return _render(visitor, model, epochs, dops.import_read(visitor, read, append, Path(path).name))


@shown_errors
def load_sample(name: str, append: bool, visitor: str, model: str, epochs: float | None) -> dict:
    read = ds.read_dataset(sample_path(name))
    return _render(visitor, model, epochs, dops.import_read(visitor, read, append, f"sample {name}"))


@shown_errors
def save_edits(table: list[list], rendered: list[int] | None, visitor: str, model: str, epochs: float | None) -> dict:
    dops.save_table(visitor, table, rendered)
    return _render(visitor, model, epochs, "Saved.")


@shown_errors
def add_row(visitor: str, model: str, epochs: float | None) -> dict:
    workspace.visitor_dir(visitor or "")
    drafts.append_to_draft(visitor, [ed.EMPTY_EXAMPLE])
    return _render(visitor, model, epochs, "Added an empty row at the end: fill in its cells.")


@shown_errors
def delete_rows(spec: str, visitor: str, model: str, epochs: float | None) -> dict:
    def change(ex: list, raw: list) -> tuple[list, list]:
        drop, drop_raw = ed.parse_row_spec(spec or "", len(ex), len(raw))
        if not drop and not drop_raw:
            raise InputError("Name the rows to delete by their # (e.g. `3, 5-7, raw 1`).")
        return [e for i, e in enumerate(ex) if i not in drop], [u for j, u in enumerate(raw) if j not in drop_raw]

    dops.bulk_change(visitor, f"deleting rows {spec}", change)
    return _render(visitor, model, epochs, f"Deleted rows {spec}. Undo restores them.")


@shown_errors
def apply_system_prompt(prompt: str, visitor: str, model: str, epochs: float | None) -> dict:
    dops.bulk_change(visitor, "setting the system prompt", lambda ex, raw: (ds.set_system_prompt(ex, prompt or ""), raw))
    what = "Removed system messages" if not (prompt or "").strip() else "Set the system prompt of every row"
    return _render(visitor, model, epochs, f"{what}. Undo restores the previous ones.")


@shown_errors
def dedupe_rows(visitor: str, model: str, epochs: float | None) -> dict:
    before = len(drafts.load_draft(visitor)) if _exists(visitor) else 0
    examples, _ = dops.bulk_change(visitor, "removing duplicates", lambda ex, raw: (ds.dedupe_examples(ex)[0], raw))
    return _render(visitor, model, epochs, f"Removed {before - len(examples)} exact duplicate(s). Undo restores them.")


@shown_errors
def clear_table(visitor: str, model: str, epochs: float | None) -> dict:
    dops.bulk_change(visitor, "clearing the table", lambda ex, raw: ([], []))
    return _render(visitor, model, epochs, "Cleared the table. **Undo** brings it back.")


@shown_errors
def undo_change(visitor: str, model: str, epochs: float | None) -> dict:
    label = dops.undo(visitor) if _exists(visitor) else None
    return _render(visitor, model, epochs, f"Undid {label}." if label else "Nothing to undo yet.")


@shown_errors
def split_dataset(visitor: str, fraction: float, seed: float | None) -> dict:
    files, status = dops.split_draft(visitor, float(fraction), int(seed or 0))
    return {"files": [str(f) for f in files], "status_md": status}


@shown_errors
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
    shown = [c[k] for k in ("table_df", "rendered", "summary_md", "hist_plot", "report_json", "status_md")]
    common = [ctx.visitor, c["model_dd"], c["epochs_num"]]

    def on(trigger, fn, inputs, api_name=None, outputs=shown):
        trigger(keyed(fn, c), inputs=inputs, outputs=outputs, api_name=api_name)

    gr.on(None, keyed(show_draft, c), inputs=[ctx.visitor, ctx.dataset_rev, c["model_dd"], c["epochs_num"]],
          outputs=shown, api_name="show_draft")
    on(c["validate_btn"].click, validate_dataset, common, "validate_dataset")
    on(c["upload_file"].upload, load_file,
       [c["upload_file"], c["append_cb"], c["columns_box"], c["import_system_box"], *common], "load_file")
    on(c["load_sample_btn"].click, load_sample, [c["sample_dd"], c["append_cb"], *common], "load_sample")
    on(c["table_df"].input, save_edits, [c["table_df"], c["rendered"], *common], "save_edits")
    on(c["add_row_btn"].click, add_row, common)
    on(c["delete_btn"].click, delete_rows, [c["delete_box"], *common], "delete_rows")
    on(c["system_btn"].click, apply_system_prompt, [c["system_box"], *common], "set_system_prompt")
    on(c["dedupe_btn"].click, dedupe_rows, common, "dedupe")
    on(c["clear_btn"].click, clear_table, common)
    on(c["undo_btn"].click, undo_change, common, "undo")
    files_out = [c["files"], c["status_md"]]
    on(c["split_btn"].click, split_dataset, [ctx.visitor, c["fraction_sl"], c["seed_num"]], outputs=files_out)
    on(c["export_btn"].click, export_dataset, [ctx.visitor], outputs=files_out)
    return c
