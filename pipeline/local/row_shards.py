"""A training step's batch split by rows over worker threads, each computing its rows on one thread.

A LoRA step of the local fine-tune is a few thousand small ops (batch 2, ~50 tokens a row): torch's
two intra-op threads meet at a barrier after every one of them, and on the 2-core AMD EPYC of
2026-12-02 a step on two intra-op threads took 1.2-1.7x the time of one thread (fp32 under the AVX2
knobs and the bf16 path alike). Two worker threads that each run the forward and backward of their own
rows on one intra-op thread meet once per step instead: 0.48 s per step against 0.77 s on one thread
(AVX2 knobs), 0.27-0.37 against 0.36-0.39 s (native bf16) (benchmarks/train_waits.py,
docs/bench/recipe.md, last section). torch releases the GIL inside its ops and autograd adds each
shard's gradients into the shared LoRA weights under a lock, so the step's gradients are the whole
batch's (fp32: equal to ~1e-7); each shard's loss is divided by the whole batch's count of completion
tokens, as one pass would be. A shard is trimmed to its own longest row, so less padding is computed too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")


def split(inputs: Mapping[str, object], shards: int) -> list[dict[str, torch.Tensor]] | None:
    """The batch's rows in at most `shards` groups of about equal token counts, each trimmed to the
    columns its rows use; None where the batch is not a padded [rows, length] batch it can split (one
    row, a packed batch, another key layout): that batch is computed whole."""
    ids, mask = inputs.get("input_ids"), inputs.get("attention_mask")
    if shards < 2 or not isinstance(ids, torch.Tensor) or not isinstance(mask, torch.Tensor) or ids.dim() != 2:
        return None
    rows = ids.shape[0]
    if rows < 2 or any(not isinstance(v, torch.Tensor) or v.shape != ids.shape for v in inputs.values()):
        return None
    lengths = mask.sum(1).tolist()
    groups: list[list[int]] = [[] for _ in range(min(shards, rows))]
    loads = [0] * len(groups)
    for row in sorted(range(rows), key=lambda r: -lengths[r]):  # longest first, each to the lightest group
        lightest = loads.index(min(loads))
        groups[lightest].append(row)
        loads[lightest] += lengths[row]
    parts = []
    for group in groups:
        index = torch.tensor(sorted(group))
        used = mask[index].bool().any(0)
        parts.append({key: value[index][:, used] for key, value in inputs.items()})
    return parts


class Workers:
    """Threads that run one call each per step, each on `threads_each` intra-op threads. Made per
    trainer (its threads start on first use); the calls' exceptions reach the caller."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0

    def run(self, calls: list[Callable[[], T]], threads_each: int = 1) -> list[T]:
        if self._pool is None or self._size < len(calls):
            if self._pool is not None:
                self._pool.shutdown()
            self._pool, self._size = ThreadPoolExecutor(len(calls), thread_name_prefix="train-rows"), len(calls)
        return list(self._pool.map(lambda call: _on_threads(call, threads_each), calls))


def _on_threads(call: Callable[[], T], threads: int) -> T:
    # A thread's intra-op count is its own (OpenMP's per-thread setting): set when it differs.
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return call()
