"""The demo's steps. Each calls the pipeline functions a tab would call and reports what happened
and what it cost: real dollars where a provider bills, and on the free local backend an estimate of
the same work on OpenAI's equivalent models (data/demos.json names them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pipeline import endpoints
from pipeline.demo import actions
from pipeline.demo.context import DemoRun, Say, StepContext, StepResult
from pipeline.demo.scenarios import load_scenario
from pipeline.errors import InputError

#: Every step a scenario may list (data/demos.json), by name.
STEPS: dict[str, Callable[[StepContext], StepResult]] = {
    "load": actions.step_load, "augment": actions.step_augment, "holdout": actions.step_holdout,
    "finetune": actions.step_finetune,
    "compare": actions.step_compare, "benchmark": actions.step_benchmark,
}


def run_step(run: DemoRun, step: str, settings: endpoints.SessionSettings, *, say: Say | None = None,
             cancel: threading.Event | None = None, confirm_cost: bool = False) -> StepResult:
    """Run one step of the run's scenario; the result is also stored in `run.results`."""
    scenario = load_scenario(run.scenario)
    if step not in scenario.steps:
        raise InputError(f"The '{scenario.title}' demo has no step '{step}'.")
    ctx = StepContext(run, scenario, settings, say or (lambda _m: None), cancel or threading.Event(),
                      confirm_cost)
    started = time.perf_counter()
    result = STEPS[step](ctx)
    result.seconds = round(time.perf_counter() - started, 1)
    run.results[step] = result
    return result
