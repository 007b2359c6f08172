"""Structured output for the local backend: `response_format` becomes a token mask at every step.

A 135M model asked politely for JSON mostly writes prose, so the local teacher produced nothing the
generator could parse. llguidance compiles the JSON schema (or "any JSON object") into a grammar and,
at every decoding step, says which tokens may come next; the engine masks the others out before
sampling. The model still chooses every string, number and array length; it can no longer break the
structure. Tokens the grammar forces (keys, quotes, commas) are appended without sampling, and fed to
the model in one chunk on the next step, which saves a forward pass per forced token.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import torch

log = logging.getLogger(__name__)


class ConstraintError(ValueError):
    """The response_format cannot be turned into a grammar; the message says why."""


def load_tokenizer(hf_tokenizer: Any) -> Any | None:
    """llguidance's view of the model's tokenizer (~0.4 s to build, so built once per engine)."""
    try:
        import llguidance.hf

        return llguidance.hf.from_tokenizer(hf_tokenizer)
    except Exception:  # structured output degrades to best effort rather than taking the backend down
        log.exception("structured output is unavailable: llguidance could not read the tokenizer")
        return None


def grammar_for(response_format: dict) -> str | None:
    """The llguidance grammar for an OpenAI `response_format`, or None for plain text."""
    import llguidance

    kind = response_format.get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise ConstraintError("response_format.json_schema.schema must be a JSON schema object.")
    elif kind == "json_object":
        schema = {"type": "object"}
    else:
        return None
    try:
        # No free whitespace between tokens: with it allowed, the tiny test model spent all its tokens on
        # tabs and newlines after the first key. The separators are json.dumps's, so the text reads normally.
        return llguidance.LLMatcher.grammar_from_json_schema(
            json.dumps(schema), overrides={"whitespace_flexible": False, "item_separator": ", ",
                                           "key_separator": ": "})
    except ValueError as exc:
        raise ConstraintError(f"response_format.json_schema.schema is not valid JSON schema: {exc}") from None


def check_grammar(grammar: str, tokenizer: Any) -> None:
    import llguidance

    problem = llguidance.LLMatcher.validate_grammar(grammar, tokenizer)
    if problem and not problem.startswith("WARNING"):
        raise ConstraintError(f"This local backend cannot follow the response_format schema: {problem}")


class OutputConstraint:
    """One request's grammar state: masks logits, consumes sampled tokens, offers forced ones."""

    def __init__(self, tokenizer: Any, grammar: str):
        import llguidance

        self._matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        if self._matcher.is_error():
            raise ConstraintError(self._matcher.get_error())
        self._bit = torch.arange(8, dtype=torch.uint8)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits with every token the grammar forbids set to -inf (a new tensor)."""
        packed = torch.frombuffer(bytearray(self._matcher.compute_bitmask()), dtype=torch.uint8)
        # Bit b of byte k allows token 8k+b (llguidance's little-endian 32-bit words, read bytewise).
        allowed = ((packed.unsqueeze(1) >> self._bit) & 1).view(-1).bool()
        size = min(allowed.numel(), logits.numel())
        out = torch.full_like(logits, float("-inf"))
        out[:size] = torch.where(allowed[:size], logits[:size], out[:size])
        return out

    def accept(self, token: int) -> bool:
        return self._matcher.consume_token(token)

    def forced(self) -> list[int]:
        """Tokens the grammar allows no alternative to, already consumed."""
        tokens = self._matcher.compute_ff_tokens()
        if tokens and not self._matcher.consume_tokens(tokens):
            return []
        return list(tokens)

    @property
    def finished(self) -> bool:
        """The structure is complete: nothing but end-of-sequence may follow."""
        return self._matcher.is_stopped()

    @property
    def failed(self) -> str:
        return self._matcher.get_error() if self._matcher.is_error() else ""
