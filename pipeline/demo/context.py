"""What the demo's steps share: a visitor's run, each step's context and result, the log they write.

The steps themselves are in `pipeline.demo.actions`; `pipeline.demo.steps` runs them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import drafts, endpoints, workspace
from pipeline.demo.scenarios import Scenario
from pipeline.errors import CancelledError, InputError

Say = Callable[[str], None]


class Progress(str):
    """A progress line ("20/52 answers scored"): the next one of the same step replaces it in a log."""


def add_to_log(log: list[str], line: str) -> None:
    """Append `line`; a progress line right after another one takes its place (one live line per step)."""
    if isinstance(line, Progress) and log and isinstance(log[-1], Progress):
        log[-1] = line
    else:
        log.append(line)


STEP_TITLES = {
    "load": "Load the sample data",
    "augment": "Paraphrase-augment with the teacher",
    "holdout": "Hold out whole groups as the benchmark",
    "finetune": "Fine-tune the student",
    "compare": "Ask a held-out question in three panes",
    "benchmark": "Score base vs fine-tuned on held-out questions",
}


@dataclass
class StepResult:
    step: str
    summary: str
    seconds: float
    #: What the step really cost (0 on the local backend; None when the price is unknown).
    cost_usd: float | None = None
    #: On the local backend: the same work on OpenAI's equivalent models, estimated.
    equivalent_usd: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoRun:
    """One visitor's progress through one scenario (kept in their session state)."""

    scenario: str
    visitor_id: str
    backup: str | None = None
    job_id: str | None = None
    job_endpoint: str | None = None
    fine_tuned_model: str | None = None
    #: The benchmark the "holdout" step made from the sample (a file in the visitor's workspace).
    benchmark: str | None = None
    results: dict[str, StepResult] = field(default_factory=dict)


@dataclass
class StepContext:
    run: DemoRun
    scenario: Scenario
    settings: endpoints.SessionSettings
    say: Say
    cancel: threading.Event
    confirm_cost: bool

    def progress(self, line: str) -> None:
        self.say(Progress(line))


def is_local(settings: endpoints.SessionSettings, endpoint_name: str) -> bool:
    return settings.endpoint(endpoint_name).is_local


def check_cancel(ctx: StepContext) -> None:
    if ctx.cancel.is_set():
        raise CancelledError("Demo stopped; the steps already finished are kept.")


def demo_folder(ctx: StepContext) -> Path:
    return workspace.visitor_dir(ctx.run.visitor_id, "demo")


def keep_backup(ctx: StepContext, backup: Any) -> None:
    ctx.run.backup = str(backup) if backup else ctx.run.backup


def restore_draft(run: DemoRun) -> int:
    """Undo the demo's 'load' step: the visitor's previous draft comes back."""
    if not run.backup:
        raise InputError("There is no earlier draft to restore: the demo started from an empty table.")
    return drafts.restore_backup(run.visitor_id, Path(run.backup))
