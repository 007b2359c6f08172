"""Is chat still responsive while the local backend runs a batch? One run, side by side.

Times a chat completion (greedy, --tokens long) on an idle backend and while a /v1/batches batch runs,
with the batch runner as shipped (IN_FLIGHT batch requests at low priority) and with
--other-in-flight batch requests allowed in the engine instead; rounds alternate so all see the same load.
Also reports the batch's throughput without chat (requests finished per second, --rate-requests of them). Real openai SDK
over HTTP; the tiny random model by default (--real: SmolLM2-135M-Instruct).

    .venv/bin/python benchmarks/batch_priority.py [--rounds 3] [--tokens 32] [--real] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DISTILL_MODEL_DIR", os.path.join(tempfile.gettempdir(), "distill-studio-models"))
MODEL = "SmolLM2-135M-Instruct"


def _machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    return {"cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
            "load_avg": os.getloadavg()}


def _chat_seconds(client, tokens: int) -> float:
    start = time.perf_counter()
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Tell me about rivers."}],
                                   max_tokens=tokens, temperature=0)
    return time.perf_counter() - start


def _start_batch(client, n: int, tokens: int) -> str:
    lines = [{"custom_id": f"b-{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": MODEL, "max_tokens": tokens, "seed": i,
                       "messages": [{"role": "user", "content": f"Write about topic {i}."}]}} for i in range(n)]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    file = client.files.create(file=("bench.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    while client.batches.retrieve(batch.id).request_counts.completed < 1:
        time.sleep(0.05)
    return batch.id


def _during(client, in_flight: int, args) -> tuple[float, float]:
    """(chat seconds during the batch, the batch's requests per second before the chat) with
    `in_flight` batch requests allowed in the engine."""
    from pipeline.local import batches

    batches.IN_FLIGHT = in_flight
    batch_id = _start_batch(client, args.batch_requests, args.tokens)
    t0, done0 = time.perf_counter(), client.batches.retrieve(batch_id).request_counts.completed
    while (done := client.batches.retrieve(batch_id).request_counts.completed) < done0 + args.rate_requests:
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    seconds = _chat_seconds(client, args.tokens)
    client.batches.cancel(batch_id)
    while client.batches.retrieve(batch_id).status != "cancelled":
        time.sleep(0.05)
    return seconds, (done - done0) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--batch-requests", type=int, default=400)
    parser.add_argument("--other-in-flight", type=int, default=4)
    parser.add_argument("--rate-requests", type=int, default=8, help="batch requests timed for the throughput")
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from pipeline.local import batches
    from pipeline.local.runtime import start_server

    shipped = batches.IN_FLIGHT
    handle = start_server(root=Path(tempfile.mkdtemp(prefix="batch-bench-")), tiny=not args.real)
    handle.wait_ready(timeout=900)
    client = handle.client(timeout=600)
    _chat_seconds(client, args.tokens)  # warm-up
    idle, ours, other, ours_rate, other_rate = [], [], [], [], []
    try:
        for _ in range(args.rounds):
            idle.append(_chat_seconds(client, args.tokens))
            seconds, rate = _during(client, shipped, args)
            ours.append(seconds)
            ours_rate.append(rate)
            seconds, rate = _during(client, args.other_in_flight, args)
            other.append(seconds)
            other_rate.append(rate)
    finally:
        batches.IN_FLIGHT = shipped
        handle.stop()
    med = statistics.median
    result = {"machine": _machine(), "model": "SmolLM2-135M-Instruct" if args.real else "tiny random",
              "chat_tokens": args.tokens, "rounds": args.rounds,
              "chat_s": {"idle": med(idle), f"batch_in_flight_{shipped}": med(ours),
                         f"batch_in_flight_{args.other_in_flight}": med(other)},
              "chat_ratio_to_idle": {f"in_flight_{shipped}": med(ours) / med(idle),
                                     f"in_flight_{args.other_in_flight}": med(other) / med(idle)},
              "batch_requests_per_s": {f"in_flight_{shipped}": med(ours_rate),
                                       f"in_flight_{args.other_in_flight}": med(other_rate)},
              "load_avg_after": os.getloadavg()}
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
