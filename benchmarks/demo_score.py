"""Time the demo's compare and benchmark steps alone, on a fine-tuned model a demo run already made.

    .venv/bin/python benchmarks/demo_story.py person            # prints its workspace at the end
    .venv/bin/python benchmarks/demo_score.py WORKSPACE [--rounds 2]
Runs on a fresh copy of WORKSPACE (the run's own results are untouched) from the checkout it is started
in, so a baseline checkout can run the same command on the same model (docs/bench/demo.md). Set
DISTILL_MODEL_DIR to reuse an already converted SmolLM2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def copy_workspace(workspace: Path) -> Path:
    """A fresh copy of a demo run's workspace made the DISTILL_HOME of this process (before the pipeline
    is imported), with this checkout's pipeline first on the import path."""
    home = Path(tempfile.mkdtemp(prefix="distill-demo-score-"))
    shutil.copytree(workspace, home, dirs_exist_ok=True)
    os.environ["DISTILL_HOME"] = str(home)
    sys.path.insert(0, str(Path.cwd()))
    return home


def scored_run(home: Path) -> Any:
    """The demo run of the workspace's visitor, with the fine-tuned model its last job made."""
    from pipeline.demo import DemoRun

    jobs = sorted((home / "local-backend" / "jobs").glob("*/job.json"))
    if not jobs:
        raise SystemExit("the workspace holds no fine-tuning job: run benchmarks/demo_story.py person first")
    run = DemoRun("person", next(p.name for p in (home / "visitors").iterdir() if p.is_dir()))
    run.fine_tuned_model = json.loads(jobs[-1].read_text())["fine_tuned_model"]
    return run


def main(workspace: Path, rounds: int) -> None:
    home = copy_workspace(workspace)
    from pipeline.demo import run_step
    from pipeline.endpoints import SessionSettings

    run = scored_run(home)
    settings = SessionSettings()
    started = time.perf_counter()
    run_step(run, "compare", settings)  # also starts the local backend and loads the model
    print(f"compare (with the backend's start): {time.perf_counter() - started:.1f} s", flush=True)
    for n in range(rounds):
        result = run_step(run, "benchmark", settings)
        board = [(r["label"], f"{r['correct']}/{r['total']}", r["output_tokens"]) for r in result.details["results"]]
        print(f"benchmark round {n + 1}: {result.seconds} s {board} load {os.getloadavg()[0]:.1f}", flush=True)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    main(args.workspace, args.rounds)
