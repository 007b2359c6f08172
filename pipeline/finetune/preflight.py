"""Before a job starts: is the data valid, how many tokens, how many epochs, what will it cost?

`preflight()` never calls the provider; it refuses (InputError) only through `require_ready()`, so
the tab can show the whole summary first. Costs above a threshold need an explicit confirmation
(`DISTILL_FINETUNE_CONFIRM_USD`, default $5): a presenter should never start a $200 job by a
stray click.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline import config
from pipeline.errors import InputError
from pipeline.finetune.jobs import AUTO, parse_hyperparameter
from pipeline.models import base_of, is_fine_tuned, model_info, openai_fine_tunable_models, pricing_source
from pipeline.providers import openai_hosted

DEFAULT_CONFIRM_USD = config.FINETUNE_CONFIRM_USD.default


class ConfirmationNeeded(InputError):
    """The estimated cost is above the threshold and the user has not confirmed it."""


def _grouped(problems: list[dict[str, Any]], label: str, max_each: int = 3) -> list[str]:
    """One line per problem, but one line per kind when a kind repeats (50 lines without a system
    message are one finding, not 50). The validator's messages already name their line."""
    by_code: dict[Any, list[dict[str, Any]]] = {}
    for p in problems:
        by_code.setdefault(p.get("code"), []).append(p)
    out: list[str] = []
    for code, items in by_code.items():
        if len(items) <= max_each:
            out += [f"{label}: {p['message']}" for p in items]
            continue
        where = [str(p["line"]) for p in items if p.get("line")]
        shown = ", ".join(where[:8]) + (", ..." if len(where) > 8 else "")
        out.append(f"{label} x{len(items)} ({code}; lines {shown}), e.g.: {items[0]['message']}")
    return out


def confirm_threshold_usd() -> float:
    return config.FINETUNE_CONFIRM_USD.get()


@dataclass
class Preflight:
    model: str
    n_train: int
    n_validation: int
    #: `{line, code, message}` dicts; validation-file problems say so in their message.
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    billing_tokens_per_epoch: int = 0
    n_epochs: int = 0
    epochs_auto: bool = True
    estimated_cost_usd: float | None = None
    tokens_approximate: bool = False
    threshold_usd: float = DEFAULT_CONFIRM_USD

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def needs_confirmation(self) -> bool:
        return self.estimated_cost_usd is not None and self.estimated_cost_usd > self.threshold_usd

    def cost_text(self) -> str:
        if self.estimated_cost_usd is None:
            return "unknown (no training price for this model in data/pricing.json)"
        cost = self.estimated_cost_usd
        return f"${cost:,.2f}" if cost >= 0.01 or cost == 0 else f"${cost:.4f}"

    def summary_lines(self) -> list[str]:
        approx = " (approximate count)" if self.tokens_approximate else ""
        epochs = f"{self.n_epochs}{' (auto)' if self.epochs_auto else ''}"
        lines = [
            f"{self.n_train} training examples" + (f", {self.n_validation} validation" if self.n_validation else ""),
            f"{self.billing_tokens_per_epoch:,} billing tokens per epoch{approx}",
            f"{epochs} epochs -> {self.billing_tokens_per_epoch * self.n_epochs:,} training tokens",
            f"Estimated cost for {self.model}: {self.cost_text()} ({pricing_source()})",
        ]
        lines += _grouped(self.errors, "Error") + _grouped(self.warnings, "Warning")
        if self.needs_confirmation:
            lines.append(f"This is above the ${self.threshold_usd:,.2f} confirmation threshold.")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"examples": self.n_train, "validation_examples": self.n_validation, "model": self.model,
                "errors": self.errors, "warnings": self.warnings,
                "billing_tokens_per_epoch": self.billing_tokens_per_epoch, "n_epochs": self.n_epochs,
                "estimated_cost_usd": self.estimated_cost_usd, "tokens_approximate": self.tokens_approximate,
                "needs_confirmation": self.needs_confirmation}


#: Dataset-size rules meant for training data, not for a held-out validation split.
_TRAINING_ONLY = frozenset({"too_few_examples", "few_examples"})


