"""Decode speed of the local backend vs plain transformers `generate`, in one run.

Measures, for SmolLM2-135M-Instruct on this CPU:
  * baseline: `model.generate` (greedy, KV cache) for the base model and for base + LoRA adapter (peft);
  * the local backend over HTTP with the openai SDK (streaming): one stream, and three concurrent
    streams (total tokens/s of the three together), for the base and a fine-tuned model id.
The fine-tuned model uses a LoRA adapter (r=16, all linear layers, random non-zero weights: the speed
does not depend on what it learned) registered as a succeeded job, so the real serving path runs.

    .venv/bin/python benchmarks/local_decode.py [--tokens 128] [--json]

`--steps` instead times the decoder alone, in one process: the decoder of --baseline-rev (pipeline/local/
fastlm.py read from git; in the format the engine picks for this CPU, or int8 with --baseline-weights int8
for revisions before int4) against the current one in the engine's format, on the same weights,
alternating rounds so that both see the same machine load, with 1 and 2 threads and with the engine's
thread choice ("auto": pipeline/local/threads.py timing the steps, as the engine does); and compares their greedy answers on a fixed prompt set (exactly equal
answers, and top-1 agreement: the share of positions of the baseline's answer where the new decoder's
most likely next token is the same). With --adapter (a LoRA adapter folder, e.g. the fictional-person
fine-tune that benchmarks/local_train.py trains), also the fine-tuned model's answers to the 18 held-out
person questions: baseline = adapter merged, then int8 (the engine's old path); new = the engine's path now.

    .venv/bin/python benchmarks/local_decode.py --steps [--rounds 3] [--adapter DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Over HTTP the baseline (`generate`) runs with torch's usual OpenMP waits (spinning ~3 ms), its best case
# on an idle machine, and the backend in this process with them too. --steps keeps the backend's own
# default (a short spin where the engine chooses its threads, pipeline/local/__init__.py): what the app does.
if "--steps" not in sys.argv:
    os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")
from benchmarks.machine_facts import machine  # noqa: E402
from benchmarks.random_adapter import save_random_adapter  # noqa: E402

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
    from transformers import AutoModelForCausalLM

    from pipeline.local.store import Store, new_id

    store = Store(root)
    job_id = new_id("ftjob")
    model_id = f"ft:{base_id}:local:bench:{job_id}"
    store.create_job({"id": job_id, "object": "fine_tuning.job", "created_at": int(time.time()),
                      "status": "succeeded", "fine_tuned_model": model_id, "finished_at": int(time.time())})
    save_random_adapter(AutoModelForCausalLM.from_pretrained(model_dir), store.adapter_dir(job_id))
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


# main at the start of the 2026-11-30 22:05 session (int4 default); e9ca0eb (with --baseline-weights int8):
# before int4 weights / unmerged adapters; 6948e78: before the step rewrite.
BASELINE_REV = "4b6fcd0"
PERSON_BENCH = ROOT / "data/benchmarks/person_bench.jsonl"
FIXED_PROMPTS = ["What is the capital of France?", "Write a haiku about autumn.",
                 "Explain photosynthesis in two sentences.", "List three uses of a paperclip.",
                 "Who wrote Romeo and Juliet?", "Translate 'good morning' into Spanish.", "What is 12 times 7?",
                 "Give me a tip for sleeping better.", "Describe the moon to a child.",
                 "Why is the sky blue?", "Name a famous painting and its painter.", "How do I boil an egg?"]


def _baseline_decoder(rev: str):
    """pipeline/local/fastlm.py as it was at `rev`, imported from git as its own module."""
    import importlib.util
    import subprocess

    source = subprocess.run(["git", "show", f"{rev}:pipeline/local/fastlm.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="distill-fastlm-")) / "fastlm_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("fastlm_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _step_rate(decoder, streams: int, threads, steps: int = 48, context: int = 64) -> tuple[float, float]:
    """(tokens/s, this thread's CPU ms per step) of `streams` sequences decoded together, after a
    `context`-token prefill each, on `threads` intra-op threads, or (a ThreadChooser) on what it picks
    per step, as the engine does. With one thread the CPU time is the step's work, which other
    processes on the machine slow much less than the wall time (they still share caches and memory)."""
    import torch

    fixed = isinstance(threads, int)
    torch.set_num_threads(threads if fixed else 1)
    caches = [decoder.new_cache() for _ in range(streams)]
    for cache in caches:
        decoder.forward([(list(range(1000, 1000 + context)), cache)])
    for _ in range(3):
        decoder.forward([([42], c) for c in caches])
    start, cpu = time.perf_counter(), time.thread_time()
    for _ in range(steps):
        if fixed:
            decoder.forward([([42], c) for c in caches])
        else:
            threads.run(streams, lambda: decoder.forward([([42], c) for c in caches]))
    return streams * steps / (time.perf_counter() - start), (time.thread_time() - cpu) * 1000 / steps


def _greedy(decoder, ids: list[int], tokens: int, eos: int) -> list[int]:
    cache = decoder.new_cache()
    logits, out = decoder.forward([(ids, cache)])[0], []
    while len(out) < tokens:
        out.append(int(logits.argmax()))
        if out[-1] == eos:
            break
        logits = decoder.forward([([out[-1]], cache)])[0]
    return out


def _agreement(decoder, ids: list[int], answer: list[int]) -> int:
    """Positions of `answer` where `decoder`, fed the answer so far, puts the same token first."""
    cache = decoder.new_cache()
    logits, same = decoder.forward([(ids, cache)])[0], 0
    for token in answer:
        same += int(logits.argmax()) == token
        logits = decoder.forward([([token], cache)])[0]
    return same


def steps_main(args: argparse.Namespace) -> dict:
    import statistics

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipeline.local import precision, threads, weights
    from pipeline.local.engine import decode_format
    from pipeline.local.fastlm import FastLlama

    model_dir = weights.base_model_dir()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dtype, kind = decode_format()
    baseline_module = _baseline_decoder(args.baseline_rev)
    old_kind = kind if args.baseline_weights == "engine" else args.baseline_weights
    old = baseline_module.FastLlama(model, dtype=dtype, weights=old_kind) if old_kind != "int8" else \
        baseline_module.FastLlama(model, int8=True)
    new = FastLlama(model, dtype=dtype, weights=kind)
    result = {"machine": machine(), "precision": precision.summary(), "baseline_rev": args.baseline_rev,
              "baseline_format": old_kind, "new_format": {"weights": kind, "dtype": str(dtype)}}
    rates: dict = {}
    cpu: dict = {}  # one thread: CPU ms per step
    choosers = {name: threads.ThreadChooser((1, 2)) for name in ("baseline", "new")}  # one per decoder, kept
    for _ in range(args.rounds):
        for count in (1, 2, "auto"):
            for streams in (1, 3):
                for name, decoder in (("baseline", old), ("new", new)):
                    used = count if count != "auto" else choosers[name]
                    rate, cpu_ms = _step_rate(decoder, streams, used)
                    rates.setdefault(f"{name}_{count}thr_{streams}streams", []).append(rate)
                    if count == 1:
                        cpu.setdefault(f"{name}_{streams}streams", []).append(cpu_ms)
    torch.set_num_threads(1)
    result["tok_s_median"] = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    result["tok_s_all_rounds"] = {k: [round(x, 1) for x in v] for k, v in rates.items()}
    result["cpu_ms_per_step_1thr_median"] = {k: round(statistics.median(v), 2) for k, v in cpu.items()}
    result["new_over_baseline"] = {k.removeprefix("new_"): round(statistics.median(v) / statistics.median(
        rates[k.replace("new_", "baseline_")]), 2) for k, v in rates.items() if k.startswith("new_")}
    equal = agree = positions = 0
    differing = []
    for prompt in FIXED_PROMPTS:
        ids = list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                 tokenize=True, return_dict=False))
        a, b = _greedy(old, ids, args.answer_tokens, tokenizer.eos_token_id), _greedy(new, ids, args.answer_tokens,
                                                                                     tokenizer.eos_token_id)
        equal += a == b
        agree += _agreement(new, ids, a)
        positions += len(a)
        if a != b:
            differing.append({"prompt": prompt, "baseline": tokenizer.decode(a), "new": tokenizer.decode(b)})
    result["greedy"] = {"prompts": len(FIXED_PROMPTS), "answer_tokens": args.answer_tokens,
                        "identical_answers": equal, "top1_agreement": round(agree / positions, 4),
                        "positions": positions, "differing": differing}
    if args.adapter:
        result["fine_tuned"] = _fine_tuned(args.adapter, model_dir, baseline_module if old_kind == "int8" else old,
                                           new, tokenizer)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    med = result["tok_s_median"]
    result["summary"] = (f"{result['machine']['cpu_capability']}, {kind}: 1 stream {med['baseline_1thr_1streams']} -> "
                         f"{med['new_1thr_1streams']} tok/s, 3 streams {med['baseline_1thr_3streams']} -> "
                         f"{med['new_1thr_3streams']} (1 thread); 2 threads: {med['baseline_2thr_1streams']} -> "
                         f"{med['new_2thr_1streams']}, {med['baseline_2thr_3streams']} -> {med['new_2thr_3streams']}; "
                         f"auto threads (the engine's choice): {med['baseline_autothr_1streams']} -> "
                         f"{med['new_autothr_1streams']}, {med['baseline_autothr_3streams']} -> "
                         f"{med['new_autothr_3streams']}; 1 thread CPU ms per step "
                         f"{result['cpu_ms_per_step_1thr_median']}; "
                         f"greedy identical {equal}/{len(FIXED_PROMPTS)}, top-1 agreement "
                         f"{result['greedy']['top1_agreement']:.1%}")
    return result


def _fine_tuned(adapter: str, model_dir: Path, baseline, new, tokenizer) -> dict:
    """The fine-tuned model's greedy answers to the held-out person questions, old path vs new
    (`baseline`: the old decoder itself where it applies adapters unmerged, else its module: merged, int8)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if hasattr(baseline, "with_adapter"):  # a baseline decoder that applies adapters unmerged
        old = baseline.with_adapter(Path(adapter))
    else:
        merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
                                           adapter).merge_and_unload()
        old = baseline.FastLlama(merged, int8=True)
    tuned = new.with_adapter(Path(adapter))
    bench = [json.loads(line) for line in PERSON_BENCH.read_text().splitlines() if line.strip()]
    out = {"questions": len(bench), "baseline_correct": 0, "new_correct": 0, "identical_answers": 0}
    agree = positions = 0
    for item in bench:
        ids = list(tokenizer.apply_chat_template(item["messages"], add_generation_prompt=True, tokenize=True,
                                                 return_dict=False))
        a, b = _greedy(old, ids, 60, tokenizer.eos_token_id), _greedy(tuned, ids, 60, tokenizer.eos_token_id)
        out["baseline_correct"] += item["expected"].lower() in tokenizer.decode(a).lower()
        out["new_correct"] += item["expected"].lower() in tokenizer.decode(b).lower()
        out["identical_answers"] += a == b
        agree += _agreement(tuned, ids, a)
        positions += len(a)
    out["top1_agreement"] = round(agree / positions, 4)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--steps", action="store_true", help="time the decoder alone: baseline vs current")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--answer-tokens", type=int, default=48)
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--baseline-weights", default="engine", choices=("engine", "int8"),
                        help="the baseline decoder's weights: the engine's format now, or int8 (revisions before int4)")
    parser.add_argument("--adapter", help="--steps: also compare a fine-tuned model (LoRA adapter folder)")
    args = parser.parse_args()
    if args.steps:
        print(json.dumps(steps_main(args), indent=None if args.json else 2))
        return 0
    from pipeline.local import weights
    from pipeline.local.runtime import start_server

    root = Path(tempfile.mkdtemp(prefix="distill-decode-"))
    model_dir = weights.base_model_dir()
    ft_id, adapter = fake_finetuned(root, model_dir, weights.BASE_MODEL_ID)
    result = {"machine": machine(), "tokens_per_request": args.tokens}
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


if __name__ == "__main__":
    sys.exit(main())
