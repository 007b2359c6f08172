"""The fictional-person story measured with a benchmark made from its own data (issue 15).

    .venv/bin/python benchmarks/person_heldout.py [--paraphrases 24] [--holdout 12] [--shots 3] [--out FILE]

On the embedded backend with the real SmolLM2-135M-Instruct (a `python -m pipeline serve`
subprocess with its own workspace), every step through the command line or the OpenAI SDK:
1. augment: `python -m pipeline generate --template paraphrase --source person_train.jsonl` (the
   local 135M model is the teacher), appended to the 53 hand-written examples;
2. `python -m pipeline bench make AUGMENTED --holdout N --out bench.jsonl --rest rest.jsonl --json`:
   whole groups (one fact's rewordings, which share its answer) leave the training data;
3. fine-tune the base model on rest.jsonl (/v1/files, /v1/fine_tuning/jobs; auto epochs);
4. `python -m pipeline eval bench.jsonl --model BASE --model FT --few-shot BASE --shots K
   --few-shot-from rest.jsonl --json`, and the same contestants on the shipped reworded benchmark
   (data/benchmarks/person_bench.jsonl) for comparison.
Prints one JSON object (also written to --out): the bench make report, timings, each scoreboard with
95% intervals, the McNemar comparisons and the verdicts, and the machine's facts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.local.runtime import spawn_server  # noqa: E402


def _cli(args: list[str], handle, env: dict) -> dict:  # noqa: ANN001
    cmd = [sys.executable, "-m", "pipeline", *args, "--json"]
    if args[0] in ("generate", "eval"):
        cmd += ["--base-url", handle.base_url, f"--api-key={handle.api_key}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def _machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
            "torch": torch.__version__, "loadavg_start": os.getloadavg()}


def _board(out: dict) -> dict:
    return {"results": [{k: r[k] for k in ("label", "correct", "total", "accuracy", "ci95", "median_latency_s",
                                           "cost_per_100_usd", "equivalent_cost_per_100_usd")} for r in out["results"]],
            "comparisons": out["comparisons"], "verdicts": out["verdicts"],
            "items": [{"q": it["question"], "expected": it["expected"],
                       **{m: [a["correct"], a["answer"][:120]] for m, a in it["answers"].items()}} for it in out["items"]]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paraphrases", type=int, default=24)
    parser.add_argument("--holdout", type=int, default=12)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--tiny", action="store_true", help="the tiny random model (a quick check of the script)")
    args = parser.parse_args()
    machine = _machine()
    home = Path(tempfile.mkdtemp(prefix="distill-person-heldout-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    handle = spawn_server(home=home, tiny=args.tiny, timeout=600)
    timings: dict[str, float] = {}
    try:
        client = handle.client()
        base = client.models.list().data[0].id
        sample = ROOT / "data" / "samples" / "person_train.jsonl"
        started = time.perf_counter()
        aug = home / "paraphrases.jsonl"
        gen = _cli(["generate", "--template", "paraphrase", "--source", str(sample), "--n", str(args.paraphrases),
                    "--out", str(aug), "--var", "ways=2", "--concurrency", "2"], handle, env)
        timings["augment_s"] = round(time.perf_counter() - started, 1)
        augmented = home / "person_augmented.jsonl"
        written = aug.read_text(encoding="utf-8") if aug.exists() else ""
        augmented.write_text(sample.read_text(encoding="utf-8") + written, encoding="utf-8")
        n_aug = sum(1 for line in written.splitlines() if line.strip())
        bench, rest = home / "person_heldout_bench.jsonl", home / "person_rest.jsonl"
        made = _cli(["bench", "make", str(augmented), "--holdout", str(args.holdout), "--out", str(bench),
                     "--rest", str(rest)], handle, env)
        started = time.perf_counter()
        with rest.open("rb") as fh:
            file = client.files.create(file=fh, purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=base, training_file=file.id, suffix="person-heldout")
        while job.status not in ("succeeded", "failed", "cancelled"):
            time.sleep(10)
            job = client.fine_tuning.jobs.retrieve(job.id)
            print(f"  {time.perf_counter() - started:5.0f} s: {job.status}", file=sys.stderr, flush=True)
        timings["finetune_s"] = round(time.perf_counter() - started, 1)
        if job.status != "succeeded":
            raise SystemExit(f"fine-tune ended {job.status}: {job.error}")
        contestants = ["--model", base, "--model", job.fine_tuned_model, "--few-shot", base, "--shots",
                       str(args.shots), "--few-shot-from", str(rest), "--max-tokens", "64", "--concurrency", "2"]
        started = time.perf_counter()
        held = _cli(["eval", str(bench), *contestants], handle, env)
        timings["eval_heldout_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        shipped = _cli(["eval", str(ROOT / "data" / "benchmarks" / "person_bench.jsonl"), *contestants], handle, env)
        timings["eval_shipped_s"] = round(time.perf_counter() - started, 1)
        report = {
            "machine": {**machine, "loadavg_end": os.getloadavg()}, "base": base, "fine_tuned": job.fine_tuned_model,
            "hyperparameters": job.hyperparameters.model_dump() if job.hyperparameters else None,
            "trained_tokens": job.trained_tokens, "paraphrases_written": n_aug,
            "generate": {k: gen.get(k) for k in ("written", "failed_parse", "requested") if k in gen},
            "augmented_examples": 53 + n_aug, "timings": timings,
            "bench_make": {**made, "benchmark": bench.name, "rest": rest.name},  # no temporary paths
            "heldout_benchmark": [json.loads(line) for line in bench.read_text().splitlines() if line.strip()],
            "heldout": _board(held), "shipped": _board(shipped),
        }
        text = json.dumps(report, indent=1, ensure_ascii=False)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
        print(text)
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
