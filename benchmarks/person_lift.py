"""The result to show: the fictional-person benchmark, base SmolLM2 vs the same model fine-tuned on
the person's Q&A, on the embedded local backend (real SmolLM2-135M-Instruct, CPU).

    .venv/bin/python benchmarks/person_lift.py [--epochs auto] [--lr-multiplier auto]

Starts `python -m pipeline serve` in a subprocess with its own workspace, fine-tunes through the
OpenAI SDK (/v1/files, /v1/fine_tuning/jobs, as the Fine-tune tab does), then scores both models
with the CLI: `python -m pipeline eval data/benchmarks/person_bench.jsonl --model BASE --model FT`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.local.runtime import spawn_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", default="auto")
    parser.add_argument("--lr-multiplier", default="auto", help="learning_rate_multiplier (base LR 1e-3)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="distill-person-lift-"))
    handle = spawn_server(home=home, tiny=False, timeout=600)
    try:
        client = handle.client()
        base = client.models.list().data[0].id
        train = ROOT / "data" / "samples" / "person_train.jsonl"
        with train.open("rb") as fh:
            file = client.files.create(file=fh, purpose="fine-tune")
        epochs = args.epochs if args.epochs == "auto" else int(args.epochs)
        job = client.fine_tuning.jobs.create(model=base, training_file=file.id, suffix="person",
                                             hyperparameters={"n_epochs": epochs, "learning_rate_multiplier":
                                                              args.lr_multiplier if args.lr_multiplier == "auto"
                                                              else float(args.lr_multiplier)})
        started = time.perf_counter()
        print(f"fine-tuning {base} on {train.name} (job {job.id})...", file=sys.stderr, flush=True)
        while job.status not in ("succeeded", "failed", "cancelled"):
            time.sleep(10)
            job = client.fine_tuning.jobs.retrieve(job.id)
            print(f"  {time.perf_counter() - started:5.0f} s: {job.status}", file=sys.stderr, flush=True)
        train_s = time.perf_counter() - started
        if job.status != "succeeded":
            raise SystemExit(f"fine-tune ended {job.status}: {job.error}")
        events = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data]
        cmd = [sys.executable, "-m", "pipeline", "eval", "data/benchmarks/person_bench.jsonl",
               "--model", base, "--model", job.fine_tuned_model, "--base-url", handle.base_url,
               f"--api-key={handle.api_key}", "--max-tokens", "64", "--concurrency", "2", "--json",
               "--out", str(home / "person_eval.json")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
        eval_s = time.perf_counter() - started
        print(proc.stderr[-2000:], file=sys.stderr)
        out = json.loads(proc.stdout)
        print(json.dumps({"base": base, "fine_tuned": job.fine_tuned_model, "train_s": round(train_s),
                          "hyperparameters": job.hyperparameters.model_dump() if job.hyperparameters else None,
                          "trained_tokens": job.trained_tokens, "eval_s": round(eval_s), "exit": proc.returncode,
                          "results": out["results"], "events_tail": events[:5],
                          "items": [{"q": it["question"], "expected": it["expected"],
                                     **{m: (a["correct"], a["answer"][:160]) for m, a in it["answers"].items()}}
                                    for it in out["items"]]}, indent=1))
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
