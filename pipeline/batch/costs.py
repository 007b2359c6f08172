"""What a batch costs at batch prices (data/pricing.json: half the interactive price where OpenAI
lists one), next to what the same requests would cost one by one.

Input tokens are counted on the request file's own bodies as it is written; output tokens are the
expected length (the template's `expected_output_tokens`; for a benchmark a quarter of max_tokens,
answers being short) with the worst case (every reply at max_tokens) alongside.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

from pipeline.models import is_fine_tuned, prices
from pipeline.tokens import count_messages, counter_for, usage_cost_usd


def batch_cost_usd(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Cost of tokens sent through the Batch API; None when the table has no batch price for the model."""
    row = prices(model)
    if row is None:
        return None
    rate_in, rate_out = ((row.batch_ft_input, row.batch_ft_output) if is_fine_tuned(model)
                         else (row.batch_input, row.batch_output))
    if rate_in is None or rate_out is None:
        return None
    return round((input_tokens * rate_in + output_tokens * rate_out) / 1_000_000, 8)


@dataclass
class ModelTally:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    max_output_tokens: int = 0


@dataclass
class BatchEstimate:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    batch_cost_usd: float | None = 0.0
    max_batch_cost_usd: float | None = 0.0
    interactive_cost_usd: float | None = 0.0
    approximate_tokens: bool = False
    #: Models the table has no batch price for (their cost is unknown, never guessed).
    unpriced: list[str] = field(default_factory=list)

    @property
    def priced(self) -> bool:
        return not self.unpriced

    def describe(self) -> str:
        approx = " (token counts approximate)" if self.approximate_tokens else ""
        head = (f"{self.requests:,} requests, ~{self.input_tokens:,} input + ~{self.output_tokens:,} output "
                f"tokens{approx}")
        if self.unpriced:
            return f"{head}: no batch price known for {', '.join(self.unpriced)}"
        money = f"about ${self.batch_cost_usd:.4f} at batch prices, at most ${self.max_batch_cost_usd:.4f}"
        if self.interactive_cost_usd is not None:
            money += f" (one by one: about ${self.interactive_cost_usd:.4f})"
        return f"{head}: {money}"

    def to_json(self) -> dict:
        return {**asdict(self), "priced": self.priced}


class Tally:
    """Counts each request's tokens as the request file is written (one counter per model)."""

    def __init__(self) -> None:
        self.models: dict[str, ModelTally] = {}
        self._counters: dict = {}

    def add(self, model: str, messages: list[dict], expected_output: int, max_output: int) -> None:
        counter = self._counters.get(model) or self._counters.setdefault(model, counter_for(model))
        t = self.models.setdefault(model, ModelTally())
        t.requests += 1
        t.input_tokens += count_messages(messages, counter)
        t.output_tokens += expected_output
        t.max_output_tokens += max_output

    def add_counts(self, model: str, requests: int, input_tokens: int, output_tokens: int, max_output: int) -> None:
        """Requests counted without their messages (answer checks, whose questions come later)."""
        self._counters.setdefault(model, counter_for(model))
        t = self.models.setdefault(model, ModelTally())
        t.requests += requests
        t.input_tokens += input_tokens
        t.output_tokens += output_tokens
        t.max_output_tokens += max_output

    def estimate(self) -> BatchEstimate:
        est = BatchEstimate(approximate_tokens=any(c.approximate for c in self._counters.values()))
        for model, t in self.models.items():
            est.requests += t.requests
            est.input_tokens += t.input_tokens
            est.output_tokens += t.output_tokens
            cost = batch_cost_usd(model, t.input_tokens, t.output_tokens)
            high = batch_cost_usd(model, t.input_tokens, t.max_output_tokens)
            one_by_one = usage_cost_usd(model, t.input_tokens, t.output_tokens)
            if cost is None or high is None:
                est.unpriced.append(model)
                est.batch_cost_usd = est.max_batch_cost_usd = None
            elif est.batch_cost_usd is not None and est.max_batch_cost_usd is not None:
                est.batch_cost_usd = round(est.batch_cost_usd + cost, 8)
                est.max_batch_cost_usd = round(est.max_batch_cost_usd + high, 8)
            est.interactive_cost_usd = (None if one_by_one is None or est.interactive_cost_usd is None
                                        else round(est.interactive_cost_usd + one_by_one, 8))
        return est


def estimate_of(record_estimate: dict) -> BatchEstimate:
    """The BatchEstimate kept in a record (`record.estimate`), to describe it again."""
    known = {f.name for f in dataclasses.fields(BatchEstimate)}
    return BatchEstimate(**{k: v for k, v in record_estimate.items() if k in known})
