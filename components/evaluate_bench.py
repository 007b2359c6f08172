"""Evaluate tab, the benchmark side: pick one (sample, upload or yours), make one from your dataset
(hold out whole groups, or the teacher writes new questions), review and edit it, check for leakage.

Handlers follow components/wiring.py: parameter names are component names, returns {name: value}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from components.wiring import outputs
from pipeline import drafts
from pipeline.endpoints import SessionSettings, make_client, role
from pipeline.errors import InputError
from pipeline.evaluate import find_leaks, load_benchmark
from pipeline.evaluate.tables import review_frame
from pipeline.evaluate.yours import (
    PREFIX,
    hold_out_from_draft,
    list_made,
    made_path,
    read_rows,
    save_review,
    save_written,
)

BENCH_DIR = Path(__file__).resolve().parent.parent / "data" / "benchmarks"
UPLOADED = "Uploaded file"


def samples() -> list[str]:
    return sorted(p.name for p in BENCH_DIR.glob("*.jsonl"))


def bench_choices(visitor: str | None) -> list[str]:
    return list_made(visitor) + samples() + [UPLOADED]


def bench_path(bench_dd: str | None, upload_file: str | None, visitor: str | None) -> Path:
    if bench_dd == UPLOADED:
        if not upload_file:
            raise InputError("Upload a benchmark JSONL first, or pick a benchmark from the list.")
        return Path(upload_file)
    if bench_dd and bench_dd.startswith(PREFIX) and visitor:
        return made_path(visitor, bench_dd)
    if bench_dd not in samples():  # a name from the list, never a path
        raise InputError("Pick a benchmark from the list, or upload one.")
    return BENCH_DIR / bench_dd


def leakage_text(bench_dd: str | None, upload_file: str | None, visitor: str | None) -> str:
    items = load_benchmark(bench_path(bench_dd, upload_file, visitor))
    draft = drafts.load_draft(visitor) if visitor else []
    if not draft:
        return "Leakage check: your dataset is empty, nothing to compare with."
    leaks = find_leaks(items, draft)
    if not leaks:
        return (f"Leakage check: none of the {len(items)} questions teaches the same thing as one of your "
                f"{len(draft)} examples (no near-duplicate question, no shared answer).")
    lines = [f"⚠️ **{len(leaks)} of {len(items)} benchmark questions teach the same thing as training examples** "
             "(a near-duplicate question or the same answer); the fine-tuned model's score will look better than "
             "it is. Remove them from the dataset or the benchmark, or make a benchmark by holding out below."]
    lines += [f"- Q{x['index'] + 1} ({x['reason']}, {x['similarity']:.0f}%): “{x['question']}” ≈ “{x['training']}”"
              for x in leaks[:10]]
    return "\n".join(lines)


def _review(bench_dd: str | None, visitor: str | None) -> dict[str, Any]:
    """The review table for one of yours (editable), hidden for samples and uploads."""
    if bench_dd and bench_dd.startswith(PREFIX) and visitor:
        return {"review_df": gr.Dataframe(review_frame(read_rows(made_path(visitor, bench_dd))), visible=True),
                "save_review_btn": gr.Button(visible=True)}
    return {"review_df": gr.Dataframe(visible=False), "save_review_btn": gr.Button(visible=False)}


@outputs("bench_dd")
def list_benchmarks(visitor: str | None, bench_dd: str | None) -> dict[str, Any]:
    """On page load: the visitor's own benchmarks (made in an earlier visit) join the list. The pick is
    left alone when it is listed: this answer can come after an upload made the moment the page opened
    (a loaded server), and setting the pick it read at load put the list back on a sample, which the
    run then scored (seen in chromium)."""
    choices = bench_choices(visitor)
    if bench_dd in choices:
        return {"bench_dd": gr.update(choices=choices)}
    return {"bench_dd": gr.update(choices=choices, value=choices[0])}


@outputs("leak_md", "review_df", "save_review_btn")
def pick_benchmark(bench_dd: str | None, upload_file: str | None, visitor: str | None) -> dict[str, Any]:
    return {"leak_md": leakage_text(bench_dd, upload_file, visitor), **_review(bench_dd, visitor)}


@outputs("bench_dd")
def follow_upload(upload_file: str | None) -> dict[str, Any]:
    """An upload is what the visitor wants scored: the list says so (the run reads the list)."""
    return {"bench_dd": gr.Dropdown(value=UPLOADED)} if upload_file else {}


@outputs("bench_dd")
def after_clear(bench_dd: str | None, visitor: str | None) -> dict[str, Any]:
    """Removing the upload leaves the list on a benchmark, never on an empty "Uploaded file"."""
    first = (list_made(visitor) + samples() or [None])[0]
    return {"bench_dd": gr.Dropdown(value=first)} if bench_dd == UPLOADED and first else {}


def _made(visitor: str | None, choice: str, note: str) -> dict[str, Any]:
    return {"bench_dd": gr.Dropdown(choices=bench_choices(visitor), value=choice), "make_md": note,
            "leak_md": leakage_text(choice, None, visitor), **_review(choice, visitor)}


@outputs("bench_dd", "make_md", "leak_md", "review_df", "save_review_btn", "dataset_rev")
def hold_out(visitor: str | None, holdout_nb: float | None, scoring_dd: str, dataset_rev: int | None) -> dict[str, Any]:
    if not visitor:
        raise InputError("This browser session has no id yet; reload the page.")
    choice, made = hold_out_from_draft(visitor, int(holdout_nb or 0), scoring_dd or "auto")
    s = made.split
    kinds = ", ".join(f"{n} {k}" for k, n in made.scoring_counts.items())
    note = (f"Held out **{len(made.items)} examples** ({s.groups_held_out} of {s.groups_total} groups of the same "
            f"lesson) into `{choice.removeprefix(PREFIX)}`; your dataset now has {len(made.rest)} examples to "
            f"train on (the Dataset tab's **Undo last bulk change** puts them back). Scoring: {kinds}. "
            "Review the expected answers below before you run.")
    return {**_made(visitor, choice, note), "dataset_rev": (dataset_rev or 0) + 1}


@outputs("bench_dd", "make_md", "leak_md", "review_df", "save_review_btn")
def teacher_writes(settings: SessionSettings, visitor: str | None, write_n_nb: float | None) -> dict[str, Any]:
    from pipeline.evaluate.write import write_benchmark

    if not visitor:
        raise InputError("This browser session has no id yet; reload the page.")
    examples = drafts.load_draft(visitor)
    teacher = role(settings, "teacher")
    written = write_benchmark(examples, int(write_n_nb or 0), make_client(settings, teacher.endpoint, async_=True),
                              teacher.model)
    if not written.items:
        raise InputError(" ".join(written.notes) or "The teacher wrote no usable questions; try again.")
    choice = save_written(visitor, written.items)
    note = (f"The teacher (`{teacher.model}`) wrote **{len(written.items)} new question{'s' * (len(written.items) != 1)}** into "
            f"`{choice.removeprefix(PREFIX)}`; {written.dropped_near_duplicates} near-duplicates of training "
            f"questions were dropped. {' '.join(written.notes)} Review the expected answers below before you run.")
    return _made(visitor, choice, note)


@outputs("make_md", "leak_md", "review_df", "save_review_btn")
def save_edits(visitor: str | None, bench_dd: str | None, review_df: Any) -> dict[str, Any]:
    if not (visitor and bench_dd and bench_dd.startswith(PREFIX)):
        raise InputError("Only benchmarks you made can be edited here; pick one of yours.")
    rows = review_df.to_dict("records") if hasattr(review_df, "to_dict") else []
    kept, dropped = save_review(visitor, bench_dd, rows)
    gone = f", {dropped} dropped" if dropped else ""
    return {"make_md": f"Saved your edits: {kept} questions{gone}.", "leak_md": leakage_text(bench_dd, None, visitor),
            **_review(bench_dd, visitor)}
