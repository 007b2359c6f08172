"""Base and fine-tuned requests decoded in one pass per step (the engine now) vs one pass per model (before).

Two cases the app runs, with SmolLM2-135M-Instruct in the engine's weight format for this CPU and a LoRA
adapter (r=16 on every projection, random non-zero weights: the speed does not depend on what it learned):
  * panes: the Chat tab's three panes on the embedded backend: base, fine-tuned, and the teacher (the
    same base model): before, a pass of 2 base rows then a pass of 1 fine-tuned row per step;
  * score: the demo's held-out benchmark: 18 questions for the base and 18 for the fine-tuned model,
    prefilled and decoded together: before, two prefills and two passes of 18 rows per step.
Both groupings run in the same process on the same decoder, alternating rounds so that both see the same
machine load (prefills over fastlm.PREFILL_ROWS rows are split in both); threads as the engine picks them (pipeline/local/threads.py), and with one fixed thread,
whose CPU time per step is the work, which other processes slow much less than the wall time. Also counts
the rows whose greedy tokens are the same in both groupings (a pass's row count picks the kernel, see
pipeline/local/qweights.py, so rounding may differ where the passes are of different sizes).

    .venv/bin/python benchmarks/shared_pass.py [--rounds 3] [--steps 32] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine_facts import machine  # noqa: E402
from benchmarks.random_adapter import save_random_adapter  # noqa: E402

CASES = {"panes": (["base", "tuned", "base"], 40), "score": (["base"] * 18 + ["tuned"] * 18, 60)}


def _passes(decoders: dict, rows: list[str], caches: list, feeds: list[list[int]], shared: bool):
    """One forward of every row: a single pass (shared) or one per decoder (the old grouping); logits in
    row order."""
    import torch

    base = decoders["base"]
    parts = {name: [i for i, r in enumerate(rows) if r == name] for name in dict.fromkeys(rows)}
    if shared:
        out = base.forward_together([(decoders[name], [(feeds[i], caches[i]) for i in idx])
                                     for name, idx in parts.items()])
    else:
        out = torch.cat([decoders[name].forward([(feeds[i], caches[i]) for i in idx]) for name, idx in parts.items()])
    order = [i for idx in parts.values() for i in idx]
    logits = torch.empty_like(out)
    logits[order] = out
    return logits


def _run(decoders: dict, case: str, shared: bool, threads, steps: int) -> dict:
    """Prefill then `steps` greedy decode steps of one case: prefill ms, decode tokens/s, this thread's CPU
    ms per step, and each row's tokens."""
    import torch

    rows, prompt_len = CASES[case]
    fixed = isinstance(threads, int)
    torch.set_num_threads(threads if fixed else 1)
    caches = [decoders[name].new_cache() for name in rows]
    prompts = [list(range(1000 + 7 * i, 1000 + 7 * i + prompt_len)) for i in range(len(rows))]
    began = time.perf_counter()
    logits = _passes(decoders, rows, caches, prompts, shared)
    prefill_ms = (time.perf_counter() - began) * 1000
    start, cpu = time.perf_counter(), time.thread_time()
    tokens: list[list[int]] = [[] for _ in rows]
    for _ in range(steps):
        feeds = [[int(t)] for t in logits.argmax(-1)]
        for row, feed in zip(tokens, feeds, strict=True):
            row.extend(feed)
        if fixed:
            logits = _passes(decoders, rows, caches, feeds, shared)
        else:
            logits = threads.run(len(rows), lambda feeds=feeds: _passes(decoders, rows, caches, feeds, shared))
    seconds = time.perf_counter() - start
    return {"prefill_ms": prefill_ms, "tok_s": len(rows) * steps / seconds,
            "cpu_ms_per_step": (time.thread_time() - cpu) * 1000 / steps, "tokens": tokens}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from pipeline.local import precision, threads, weights
    from pipeline.local.engine import decode_format
    from pipeline.local.fastlm import FastLlama

    model_dir = weights.base_model_dir()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    dtype, kind = decode_format()
    base = FastLlama(model, dtype=dtype, weights=kind)
    adapter = save_random_adapter(model, Path(tempfile.mkdtemp()) / "adapter")
    decoders = {"base": base, "tuned": base.with_adapter(adapter)}
    result: dict = {"machine": machine(), "precision": precision.summary(), "weights": kind, "steps": args.steps,
                    "rounds": args.rounds, "cases": {}}
    samples: dict[str, list[dict]] = {}
    same_rows: dict[str, list[int]] = {}  # case -> [rows with the same greedy tokens, rows compared]
    for _ in range(args.rounds):
        for case in CASES:
            for label, thread_setting in (("1thr", 1), ("auto", "auto")):
                for shared in (False, True):
                    chooser = threads.chooser(thread_setting) if thread_setting == "auto" else thread_setting
                    run = _run(decoders, case, shared, chooser, args.steps)
                    samples.setdefault(f"{case}_{label}_{'shared' if shared else 'per_model'}", []).append(run)
                old, new = (samples[f"{case}_{label}_{g}"][-1]["tokens"] for g in ("per_model", "shared"))
                tally = same_rows.setdefault(case, [0, 0])
                tally[0] += sum(a == b for a, b in zip(old, new, strict=True))
                tally[1] += len(old)
    for key, runs in samples.items():
        result["cases"][key] = {metric: round(statistics.median(r[metric] for r in runs), 1)
                                for metric in ("prefill_ms", "tok_s", "cpu_ms_per_step")}
    result["same_greedy_rows"] = {case: f"{same}/{total}" for case, (same, total) in same_rows.items()}
    result["machine"]["load_average_at_end"] = os.getloadavg()
    c = result["cases"]
    parts = []
    for case in CASES:
        for label in ("auto", "1thr"):
            old, new = c[f"{case}_{label}_per_model"], c[f"{case}_{label}_shared"]
            parts.append(f"{case} {label}: {old['tok_s']} -> {new['tok_s']} tok/s ({new['tok_s'] / old['tok_s']:.2f}x), "
                         f"prefill {old['prefill_ms']} -> {new['prefill_ms']} ms")
    result["summary"] = (f"{result['machine']['cpu_capability']}, {kind}, medians of {args.rounds} rounds, per model "
                         f"-> one pass: " + "; ".join(parts) + f"; same greedy tokens {result['same_greedy_rows']}")
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
