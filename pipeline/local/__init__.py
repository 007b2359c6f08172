"""The embedded OpenAI-compatible backend (SmolLM2 serving + LoRA fine-tuning). See runtime.py.

How torch's OpenMP threads wait between two parallel ops, set here because it takes effect only when
torch has not been imported yet. Spinning waits made torch many times slower when the CPU is shared
(the trainer subprocess, the UI, other visitors): one decode step took 8x longer with 2 spinning
threads than with 1, and even a short spin (GOMP_SPINCOUNT=10000) made two-thread steps 2-9x slower
than sleeping waits while another process used both cores. So threads sleep at once (PASSIVE).

On a machine that decodes alone, the short spin is faster: a decode step runs ~150 short parallel ops
and waking a sleeping second thread for each costs about a quarter of a two-thread step (one stream
~100 tokens/s vs 64-87 natively, docs/bench/backend.md). `GOMP_SPINCOUNT=10000` at launch opts in (the
training subprocess keeps sleeping waits, standby.py `trainer_env`); an OMP_WAIT_POLICY set at launch is kept.
"""

import os

if "GOMP_SPINCOUNT" not in os.environ:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
