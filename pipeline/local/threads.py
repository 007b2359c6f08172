"""How many intra-op threads a decode step uses: chosen by measuring steps, not by guessing the load.

Quiet, two threads made one stream ~1.5x faster than one (33.8 -> 50.1 tokens/s) but three streams
slower (88.9 -> 78.6); with other work on the CPU (a fine-tune, a test suite) a second thread gained
nothing or lost (docs/bench/backend.md). The machine's load changes from minute to minute and a load
average lags it, so the engine asks the steps themselves: it times each step (wall clock, which is
what contention slows) per number of sequences and per thread count, uses the faster count, and
every EXPLORE_EVERY steps re-measures the others for a few steps, so a machine that became busy
(or idle) is noticed within a second or two of decoding; others that were much slower (FAR) are
re-measured four times less often, since each re-measurement is a few slow steps.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

EXPLORE_EVERY = 64  # steps between re-measurements of the other thread counts
PROBE_STEPS = 4  # steps per re-measurement (the first one after a switch is not counted)
# A re-measurement is five steps on a slower count. Where the others were last measured FAR times slower
# or more (one thread against two on an idle AVX2 machine: ~1.6x; two spinning threads beside a busy
# neighbour against one: ~3x), they are re-measured only every FAR_EVERY steps: every 64 steps those
# windows cost up to ~15% of the decoding (docs/bench/backend.md), for a change the engine then notices
# within FAR_EVERY + EXPLORE_EVERY steps (~8 s of decoding at 40 tokens/s) instead of ~2 s.
FAR = 1.25
FAR_EVERY = 256
SMOOTHING = 0.3  # weight of a new step time in the running average
# A count's first steps may include OpenMP starting its threads: a one-stream step on a new second thread
# was seen at 54 ms against 17.5 ms for the next ones, which made two threads look 2.5x slower, hence
# "far", and kept the slower count for ~125 steps. Each count's first estimate is the median of its
# first INITIAL_SAMPLES recorded steps, all taken before either count is preferred.
INITIAL_SAMPLES = 3
# Later steps can be as wrong: a preempted thread makes one step several times slower. A running average
# moved by such a step can make the faster count look slower, and if it then looks FAR slower it is not
# re-measured for FAR_EVERY steps. So each count's estimate is the median of its last WINDOW steps: two
# stray steps do not move it, three steps of a real change of load do.
WINDOW = 5
MAX_ROWS_KEY = 4  # batch sizes from this on share one measurement


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class ThreadChooser:
    """Picks a thread count among `candidates` for each step; `record` feeds back each step's seconds."""

    def __init__(self, candidates: tuple[int, ...], far_every: int = FAR_EVERY, explore_every: int = EXPLORE_EVERY,
                 probe_steps: int = PROBE_STEPS, initial_samples: int = INITIAL_SAMPLES, window: int = WINDOW):
        self.candidates = candidates
        self.initial_samples = initial_samples  # 1: the rule before INITIAL_SAMPLES (benchmarks/decode_waits.py)
        self.far_every = far_every  # EXPLORE_EVERY: the rule before FAR (benchmarks/decode_waits.py)
        self.explore_every = explore_every
        self.probe_steps = probe_steps  # the trainer's steps are ~50x longer than a decode step: it probes 1
        self.seconds: dict[tuple[int, int], float] = {}  # (rows key, threads) -> estimated seconds per step
        self.window = window  # 0: a running average (SMOOTHING), the rule before WINDOW (benchmarks/decode_waits.py)
        # The last `window` step times of each (with a running average: its first initial_samples).
        self.recent: dict[tuple[int, int], deque[float]] = {}
        self.recorded: Counter[tuple[int, int]] = Counter()  # steps recorded per (rows key, threads)
        self.steps = 0

    def choose(self, rows: int) -> int:
        if len(self.candidates) == 1:
            return self.candidates[0]
        key = min(rows, MAX_ROWS_KEY)
        for threads in self.candidates:  # each count measured (INITIAL_SAMPLES steps) before any is preferred
            if self.recorded[(key, threads)] < self.initial_samples:
                return threads
        best = min(self.candidates, key=lambda t: self.seconds[(key, t)])
        others = [t for t in self.candidates if t != best]
        near = min(self.seconds[(key, t)] for t in others) < FAR * self.seconds[(key, best)]
        phase = self.steps % (self.explore_every if near else self.far_every)
        if phase < self.probe_steps * len(others):
            return others[phase // self.probe_steps]
        return best

    def record(self, rows: int, threads: int, seconds: float) -> None:
        """One step's wall time; the engine does not record the first step after changing the count."""
        self.steps += 1
        key = (min(rows, MAX_ROWS_KEY), threads)
        self.recorded[key] += 1
        if self.window or self.recorded[key] <= self.initial_samples:
            recent = self.recent.setdefault(key, deque(maxlen=self.window or self.initial_samples))
            recent.append(seconds)
            self.seconds[key] = statistics.median(recent)
            return
        old = self.seconds[key]
        self.seconds[key] = old + SMOOTHING * (seconds - old)

    def run(self, rows: int, step: Callable[[], T], *, timed: bool = True) -> T:
        """`step()` (one decode step of `rows` sequences) on the count chosen for them; its wall time is
        recorded unless the count just changed (OpenMP starts or parks threads in that step) or `timed`
        is false (the caller knows it is not a decode step, e.g. forced tokens)."""
        import torch  # here: pipeline/local/__init__.py must set the wait policy before torch loads

        now, wanted = torch.get_num_threads(), self.choose(rows)
        if wanted != now:
            torch.set_num_threads(wanted)
        start = time.perf_counter()
        result = step()
        if wanted == now and timed:
            self.record(rows, wanted, time.perf_counter() - start)
        return result

    def best(self, rows: int) -> int | None:
        """The faster count measured so far for this many rows (None before both are measured)."""
        key = min(rows, MAX_ROWS_KEY)
        known = [t for t in self.candidates if (key, t) in self.seconds]
        return min(known, key=lambda t: self.seconds[(key, t)]) if len(known) == len(self.candidates) else None


# A prefill pass (a prompt's tokens, or many prompts' together) is chosen apart from decode steps: its
# matmuls have tens to thousands of rows, so it is bound by arithmetic where a decode step is bound by
# reading the weights. Two threads ran it 1.4-1.9x faster than one on an idle CPU under the AVX2 knobs
# (33 to 1,188 rows), 1.1-1.7x natively (docs/bench/backend.md), while decoding's choice, which a
# prefill used to inherit, is often one thread. Passes differ in size, so each is timed per row plus a
# fixed part of about PREFILL_FIXED_ROWS rows (~50 ms of a pass does not depend on its rows), and the
# other count is re-measured for one pass only, every PREFILL_EXPLORE_EVERY passes (PREFILL_FAR_EVERY
# where it was FAR slower). Only passes of PREFILL_TIMED_ROWS to PREFILL_PROBE_ROWS rows are timed:
# - a one-question prompt's pass (~30 rows, ~0.1 s) is mostly its fixed part, and it is the pass that
#   runs while the HTTP threads parse the other requests of a burst (0.44-0.79 s seen for 33-66 rows,
#   against 0.06-0.12 s alone);
# - a larger pass must not be the one that measures the slower count: the demo's benchmark prefill
#   (~600-1,200 rows) took 1.3-4.4 s more on one thread under the AVX2 knobs.
# The others run on the faster count measured so far (two threads before both are measured).
PREFILL_FIXED_ROWS = 40
PREFILL_TIMED_ROWS = 64
PREFILL_PROBE_ROWS = 400
PREFILL_EXPLORE_EVERY = 8
PREFILL_FAR_EVERY = 32


def chooser(setting: int | str | None) -> ThreadChooser | None:
    """From DISTILL_DECODE_THREADS: "auto" measures 1 and 2 threads (where 2 cores are ours); a number
    fixes the count; None (0) leaves torch's default alone (no chooser)."""
    if setting is None:
        return None
    if setting == "auto":
        return ThreadChooser((1, 2) if available_cores() >= 2 else (1,))
    return ThreadChooser((int(setting),))


def prefill_chooser(setting: int | str | None) -> ThreadChooser | None:
    """The prefill's own chooser where decoding's is "auto" on two cores (two threads first: the faster
    on an idle CPU); None where the count is fixed or one core is ours (a prefill then keeps decoding's)."""
    if setting != "auto" or available_cores() < 2:
        return None
    return ThreadChooser((2, 1), far_every=PREFILL_FAR_EVERY, explore_every=PREFILL_EXPLORE_EVERY, probe_steps=1,
                         initial_samples=1, window=1)


def timed_prefill(choose: ThreadChooser, rows: int, run: Callable[[], T], *, timed: bool = True) -> T:
    """`run()`, a prefill pass of `rows` rows, on the count `choose` picks for prefills; its seconds per
    row (plus the fixed part) are recorded unless it is small, large or `timed` is false (the pass also
    did one-off work). A pass not timed runs on the faster count measured so far (two threads before
    both are measured)."""
    import torch

    timed = timed and PREFILL_TIMED_ROWS <= rows <= PREFILL_PROBE_ROWS
    wanted = choose.choose(1) if timed else (choose.best(1) or choose.candidates[0])
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    start = time.perf_counter()
    result = run()
    if timed:
        choose.record(1, wanted, (time.perf_counter() - start) / (rows + PREFILL_FIXED_ROWS))
    return result
