"""Validation + token counting throughput vs tokenizing alone, on generated chat examples.

    .venv/bin/python benchmarks/validate_bench.py [--n 50000] [--repeat 3]

Baselines, measured in the same run on exactly the texts validation encodes (every value of every
message, roles included, as the data-prep notebook counts):
  * the tokenizer's own batch call (`encode_ordinary_batch`), and
  * a plain loop of `encode_ordinary` calls (faster here than the batch call for short texts).
Target: validation (all checks + duplicates + tokens + epochs + cost) >= 0.7x of tokenizing alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import tokens  # noqa: E402
from pipeline.dataset import to_jsonl, validate_examples, validate_file  # noqa: E402

_WORDS = ("the of and to in is you that it was for on are as with they at be this have from or one had by word "
         "but not what all were when your can said there use an each which she do how their if will up other "
         "about out many then them these so some her would make like him into time has look two more write go "
         "see number no way could people my than first water been call who oil its now find long down day did "
         "get come made may part riddle answer because therefore step total café naïve 東京 ∑ 42 3.14 1957")
WORDS = _WORDS.split(" ")
SYSTEMS = ["You are a helpful assistant that reasons step by step.",
           "You are Marv, a factual chatbot that is also sarcastic.", ""]


def text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def generate(n: int, seed: int = 0) -> list[dict]:
    """Chat examples like the app's: mostly one turn with a shared system prompt, some multi-turn."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        system = rng.choice(SYSTEMS)
        msgs = [{"role": "system", "content": system}] if system else []
        for _turn in range(1 if rng.random() < 0.8 else rng.randint(2, 4)):
            msgs.append({"role": "user", "content": text(rng, 8, 40) + "?"})
            msgs.append({"role": "assistant", "content": text(rng, 20, 120) + "\nFinal answer: " + text(rng, 1, 3)})
        out.append({"messages": msgs})
    return out


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    examples = generate(args.n)
    texts = [tokens.message_texts(ex["messages"]) for ex in examples]
    flat = [t for ts in texts for t in ts]
    print(f"{args.n:,} examples, {len(flat):,} texts, {sum(map(len, flat)) / 1e6:.1f} M characters; "
          f"nproc={os.cpu_count()}, CPU: {cpu_model()}, Python {platform.python_version()}")
    print(f"{'model (encoding, library)':52} {'examples/s':>12} {'x tokenize-batch':>17} {'x tokenize-loop':>16}")
    for model, lib in (("gpt-3.5-turbo-0125", "tiktoken"), ("gpt-4o-mini-2024-07-18", "bpe-openai")):
        counter = tokens.counter_for(model)
        enc = counter.encoder
        enc.encode_ordinary("warm up")
        t_batch = best_of(args.repeat, lambda enc=enc: enc.encode_ordinary_batch(flat))
        t_loop = best_of(args.repeat, lambda enc=enc: [enc.encode_ordinary(t) for t in flat])
        t_val = best_of(args.repeat, lambda model=model: validate_examples(examples, model))
        report = validate_examples(examples, model)
        rows = [(f"tokenize only: {lib} encode_ordinary_batch", t_batch),
                (f"tokenize only: {lib} encode_ordinary loop", t_loop),
                ("validate_examples (checks + tokens + cost)", t_val)]
        print(f"-- {model} ({counter.encoding}); {report.total_tokens:,} tokens, "
              f"{len(report.errors)} errors, ${report.estimated_cost_usd:,.2f} for {report.n_epochs} epoch(s)")
        for label, t in rows:
            print(f"   {label:49} {args.n / t:12,.0f} {t_batch / t:16.2f}x {t_loop / t:15.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        path.write_text(to_jsonl(examples), encoding="utf-8")
        size = path.stat().st_size / 1e6
        t_file = best_of(args.repeat, lambda: validate_file(path, "gpt-3.5-turbo-0125"))
        print(f"-- validate_file on the same data as a {size:.0f} MB JSONL file (read + parse + validate): "
              f"{args.n / t_file:,.0f} examples/s ({t_file:.2f} s)")


if __name__ == "__main__":
    main()
