"""Helpers of the Generate tab: template -> form, form -> run config, a run in a thread, display.

The run itself is `pipeline.generate.run_generation`, started in a worker thread so the tab's
generator handler can yield progress while it goes; Stop sets the run's threading.Event, which the
run polls every 50 ms. The handle lives in the visitor's gr.State, never in a module global.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from pipeline import drafts, workspace
from pipeline.background import Finished, iterate_in_thread
from pipeline.endpoints import SessionSettings, role
from pipeline.errors import InputError
from pipeline.generate import (
    GenerationConfig,
    RetryPolicy,
    RunStatus,
    Template,
    load_template,
    run_generation,
)
from pipeline.generate.store import read_examples
from pipeline.model_lists import chat_models, list_models
from pipeline.models import prices

MAX_VARS = 6  # variable boxes on the form; a template's further variables keep their defaults
ROLE_DEFAULT = "(teacher role)"
FAILURE_COLUMNS = ["kind", "reason", "raw"]



def template_form(name: str) -> dict[str, Any]:
    """Updates that fit the form to a template: its description, variable boxes, source, check."""
    t = load_template(name)
    out: dict[str, Any] = {"template_md": f"**{t.title}** — {t.description}"}
    names = list(t.variables)[:MAX_VARS]
    for i in range(MAX_VARS):
        if i < len(names):
            var = t.variables[names[i]]
            out[f"var_box_{i}"] = gr.update(visible=True, label=var.label, value=var.default,
                                            lines=4 if var.multiline else 1, info=f"{{{var.name}}}")
        else:
            out[f"var_box_{i}"] = gr.update(visible=False, value="")
    out["source_file"] = gr.update(visible=t.source)
    out["check_cb"] = gr.update(visible=t.checkable, value=False)
    return out


def form_variables(t: Template, values: tuple[str, ...]) -> dict[str, str]:
    return {name: str(value) for name, value in zip(list(t.variables)[:MAX_VARS], values, strict=False)}


def run_budget(typed: float | None, settings: Any, model: str) -> float | None:
    """The typed budget; else the Settings tab's default cap, when the model has a price to cap with."""
    if typed:
        return float(typed)
    default = getattr(settings, "budget_usd", None)
    return float(default) if default and prices(model) is not None else None


def format_prompt(messages: list[dict]) -> str:
    return "\n\n".join(f"### {m['role']}\n{m['content']}" for m in messages)


def run_path(visitor: str, template: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return workspace.visitor_dir(visitor, "generate") / f"{template}-{stamp}.jsonl"


def run_config(template: str, values: tuple, endpoint: str, model: str, n: float, concurrency: float,
            temperature: float, budget: float | None, seed: float, check: bool, source_file: Any,
            visitor: str, settings: SessionSettings, out: Path | None = None) -> GenerationConfig:
    """The run config from the form (no client yet: a preview must not start the local backend)."""
    t = load_template(template)
    draft = drafts.load_draft(visitor)
    sources = read_examples(Path(source_file)) if source_file else (draft if t.source else None)
    if t.source and not sources:
        raise InputError("Paraphrase rewrites existing examples: add some to the Dataset tab or upload a file.")
    choice = role(settings, "teacher")
    name = choice.endpoint if endpoint in ("", ROLE_DEFAULT, None) else endpoint
    model = (model or "").strip() or (choice.model if name == choice.endpoint else "")
    if not model:
        raise InputError("Type the teacher model id (the endpoint has no default).")
    return GenerationConfig(
        template=t, n=int(n), out=out or run_path(visitor, t.name), model=model,
        variables=form_variables(t, values), concurrency=int(concurrency), temperature=float(temperature),
        budget_usd=run_budget(budget, settings, model), seed=int(seed or 0), check=bool(check),
        sources=sources, avoid=None if t.source else draft, endpoint=name, retry=RetryPolicy(timeout=300.0))



class Throttle:
    """At most one signal per `every_s` seconds for changes that keep coming; `flush` says whether one
    is still owed at the end (the Dataset tab redraws on each signal, and a redraw is not free)."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s, self.clock = every_s, clock
        self.last: float | None = None
        self.owed = False

    def pending(self) -> None:
        self.owed = True

    def due(self) -> bool:
        now = self.clock()
        if not self.owed or (self.last is not None and now - self.last < self.every_s):
            return False
        self.last, self.owed = now, False
        return True

    def flush(self) -> bool:
        owed, self.owed = self.owed, False
        return owed


@dataclass
class RunHandle:
    """One Start press: the event the Stop button (or the page going away) sets to end the run."""

    cancel: threading.Event = field(default_factory=threading.Event)


def run_in_thread(handle: RunHandle, config: GenerationConfig, client: Any) -> Iterator[RunStatus | Finished]:
    """The run's newest progress snapshot whenever there is news, then Finished (final status or error)."""
    def work(report: Callable[[RunStatus], None]) -> RunStatus:
        return run_generation(config, client, on_progress=report, cancel=handle.cancel)

    for item in iterate_in_thread(work, poll_s=0.5, name="generate-run"):
        yield item if isinstance(item, Finished) else item[-1]  # snapshots are cumulative: the newest says all


def progress_html(percent: float) -> str:
    """A read-only progress bar (share of the examples asked for that are written)."""
    pct = max(0.0, min(100.0, float(percent)))
    return (f'<progress max="100" value="{pct:.1f}" style="width:100%;height:14px" '
            f'aria-label="Progress"></progress><div>{pct:.0f}% of the examples asked for</div>')


def status_markdown(s: RunStatus) -> str:
    head = {"running": "Running", "done": "Done", "cancelled": "Stopped", "budget": "Stopped at the budget",
            "failed": "Stopped"}.get(s.state, s.state)
    cost = f"${s.cost_usd:.4f}" if s.cost_known else "cost unknown (model not in the pricing table)"
    lines = [f"**{head}** — {s.written}/{s.requested} examples ({s.new} new this run)",
             f"Unparsed replies: {s.failed_parse} · duplicates dropped: {s.duplicates_dropped} · "
             f"answer check dropped: {s.check_dropped} · failed calls: {s.failed_calls}",
             f"Retries: {s.retries} (429s: {s.rate_limited}) · in flight: {s.in_flight} · concurrency now: "
             f"{s.concurrency_limit} · output format: {s.structured_output} · {cost} · {s.elapsed_s:.1f} s"]
    if s.message and s.state != "running":
        lines.append(s.message)
    return "\n\n".join(lines)


def failures_frame(records: list[dict]) -> pd.DataFrame:
    rows = [{"kind": r.get("kind", ""), "reason": r.get("reason", ""),
             "raw": (r.get("raw") or "")[:400]} for r in records]
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def listed_models(settings: Any, name: str) -> list[str]:
    result = list_models(settings, name)
    if result.error:
        gr.Warning(result.error)
    return chat_models(result.models)
