"""Keys and values of prompts already computed, reused by later prompts that start the same way.

A prompt's prefill is one row per token through every layer, and the prompts this app sends repeat
themselves: the demo's rewording requests share 208 of their ~255 tokens (the template) and a reply that
did not parse is asked again with the very same prompt; the benchmark's 36 prompts share their system
part; the compare step and the Chat tab send the base and the teacher pane (one model, unless another
teacher is set) the same prompt. Each of those rows was computed once already.

`PrefixStore` keeps, per decoder, recent prompts' cached keys and values (and the logits of the last
position, so a prompt asked again needs no pass at all and gets the very numbers it got the first
time: a greedy or seeded answer repeats). A new prompt copies the longest stored prefix into its own
cache and only its remaining tokens are prefilled. Entries are evicted oldest first beyond a memory
budget. Keys and values depend only on the tokens before them, so reuse is exact up to the rounding of
the pass that computed them (a different grouping of rows; the same kind of difference as batching).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from pipeline.local.fastlm import KVCache

# ~96 MB of stored keys and values: SmolLM2-135M keeps 46 KB per position (30 layers x k, v x 3 heads x
# 64 x float32), so ~2,000 positions: the demo's rewording prompts (~260 each), a benchmark's system part,
# a few chat turns.
BUDGET_BYTES = 96 * 2**20
# A prefix shorter than this is not worth its copy and lookup.
MIN_REUSE = 8
# A group's common start gets a pass of its own when that saves at least this many rows: a pass costs
# about 40 rows whatever its size (threads.PREFILL_FIXED_ROWS), so with room to spare.
SHARE_FROM_ROWS = 96


@dataclass
class _Entry:
    model_id: str
    tokens: list[int]
    kv: torch.Tensor  # [layers, 2, kv_heads, len(tokens), head_dim]
    logits: torch.Tensor | None  # the last position's logits, when stored with the prompt's prefill

    @property
    def nbytes(self) -> int:
        return self.kv.nbytes + (self.logits.nbytes if self.logits is not None else 0)


def common_length(a: list[int], b: list[int]) -> int:
    return len(os.path.commonprefix([a, b]))


class PrefixStore:
    """Stored prefixes of one engine: its decoding thread adds and takes, another thread may forget."""

    def __init__(self, budget_bytes: int = BUDGET_BYTES):
        self._lock = threading.Lock()
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next = 0
        self.bytes = 0
        self.reused_positions = 0  # positions taken from the store instead of computed (for tests and logs)

    def add(self, model_id: str, tokens: list[int], cache: KVCache, logits: torch.Tensor | None = None) -> None:
        """Keep the first len(tokens) positions of `cache` (their keys and values are final) for `model_id`."""
        if len(tokens) < MIN_REUSE or cache.length < len(tokens):
            return
        with self._lock:
            self._add(model_id, tokens, cache, logits)

    def _add(self, model_id: str, tokens: list[int], cache: KVCache, logits: torch.Tensor | None) -> None:
        for key, entry in self._entries.items():  # already stored (as is, or as part of a longer one)
            if entry.model_id == model_id and common_length(entry.tokens, tokens) == len(tokens) \
                    and (entry.logits is not None or logits is None or len(entry.tokens) > len(tokens)):
                self._entries.move_to_end(key)
                return
        entry = _Entry(model_id, list(tokens), cache.kv[:, :, :, : len(tokens)].clone(),
                       None if logits is None else logits.clone())
        self._entries[self._next] = entry
        self._next += 1
        self.bytes += entry.nbytes
        while self.bytes > self.budget_bytes and len(self._entries) > 1:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.nbytes

    def longest(self, model_id: str, tokens: list[int]) -> int:
        """How many leading positions of `tokens` the store could give `model_id` (0 below MIN_REUSE)."""
        with self._lock:
            best = self._best(model_id, tokens)
        return best[1] if best else 0

    def take(self, model_id: str, tokens: list[int], cache: KVCache) -> torch.Tensor | None:
        """Fill the empty `cache` with the longest stored prefix of `tokens`. Returns the logits of the
        last position when the whole prompt was stored with them (nothing is left to compute), else
        None; the caller then feeds `tokens[cache.length:]`, at least one token."""
        with self._lock:
            best = self._best(model_id, tokens)
            if best is None:
                return None
            key, length = best
            entry = self._entries[key]
            self._entries.move_to_end(key)
        whole = length == len(tokens) == len(entry.tokens) and entry.logits is not None
        if not whole:
            length = min(length, len(tokens) - 1)  # the last token's pass gives the logits
        cache.reserve(length)
        cache.kv[:, :, :, :length] = entry.kv[:, :, :, :length]
        cache.length = length
        self.reused_positions += length
        return entry.logits.clone() if whole else None

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._forget(model_id)

    def _forget(self, model_id: str) -> None:
        for key in [k for k, e in self._entries.items() if e.model_id == model_id]:
            self.bytes -= self._entries.pop(key).nbytes

    def _best(self, model_id: str, tokens: list[int]) -> tuple[int, int] | None:
        best: tuple[int, int] | None = None
        for key, entry in self._entries.items():
            if entry.model_id != model_id:
                continue
            n = common_length(entry.tokens, tokens)
            if n >= MIN_REUSE and (best is None or n > best[1]):
                best = (key, n)
        return best


def group_prefix(prompts: list[list[int]]) -> list[int]:
    """The tokens every prompt of a group starts with."""
    return list(os.path.commonprefix(prompts)) if prompts else []
