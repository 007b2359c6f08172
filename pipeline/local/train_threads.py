"""How many threads the training process uses, chosen step by step by timing the steps.

Two threads of our trainer split each step's rows between them, each on one intra-op thread
(pipeline/local/row_shards.py): alone on the 2-core AMD EPYC that is 1.05-1.4x faster than one thread
natively and 1.6x under the AVX2 knobs, where two intra-op threads on the whole batch were slower than
one (their per-op barrier; on the Intel Xeon of earlier sessions they were 1.2-1.6x faster than one).
Beside a chat decoding on the same cores, whose decoder holds a core, one thread can be the faster
(natively it was, or as fast, and the chat decoded ~25% faster beside it; benchmarks/train_waits.py,
docs/bench/recipe.md). A visitor may chat while a fine-tune runs, and other work may come and go, so
the trainer measures instead of guessing, as decoding does (pipeline/local/threads.py): it times its
steps on each count and keeps the faster, re-measuring the other now and then.

A training step is ~50 decode steps long, so the other count is re-measured for one step only, every
EXPLORE_EVERY steps (FAR_EVERY where it was much slower): a few slower steps of a 50-step fine-tune.
Batches differ in length, so a step's seconds are divided by the positions it computed (plus a fixed
part: ~0.2 s of a step does not depend on its length) before they are compared.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import torch
from transformers import TrainerCallback

from pipeline.local.threads import ThreadChooser, available_cores

EXPLORE_EVERY = 12
FAR_EVERY = 24
# Each count's estimate is its last step's time (decoding keeps the median of 5). A training step is
# already an average over thousands of ops (~1 s), so one stray op does not decide it; and a
# re-measurement is one step, so with a median the other count followed a change of load only after
# several: seen in the app, a chat that ended a third into a fine-tune left the rest on one thread.
WINDOW = 1
# ~0.2 s of a step whatever its length, ~5.3 ms per position on two threads (docs/bench/recipe.md):
# the fixed part in positions, so a short batch's step does not look slow per position.
FIXED_POSITIONS = 40


def chooser(setting: int | str | None) -> ThreadChooser | None:
    """From DISTILL_TRAIN_THREADS: "auto" measures 2 and 1 threads (two threads first: the faster
    alone) where two cores are ours; a number fixes the count; None leaves torch's default alone."""
    if setting is None:
        return None
    if setting != "auto":
        return ThreadChooser((int(setting),))
    return measuring((2, 1) if available_cores() >= 2 else (1,))


def measuring(counts: tuple[int, ...]) -> ThreadChooser:
    """A chooser among `counts` paced for training steps (one-step re-measurements)."""
    return ThreadChooser(counts, far_every=FAR_EVERY, explore_every=EXPLORE_EVERY, probe_steps=1, window=WINDOW)


class StepThreads(TrainerCallback):
    """Sets the thread count before each optimizer step and records the step's time per position.

    With `sharded` (a trainer with `step_shards`: pipeline/local/sft_head.py) a count of N > 1 splits the
    step's rows over N worker threads of one intra-op thread each (pipeline/local/row_shards.py) and the
    trainer's own thread (optimizer step, validation) keeps one; without, N is torch's intra-op count.
    The positions are counted by a hook on the input embeddings during forwards that build a graph
    (training; validation runs under no_grad and after the step's end), on whichever thread runs them."""

    def __init__(self, model: torch.nn.Module, choose: ThreadChooser,
                 clock: Callable[[], float] = time.perf_counter, sharded: object | None = None):
        self.chooser = choose
        self.clock = clock
        self.sharded = sharded
        self.steps_on: Counter[int] = Counter()  # optimizer steps run per thread count (the "done" event)
        self.step_seconds: dict[int, list[float]] = {}  # each measured step's seconds, per count (the same)
        self._positions = 0
        self._lock = threading.Lock()  # row shards count their positions from their own threads
        self._threads = 0
        self._started = 0.0
        model.get_input_embeddings().register_forward_hook(self._count)

    def _count(self, _module: torch.nn.Module, inputs: tuple, _output: torch.Tensor) -> None:
        if torch.is_grad_enabled():
            with self._lock:
                self._positions += inputs[0].numel()

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201 (TrainerCallback's)
        self._threads = self.chooser.choose(1)
        own = self._threads
        if self.sharded is not None:
            self.sharded.step_shards = self._threads
            own = 1
        if torch.get_num_threads() != own:
            torch.set_num_threads(own)
        self._positions = 0
        self._started = self.clock()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        self.steps_on[self._threads] += 1
        if state.global_step > 1:  # the first step also warms up (allocations, first-call set-up)
            seconds = self.clock() - self._started
            self.step_seconds.setdefault(self._threads, []).append(seconds)
            per_position = seconds / (self._positions + FIXED_POSITIONS)
            self.chooser.record(1, self._threads, per_position)
