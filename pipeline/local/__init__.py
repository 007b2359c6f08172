"""The embedded OpenAI-compatible backend (SmolLM2 serving + LoRA fine-tuning). See runtime.py.

OpenMP threads that spin while waiting make torch many times slower when the CPU is shared (the
trainer subprocess, the UI, other processes): measured here under load, one decode step took 8x longer
with 2 spinning threads than with 1. Sleeping waits avoid that; this takes effect when torch has not
been imported yet (set OMP_WAIT_POLICY=ACTIVE to opt out).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
