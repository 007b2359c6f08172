"""The demo's decoding steps on the embedded backend, split into prefill passes and decode steps.

    .venv/bin/python benchmarks/demo_story.py person            # prints its workspace at the end
    .venv/bin/python benchmarks/prefill_passes.py WORKSPACE [--json OUT]
    .venv/bin/python benchmarks/prefill_passes.py --threads     # prefill passes alone, 2 vs 1 threads

Runs, from the checkout it is started in (so a baseline checkout runs the same command on the same
model), the person demo's load + augment steps in a fresh workspace, then the compare + benchmark steps
on a copy of WORKSPACE's fine-tuned model (as benchmarks/demo_score.py), timing inside the engine every
prefill pass (its prompts, the rows it computed, its thread count) and every decode step. Reports the
steps' wall seconds, the seconds in prefill passes and in decode steps, and the positions the prefix
store gave instead of computing (none before it existed). `--threads` times prefill passes of 1, 8 and 36
benchmark prompts and one 264-token prompt on two and on one thread, alternating. Set DISTILL_MODEL_DIR
to reuse an already converted SmolLM2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any


def _trace_engine() -> dict[str, list]:
    """Wrap the engine's prefill and decode step to record their seconds (this checkout's engine)."""
    import torch

    from pipeline.local import engine as engine_module

    trace: dict[str, list] = {"prefill": [], "step": []}
    start, step = engine_module.Engine._start, engine_module.Engine._step

    def timed_start(self, requests):  # noqa: ANN001, ANN202
        began = time.perf_counter()
        start(self, requests)
        if requests:
            trace["prefill"].append({"prompts": len(requests), "tokens": sum(len(r.prompt_ids) for r in requests),
                                     "s": round(time.perf_counter() - began, 3),
                                     "threads_after": torch.get_num_threads()})

    def timed_step(self):  # noqa: ANN001, ANN202
        rows = len(self._stepping())
        began = time.perf_counter()
        step(self)
        if rows:
            trace["step"].append({"rows": rows, "s": time.perf_counter() - began})

    engine_module.Engine._start, engine_module.Engine._step = timed_start, timed_step
    return trace


def _summary(label: str, wall: float, trace: dict[str, list], reused: int | None) -> dict[str, Any]:
    prefill, steps = trace["prefill"], trace["step"]
    return {"step": label, "wall_s": round(wall, 2), "prefill_s": round(sum(p["s"] for p in prefill), 2),
            "prefill_passes": [(p["prompts"], p["tokens"], p["s"]) for p in prefill],
            "decode_steps": len(steps), "decode_s": round(sum(s["s"] for s in steps), 2),
            "reused_positions": reused}


def demo_steps(workspace: Path) -> list[dict[str, Any]]:
    from demo_score import copy_workspace, scored_run  # this folder's: the same copy and run

    home = copy_workspace(workspace)
    trace = _trace_engine()
    from pipeline.demo import DemoRun, run_step
    from pipeline.endpoints import SessionSettings
    from pipeline.local.runtime import ensure_local_backend

    scored = scored_run(home)  # before this benchmark adds its own visitor
    settings = SessionSettings()
    handle = ensure_local_backend()
    handle.wait_ready()
    backend_engine = handle.app.state.backend.engine

    def reused() -> int | None:
        store = getattr(backend_engine, "_prefixes", None)
        return None if store is None else store.reused_positions

    rows = []
    fresh = DemoRun("person", "prefill_passes_visitor")  # its own draft: the augment step's input
    run_step(fresh, "load", settings)
    for name, run in (("augment", fresh), ("compare", scored), ("benchmark", scored)):
        for kind in trace.values():
            kind.clear()
        before = reused()
        began = time.perf_counter()
        result = run_step(run, name, settings)
        after = reused()
        rows.append(_summary(name, time.perf_counter() - began, trace, None if after is None else after - before))
        if name == "benchmark":
            rows[-1]["scores"] = [(r["label"], r["correct"], r["total"]) for r in result.details["results"]]
    shutil.rmtree(home, ignore_errors=True)
    return rows


def prefill_threads() -> list[dict[str, Any]]:
    sys.path.insert(0, str(Path.cwd()))
    import torch

    from pipeline.local.engine import load_fast, load_tokenizer_fast

    folder = Path(os.environ.get("DISTILL_MODEL_DIR", "")) / "SmolLM2-135M-Instruct"
    fast, tokenizer = load_fast(folder), load_tokenizer_fast(folder)
    prompt = list(tokenizer.apply_chat_template(
        [{"role": "system", "content": "You are a helpful assistant."},
         {"role": "user", "content": "What year appears on Ottoline Crumwell's birth certificate?"}],
        add_generation_prompt=True, tokenize=True, return_dict=False))
    fast.forward([(prompt, fast.new_cache()) for _ in range(10)])  # the dense copies, as a demo has them
    shapes = {"1 prompt": [prompt], "8 prompts": [prompt] * 8, "36 prompts": [prompt] * 36,
              "1 long prompt": [prompt * 8]}
    rows = []
    for label, prompts in shapes.items():
        for threads in (2, 1, 2, 1):
            torch.set_num_threads(threads)
            fast.forward([(p, fast.new_cache()) for p in prompts])  # warm at this count
            began = time.perf_counter()
            fast.forward([(p, fast.new_cache()) for p in prompts])
            rows.append({"pass": label, "rows": sum(map(len, prompts)), "threads": threads,
                         "ms": round(1000 * (time.perf_counter() - began), 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path, nargs="?")
    parser.add_argument("--threads", action="store_true", help="prefill passes alone on 2 and 1 threads")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    if not args.threads and args.workspace is None:
        parser.error("give a workspace from benchmarks/demo_story.py, or --threads")
    import torch

    rows = prefill_threads() if args.threads else demo_steps(args.workspace)
    for row in rows:
        print(json.dumps(row), flush=True)
    facts = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
             "load_average": os.getloadavg(), "checkout": str(Path.cwd())}
    print(json.dumps(facts))
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
