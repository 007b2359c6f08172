"""Decode speed of the local backend vs plain transformers `generate`, in one run.

Measures, for SmolLM2-135M-Instruct on this CPU:
  * baseline: `model.generate` (greedy, KV cache) for the base model and for base + LoRA adapter (peft);
  * the local backend over HTTP with the openai SDK (streaming): one stream, and three concurrent
    streams (total tokens/s of the three together), for the base and a fine-tuned model id.
The fine-tuned model uses a LoRA adapter (r=16, all linear layers, random non-zero weights: the speed
does not depend on what it learned) registered as a succeeded job, so the real serving path runs.

    .venv/bin/python benchmarks/local_decode.py [--tokens 128] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The baseline runs with torch's usual (spinning) OpenMP waits, its best case on an idle machine;
# pipeline.local would otherwise default them to PASSIVE. The backend decodes on one thread either way.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")
PROMPTS = ["Write a long story about a dragon who learns to bake bread.",
           "Explain in detail how a steam engine works, step by step.",
           "Describe a walk through a busy city market, with many details."]


def baseline(model_dir: Path, adapter: Path, tokens: int) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    out = {}
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    for name, m in (("base", model), ("fine_tuned", PeftModel.from_pretrained(model, str(adapter)))):
        m.generate(ids, max_new_tokens=4, do_sample=False)  # warm-up
        start = time.perf_counter()
        m.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        out[name] = round(tokens / (time.perf_counter() - start), 1)
    return out


def fake_finetuned(root: Path, model_dir: Path, base_id: str) -> tuple[str, Path]:
    """A LoRA adapter registered as a succeeded job in the backend's store."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from pipeline.local.store import Store, new_id

    store = Store(root)
    job_id = new_id("ftjob")
    model_id = f"ft:{base_id}:local:bench:{job_id}"
    store.create_job({"id": job_id, "object": "fine_tuning.job", "created_at": int(time.time()),
                      "status": "succeeded", "fine_tuned_model": model_id, "finished_at": int(time.time())})
    torch.manual_seed(0)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), lora)
    peft_model.save_pretrained(store.adapter_dir(job_id))
    return model_id, store.adapter_dir(job_id)


def stream(client, model: str, prompt: str, tokens: int, out: list, i: int) -> None:
    start = first = None
    count = 0
    start = time.perf_counter()
    for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                max_tokens=tokens, temperature=0, stream=True,
                                                stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter()
        if chunk.usage:
            count = chunk.usage.completion_tokens
    out[i] = {"tokens": count, "start": start, "first": first, "end": time.perf_counter()}


def served(client, model: str, tokens: int) -> dict:
    runs: list = [None]
    stream(client, model, PROMPTS[0], 8, runs, 0)  # warm-up (loads/merges a fine-tuned model)
    stream(client, model, PROMPTS[0], tokens, runs, 0)
    one = runs[0]
    threads, runs = [], [None] * 3
    for i in range(3):
        threads.append(threading.Thread(target=stream, args=(client, model, PROMPTS[i], tokens, runs, i)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(r["tokens"] for r in runs)
    wall = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    return {"one_stream_decode_tok_s": round((one["tokens"] - 1) / (one["end"] - one["first"]), 1),
            "one_stream_incl_prefill_tok_s": round(one["tokens"] / (one["end"] - one["start"]), 1),
            "three_streams_total_tok_s": round(total / wall, 1),
            "three_streams_tokens": [r["tokens"] for r in runs], "one_stream_tokens": one["tokens"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from pipeline.local import weights
    from pipeline.local.runtime import start_server

    root = Path(tempfile.mkdtemp(prefix="distill-decode-"))
    model_dir = weights.base_model_dir()
    ft_id, adapter = fake_finetuned(root, model_dir, weights.BASE_MODEL_ID)
    result = {"machine": {"nproc": os.cpu_count(), "cpu": platform.processor() or _cpu_name(),
                          "load_average_at_start": os.getloadavg()}, "tokens_per_request": args.tokens}
    result["plain_generate_tok_s"] = baseline(model_dir, adapter, args.tokens)
    handle = start_server(root=root, tiny=False)
    try:
        handle.wait_ready(600)
        client = handle.client(timeout=600)
        result["local_backend"] = {"base": served(client, weights.BASE_MODEL_ID, args.tokens),
                                   "fine_tuned": served(client, ft_id, args.tokens)}
    finally:
        handle.stop()
    result["machine"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