def preflight(train: list[Any], model: str, *, validation: list[Any] | None = None,
              n_epochs: Any = AUTO, threshold_usd: float | None = None,
              line_numbers: list[int] | None = None, read_problems: list[Any] = (),
              auto_epochs: Callable[[int], int] | None = None) -> Preflight:
    """Validate, count and price a fine-tuning run (no network).

    `auto_epochs`: what the provider makes of n_epochs "auto" for a number of examples, when it is
    not OpenAI's rule (the local backend has its own); the count and the estimate then use it.

    `line_numbers` / `read_problems` come from pipeline.dataset.read_dataset when the data is a file,
    so problems name the file's own lines (a line that was not even JSON included).
    """
    from pipeline.dataset import validate_examples

    epochs_value = parse_hyperparameter("n_epochs", n_epochs)
    provider_rule = auto_epochs(len(train)) if auto_epochs else None  # None: OpenAI's rule
    epochs = int(epochs_value) if epochs_value != AUTO else provider_rule
    report = validate_examples(train, model, n_epochs=epochs, line_numbers=line_numbers)
    read = [p.as_dict() if hasattr(p, "as_dict") else dict(p) for p in read_problems]
    errors = [p for p in read if p["severity"] == "error"] + report.errors
    warnings = [p for p in read if p["severity"] != "error"] + report.warnings
    if validation:
        held_out = validate_examples(validation, model)
        errors += [{**p, "message": f"Validation set: {p['message']}"} for p in held_out.errors
                   if p["code"] not in _TRAINING_ONLY]
        warnings += [{**p, "message": f"Validation set: {p['message']}"} for p in held_out.warnings
                     if p["code"] not in _TRAINING_ONLY]
    return Preflight(
        model=model, n_train=len(train), n_validation=len(validation or []), errors=errors,
        warnings=warnings, billing_tokens_per_epoch=report.billing_tokens_per_epoch,
        n_epochs=report.n_epochs, epochs_auto=epochs_value == AUTO,
        estimated_cost_usd=report.estimated_cost_usd, tokens_approximate=report.tokens_approximate,
        threshold_usd=confirm_threshold_usd() if threshold_usd is None else threshold_usd,
    )


def require_ready(pre: Preflight, *, confirmed: bool = False) -> None:
    """Refuse to start on data errors, or above the cost threshold without confirmation."""
    if pre.errors:
        first = pre.errors[0]
        more = f" (and {len(pre.errors) - 1} more)" if len(pre.errors) > 1 else ""
        raise InputError(f"The data has {len(pre.errors)} error(s); fix them before fine-tuning. "
                         f"First: {first['message']}{more}")
    if pre.needs_confirmation and not confirmed:
        raise ConfirmationNeeded(
            f"The estimated cost is {pre.cost_text()}, above the ${pre.threshold_usd:,.2f} threshold. "
            "Confirm to go ahead.")


is_openai_hosted = openai_hosted  # one rule (pipeline.providers); the name the finetune API exports


def offered_base_models(client: Any, *, openai_hosted: bool) -> list[str]:
    """Base models to offer: OpenAI's fine-tunable list from data/, else what the endpoint serves."""
    if openai_hosted:
        return openai_fine_tunable_models()
    return sorted(m.id for m in client.models.list() if not is_fine_tuned(m.id))


def check_base_model(model: str, offered: list[str], *, openai_hosted: bool) -> None:
    """Refuse a model that cannot be fine-tuned here, before anything is uploaded."""
    model = (model or "").strip()
    if not model:
        raise InputError("Choose a base model to fine-tune.")
    if openai_hosted:
        # A family's alias ("gpt-4o-mini") and fine-tuned models of it can be trained further.
        if model in offered or model_info(base_of(model)).fine_tunable:
            return
        raise InputError(f"OpenAI cannot fine-tune '{model}'. Fine-tunable models: {', '.join(offered)}.")
    if model not in offered and not is_fine_tuned(model):
        served = ", ".join(offered) or "none"
        raise InputError(f"This endpoint does not serve a model named '{model}'. It serves: {served}.")
