"""Batch mode at 1,000 and 10,000 requests, side by side: build, upload, parse (collect).

    .venv/bin/python benchmarks/batch_scale.py [--sizes 1000,10000]

One run starts the embedded backend with the tiny model (its own temporary workspace), then runs each
size in its own process (fresh workspace, own peak memory) that calls pipeline.batch the way the CLI
does:

- build: `build_generation` of the reasoning template (every body made by the interactive path's
  code, tokens counted for the estimate), the request file written streamed;
- upload: the request file to the local backend's /v1/files with purpose "batch" (real HTTP, the
  openai SDK; the backend checks every line);
- parse: a results file in OpenAI's output format with one distinct, schema-valid answer per request
  (as the backend would write after running them; running 10,000 requests through even the tiny model
  is not what is measured) is imported and collected for a visitor: every line through the one parser,
  the structured parse, build_examples, the near-duplicate check against everything kept so far, and
  the appends to the run file and the visitor's draft.

Seconds are wall time; peak memory is the process's VmHWM reset before each step
(/proc/self/clear_refs), in MB, and how far above the resident size before the step it went
(`growth_mb`: what the step itself held). Prints one JSON object with each size's figures and the ratios
10,000 : 1,000; figures go to docs/bench/batch.md and docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VISITOR = "bench-visitor-01"


def _mem() -> tuple[int, int]:
    """(resident MB now, peak resident MB since the last reset)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def step(fn):  # noqa: ANN001, ANN201 - a tiny timing helper
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _mem()[0]
    started = time.perf_counter()
    value = fn()
    seconds = round(time.perf_counter() - started, 3)
    peak = _mem()[1]
    return value, {"seconds": seconds, "peak_mb": peak, "growth_mb": peak - before}


def results_file(requests: Path, out: Path) -> None:
    """An OpenAI-format output file answering every request with a distinct reasoning problem."""
    from tests.fakes.fake_openai import WORDS

    rng = random.Random(0)
    with requests.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for n, line in enumerate(src):
            cid = json.loads(line)["custom_id"]
            answer = {"question": " ".join(rng.sample(WORDS, 12)).capitalize() + "?",
                      "reasoning": " ".join(rng.sample(WORDS, 30)) + ".", "final_answer": str(rng.randint(1, 999))}
            body = {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                 "message": {"role": "assistant", "content": json.dumps(answer), "refusal": None}}],
                    "usage": {"prompt_tokens": 400, "completion_tokens": 80, "total_tokens": 480}}
            dst.write(json.dumps({"id": f"batch_req_{n}", "custom_id": cid,
                                  "response": {"status_code": 200, "request_id": f"r{n}", "body": body},
                                  "error": None}) + "\n")


def side(size: int, base_url: str, api_key: str, model: str) -> dict:
    import openai

    from pipeline import batch, drafts
    from pipeline.generate import GenerationConfig, load_template
    from pipeline.generate.costing import requests_needed

    n = next(k for k in range(int(size / 1.1) - 2, size + 1) if requests_needed(k, 1) >= size)
    out = Path(os.environ["DISTILL_HOME"]) / "run.jsonl"
    config = GenerationConfig(template=load_template("reasoning"), n=n, out=out, model=model)
    record, build = step(lambda: batch.build_generation(config, visitor=VISITOR, endpoint="local"))
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=600)

    def upload() -> str:
        with record.requests_path.open("rb") as fh:
            return client.files.create(file=fh, purpose="batch").id
    _, up = step(upload)
    results = record.folder.parent / "results.jsonl"
    results_file(record.requests_path, results)

    def parse() -> object:
        batch.import_results(record, results)
        return batch.collect(record)
    report, parsed = step(parse)
    return {"requests": record.requests, "file_mb": round(record.requests_path.stat().st_size / 2**20, 2),
            "build": build, "upload": up, "parse": parsed, "appended": report.appended,
            "duplicates": report.duplicates, "draft_rows": len(drafts.draft_lines(VISITOR))}


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
            "python": platform.python_version(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--side", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(side(args.side, args.base_url, args.api_key, args.model)))
        return
    from pipeline.local.runtime import start_server

    sizes = [int(s) for s in args.sizes.split(",")]
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-backend-") as root:
        handle = start_server(root=Path(root), tiny=True)
        try:
            handle.wait_ready(timeout=600)
            model = handle.client().models.list().data[0].id
            before = machine()
            for size in sizes:
                with tempfile.TemporaryDirectory(prefix="bench-batch-home-") as home:
                    env = {**os.environ, "DISTILL_HOME": home}
                    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--side", str(size),
                                           "--base-url", handle.base_url, "--api-key", handle.api_key,
                                           "--model", model], cwd=ROOT, env=env, capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"size {size} failed:\n{done.stderr[-3000:]}")
                figures[str(size)] = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            handle.stop()
    small, big = figures[str(sizes[0])], figures[str(sizes[-1])]
    ratios = {k: {m: round(big[k][m] / small[k][m], 2) for m in ("seconds", "peak_mb", "growth_mb") if small[k][m]}
              for k in ("build", "upload", "parse")}
    print(json.dumps({"machine": before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
                      "sizes": figures, f"ratio_{sizes[-1]}_to_{sizes[0]}": ratios}, indent=1))


if __name__ == "__main__":
    main()
