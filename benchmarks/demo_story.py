"""Time the guided demo end to end on the embedded backend (the calls the Start tab makes).

    .venv/bin/python benchmarks/demo_story.py person        # or: reasoning
Uses a fresh temporary workspace; set DISTILL_MODEL_DIR to reuse an already converted SmolLM2.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["DISTILL_HOME"] = tempfile.mkdtemp(prefix="distill-demo-bench-")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.demo import DemoRun, load_scenario, run_step  # noqa: E402
from pipeline.endpoints import SessionSettings  # noqa: E402


def main(name: str) -> None:
    settings, run, started = SessionSettings(), DemoRun(name, "benchmark_visitor_01"), time.perf_counter()
    for step in load_scenario(name).steps:
        result = run_step(run, step, settings, say=lambda m: print("   ", m, file=sys.stderr, flush=True))
        print(f"[{time.perf_counter() - started:6.1f} s] {step}: {result.summary} "
              f"(cost ${result.cost_usd}, OpenAI-equivalent ${result.equivalent_usd})", flush=True)
    print(f"workspace (for benchmarks/demo_score.py): {os.environ['DISTILL_HOME']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "person")
