"""What the card says about a visitor's draft, and putting loaded examples into the draft.

The draft's meta.json holds the generation runs (template, teacher, params, counts, cost); the
Evaluate tab saves benchmark results in the visitor's workspace. Both feed the dataset card.
"""

from __future__ import annotations

from typing import Any, Literal

from pipeline import atomic, drafts
from pipeline.dataset import draft_ops
from pipeline.errors import InputError
from pipeline.evaluate.runs import latest_results
from pipeline.hub.card import benchmark_rows
from pipeline.hub.stats import card_figures


def card_info_for(visitor_id: str, splits: dict[str, list[dict]], license: str = "apache-2.0") -> dict[str, Any]:
    meta = drafts.load_meta(visitor_id)
    latest = latest_results(visitor_id)
    return {"license": license, **card_figures(splits), "generation": meta.get("generation") or [],
            "benchmarks": benchmark_rows(latest), "benchmark_verdicts": (latest or {}).get("verdicts") or []}


def add_to_draft(visitor_id: str, examples: list[dict], mode: Literal["replace", "append"], source: dict) -> int:
    """Replace or extend the visitor's draft with loaded examples; returns the draft's new size.

    Replacing also clears the recorded generation runs (the card must not credit a teacher with
    data it did not write) and the old draft's unreadable lines; the Dataset tab's undo brings the old
    draft back with them, as after a file loaded there.
    """
    if mode == "append":
        count = drafts.append_to_draft(visitor_id, examples)
        drafts.update_meta(visitor_id, imports=[{**source, "mode": "append", "examples": len(examples)}])
        return count
    if mode != "replace":
        raise InputError("Choose whether the loaded examples replace the draft or are added to it.")
    draft_ops.snapshot(visitor_id, f"loading {source.get('hub') or 'a Hub dataset'}")
    draft_ops.save_all(visitor_id, examples, [])
    meta = {**drafts.load_meta(visitor_id), "generation": [],
            "imports": [{**source, "mode": "replace", "examples": len(examples)}]}
    path = drafts.meta_path(visitor_id)
    with atomic.locked(path):
        atomic.write_json(path, meta, indent=2)
    return len(examples)
