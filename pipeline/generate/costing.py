"""What a generation run costs: per call from `usage` (a tiktoken estimate when absent), a budget that
is never exceeded, and an estimate for the whole run before it starts.

The budget holds back, for every call in flight, the most it can cost (its prompt plus `max_tokens` of
output). A call starts only if what was spent plus what is held back plus its own worst case stays
within the budget, so the run stops *before* it would go over, not after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.errors import InputError
from pipeline.models import prices
from pipeline.tokens import TokenCounter, count_messages, counter_for, usage_cost_usd


@dataclass(frozen=True)
class Estimate:
    requests: int
    input_tokens: int
    output_tokens: int
    #: Expected cost; None when the pricing table does not know the model.
    cost_usd: float | None
    #: If every call used all its max_tokens: the most the run can cost.
    max_cost_usd: float | None
    approximate_tokens: bool

    def describe(self) -> str:
        if self.cost_usd is None:
            money = "cost unknown (the pricing table has no price for this model)"
        else:
            money = f"about ${self.cost_usd:.4f}, at most ${self.max_cost_usd:.4f}"
        approx = " (token counts approximate)" if self.approximate_tokens else ""
        return (f"{self.requests} teacher calls, ~{self.input_tokens:,} input + ~{self.output_tokens:,} "
                f"output tokens{approx}: {money}")


class CostMeter:
    """Tokens and dollars of one run, and the budget check."""

    def __init__(self, model: str, budget_usd: float | None = None, *, spent_before: float = 0.0) -> None:
        self.model = model
        self.counter: TokenCounter = counter_for(model)
        self.priced = prices(model) is not None
        if budget_usd is not None and not self.priced:
            raise InputError(f"There is no price for '{model}' in the pricing table, so a budget cannot be "
                             "enforced. Remove the budget or add the model to data/pricing.json.")
        self.budget = budget_usd
        self.spent = spent_before
        self.held = 0.0
        self.input_tokens = 0
        self.output_tokens = 0
        self.estimated_calls = 0  # calls whose usage was missing and counted with tiktoken

    def price(self, input_tokens: int, output_tokens: int, model: str | None = None) -> float:
        return usage_cost_usd(model or self.model, input_tokens, output_tokens) or 0.0

    def prompt_tokens(self, messages: list[dict]) -> int:
        return count_messages(messages, self.counter)

    def try_hold(self, messages: list[dict], max_tokens: int, extra: float = 0.0) -> float | None:
        """Hold back the worst case of a call (+ `extra`, e.g. its answer check); None when that could
        break the budget, so the call must not start."""
        if self.budget is None:  # nothing to guard: skip counting the prompt (CPU on every call)
            return 0.0
        worst = self.price(self.prompt_tokens(messages), max_tokens) + extra
        if self.spent + self.held + worst > self.budget + 1e-12:
            return None
        self.held += worst
        return worst

    def settle(self, held: float, messages: list[dict], text: str, input_tokens: int | None,
               output_tokens: int | None, model: str | None = None) -> float:
        """Release a hold and book the call's real cost (estimated with tiktoken when usage is absent)."""
        self.held = max(0.0, self.held - held)
        if input_tokens is None or output_tokens is None:
            self.estimated_calls += 1
            input_tokens = self.prompt_tokens(messages) if input_tokens is None else input_tokens
            output_tokens = self.counter.count(text) if output_tokens is None else output_tokens
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        cost = self.price(input_tokens, output_tokens, model)
        self.spent += cost
        return cost

    def release(self, held: float) -> None:
        self.held = max(0.0, self.held - held)


def estimate(model: str, sample_prompt: list[dict], *, requests: int, expected_output_tokens: int,
             max_tokens: int, extra_calls: int = 0, check_calls: int = 0) -> Estimate:
    """Cost of `requests` calls shaped like `sample_prompt` (+ setup calls + answer-check calls)."""
    counter = counter_for(model)
    per_in = count_messages(sample_prompt, counter)
    calls = requests + extra_calls
    # A check call sends the example's question (about the output of a call) and gets a solution back.
    in_tokens = per_in * calls + (expected_output_tokens + 50) * check_calls
    out_tokens = expected_output_tokens * (calls + check_calls)
    max_out = max_tokens * (calls + check_calls)
    priced = prices(model) is not None
    cost = usage_cost_usd(model, in_tokens, out_tokens) if priced else None
    high = usage_cost_usd(model, in_tokens, max_out) if priced else None
    return Estimate(calls + check_calls, in_tokens, out_tokens, cost, high, counter.approximate)


def requests_needed(n: int, per_request: int, *, expected_loss: float = 0.1) -> int:
    """Calls for `n` examples when each yields `per_request`, allowing for some parse/duplicate loss."""
    return math.ceil(n / max(1, per_request) * (1 + expected_loss)) if n > 0 else 0
