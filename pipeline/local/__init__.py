"""The embedded OpenAI-compatible backend (SmolLM2 serving + LoRA fine-tuning). See runtime.py.

How torch's OpenMP threads wait between two parallel ops, set here because it takes effect only when
torch has not been imported yet. A decode step runs ~150 short parallel ops; with two threads, waking a
sleeping second thread for each costs about a quarter of a step. So the decoder's threads spin briefly
first (`GOMP_SPINCOUNT=10000`, ~0.1 ms, then sleep), measured side by side with sleeping at once
(`benchmarks/decode_waits.py`, docs/bench/backend.md):
- idle machine, the engine's own thread choice (the default): one stream 64.0 vs 44.6 tokens/s,
  three streams 125.3 vs 94.5;
- another process keeping both cores busy: 43.9 vs 42.4 and 81.6 vs 89.3, and that neighbour did
  as much work beside either (418 vs 386 matmuls/s). The engine times its steps and falls back to one
  thread, where no thread waits.
A fixed count of two or more threads (`DISTILL_DECODE_THREADS=2`, or 0 = torch's default) cannot fall
back: there the spin made two-thread steps 3-9x slower under contention (9.7 vs 36.3 tokens/s), so
threads sleep at once (`OMP_WAIT_POLICY=PASSIVE`). Wait settings given at launch are kept as they are,
and the training subprocess always sleeps (standby.py `trainer_env`: measured, a spin made its two
threads 1.7-2.3x slower beside a chat, and up to 1.9x slower alone under the AVX2 knobs).
"""

import os

from pipeline.config import DECODE_THREADS

SPINCOUNT = "10000"

if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    if os.environ.get(DECODE_THREADS.name, "auto").strip().lower() in ("", "auto", "1"):
        os.environ["GOMP_SPINCOUNT"] = SPINCOUNT  # the engine picks 1 or 2 threads per step by timing them
    else:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
