"""Fictional-person fine-tune on the local backend, through the openai SDK, measured end to end.

Uploads data/samples/person_train.jsonl, fine-tunes SmolLM2-135M-Instruct with "auto"
hyperparameters, then asks the held-out reworded questions of data/benchmarks/person_bench.jsonl to
the base and the fine-tuned model (greedy). Prints wall time, training tokens/s and accuracies.

    .venv/bin/python benchmarks/local_train.py [--tiny] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def score(client, model: str, bench: list[dict]) -> tuple[int, list[str]]:
    def ask(item: dict) -> str:
        return client.chat.completions.create(model=model, messages=item["messages"], temperature=0,
                                              max_tokens=60).choices[0].message.content

    with ThreadPoolExecutor(4) as pool:  # the backend decodes concurrent requests as one batch
        answers = list(pool.map(ask, bench))
    return sum(b["expected"].lower() in a.lower() for b, a in zip(bench, answers, strict=True)), answers


def run(client, train_path: Path, bench_path: Path, log=print) -> dict:
    bench = [json.loads(line) for line in bench_path.read_text().splitlines() if line.strip()]
    base_id = next(m.id for m in client.models.list() if not m.id.startswith("ft:"))
    start = time.monotonic()
    with open(train_path, "rb") as fh:
        upload = client.files.create(file=(train_path.name, fh), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=upload.id, model=base_id, suffix="person", seed=7)
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(2)
        job = client.fine_tuning.jobs.retrieve(job.id)
    wall = time.monotonic() - start
    if job.status != "succeeded":
        raise SystemExit(f"fine-tune {job.status}: {job.error}")
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=1000))
    metrics = sorted((e.data for e in events if e.type == "metrics"), key=lambda d: d["step"])
    started = min(e.created_at for e in events if e.message == "Fine-tuning job started")
    finished = max(e.created_at for e in events if e.type == "metrics")
    base_right, base_answers = score(client, base_id, bench)
    ft_right, ft_answers = score(client, job.fine_tuned_model, bench)
    result = {"examples": sum(1 for line in train_path.read_text().splitlines() if line.strip()),
              "hyperparameters": job.hyperparameters.model_dump(), "steps": metrics[-1]["step"],
              "first_loss": metrics[0]["train_loss"], "last_loss": metrics[-1]["train_loss"],
              "trained_tokens": job.trained_tokens, "wall_time_s": round(wall, 1),
              "train_tokens_per_s": round(job.trained_tokens / max(1, finished - started), 1),
              "bench_items": len(bench), "base_correct": base_right, "fine_tuned_correct": ft_right,
              "fine_tuned_model": job.fine_tuned_model,
              "samples": [{"q": b["messages"][-1]["content"], "expected": b["expected"], "base": ba, "fine_tuned": fa}
                          for b, ba, fa in list(zip(bench, base_answers, ft_answers, strict=True))[:4]]}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from pipeline.local.runtime import start_server

    handle = start_server(root=Path(tempfile.mkdtemp(prefix="distill-bench-")), tiny=args.tiny)
    handle.wait_ready(600)
    try:
        result = run(handle.client(timeout=600), ROOT / "data/samples/person_train.jsonl",
                     ROOT / "data/benchmarks/person_bench.jsonl")
    finally:
        handle.stop()
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
