"""Which thread count the engine's chooser ran each decode step on, under each estimate rule.

Tokens/s on this VM drift by 20-40% within a minute (docs/bench/backend.md), more than a chooser's
mistakes cost; the steps a rule spent on the count that was slower *in the same run* are a steadier
sign. For one stream and three decoded together, fresh choosers of each rule decode 320 steps in
turn in one process (the decoder of the app: `load_fast`, the process's wait settings), and the
script prints per rule: tokens/s, the steps on each count, the median step time on each, and the
first runs of consecutive steps on one count ([count, steps]).

Rules: "median5" = today's (pipeline/local/threads.py: each count's estimate the median of its last
WINDOW steps, the first INITIAL_SAMPLES of each before either is preferred); "ema_first3" = a running
average after the same first steps; "ema_first1" = the rule before both (a running average, the
first estimate one step's time).

    GOMP_SPINCOUNT=10000 DISTILL_MODEL_DIR=/tmp/distill-studio-models .venv/bin/python benchmarks/thread_choice.py [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = 320


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch  # after the caller's environment: OpenMP reads its wait settings when torch loads
    from machine_facts import machine

    from pipeline.local import threads, weights
    from pipeline.local.engine import load_fast

    decoder = load_fast(weights.base_model_dir())
    rules = {"median5": lambda: threads.ThreadChooser((1, 2)),
             "ema_first3": lambda: threads.ThreadChooser((1, 2), window=0),
             "ema_first1": lambda: threads.ThreadChooser((1, 2), window=0, initial_samples=1)}
    rows = []
    for rnd in range(args.rounds):
        for streams in (1, 3):
            for name, make in rules.items():
                chooser = make()
                torch.set_num_threads(1)
                caches = [decoder.new_cache() for _ in range(streams)]
                for cache in caches:
                    decoder.forward([(list(range(1000, 1064)), cache)])
                for _ in range(3):  # unmeasured, as benchmarks/local_decode.py `_step_rate`
                    decoder.forward([([42], c) for c in caches])
                trace: list[tuple[int, float]] = []
                start = time.perf_counter()
                for _ in range(STEPS):
                    began = time.perf_counter()
                    chooser.run(streams, lambda caches=caches: decoder.forward([([42], c) for c in caches]))
                    trace.append((torch.get_num_threads(), (time.perf_counter() - began) * 1000))
                wall = time.perf_counter() - start
                runs: list[list[int]] = []
                for count, _ms in trace:
                    if runs and runs[-1][0] == count:
                        runs[-1][1] += 1
                    else:
                        runs.append([count, 1])
                row = {"round": rnd, "streams": streams, "rule": name, "tok_s": round(streams * STEPS / wall, 1),
                       "steps_on": {c: sum(1 for t, _ in trace if t == c) for c in (1, 2)},
                       "median_ms": {c: round(statistics.median(ms), 1) if (ms := [m for t, m in trace if t == c])
                                     else None for c in (1, 2)},
                       "runs": runs[:14]}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"machine": machine(), "rows": rows}, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
