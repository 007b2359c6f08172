"""Synthetic data generation: a teacher model writes chat examples from a template.

Steps per request (distilabel's shape): build prompt (`prompts`) -> call the teacher (`teacher`) ->
parse (`parse`) -> dedupe (`dedup`) -> optionally check the answer (`checking`) -> append (`store`).
`runner` runs them concurrently with cost (`costing`) and progress (`status`); `plan` estimates.
"""

from pipeline.generate.costing import Estimate
from pipeline.generate.plan import estimate_run
from pipeline.generate.runner import GenerationConfig, generate, run_generation
from pipeline.generate.status import RunStatus
from pipeline.generate.teacher import RetryPolicy
from pipeline.generate.templates import Template, list_templates, load_template, resolve_variables

__all__ = ["Estimate", "GenerationConfig", "RetryPolicy", "RunStatus", "Template", "estimate_run", "generate",
           "list_templates", "load_template", "resolve_variables", "run_generation"]
