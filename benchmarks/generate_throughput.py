"""Generation throughput against a fake OpenAI server with a fixed latency, in one run:

1. the engine at concurrency C (examples/s vs the ideal C / latency),
2. the one-request-at-a-time approach of the reference scripts (a plain loop over the sync client),
3. the engine again with a share of requests answered 429 (Retry-After) or 500: every requested
   example must be written, none twice.

    .venv/bin/python benchmarks/generate_throughput.py [--n 100] [--latency 0.5] [--concurrency 16]

The fake server runs in its own process so its event loop does not share the GIL with the client.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.generate import GenerationConfig, load_template, run_generation  # noqa: E402
from pipeline.generate.parse import parse_answer  # noqa: E402
from pipeline.generate.prompts import build_messages  # noqa: E402
from pipeline.generate.templates import build_examples, resolve_variables  # noqa: E402

MODEL = "gpt-4o-mini"


def serve(latency: float, failure_rate: float = 0.0, retry_after: float = 0.5) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.fake_openai", "--latency", str(latency),
                             "--failure-rate", str(failure_rate), "--retry-after", str(retry_after)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    base_url = proc.stdout.readline().strip()
    return proc, base_url


def engine(base_url: str, n: int, concurrency: int, out: Path) -> tuple[float, object]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench")
    cfg = GenerationConfig(template=load_template("reasoning"), n=n, out=out, model=MODEL, concurrency=concurrency)
    start = time.perf_counter()
    status = run_generation(cfg, client)
    return time.perf_counter() - start, status


def one_at_a_time(base_url: str, n: int, out: Path) -> float:
    """What the reference scripts do: one blocking request after another, appended as they come."""
    client = openai.OpenAI(base_url=base_url, api_key="bench")
    t = load_template("reasoning")
    variables = resolve_variables(t, {})
    start = time.perf_counter()
    with out.open("w", encoding="utf-8") as fh:
        for i in range(n):
            messages = build_messages(t, variables, seed=0, index=i)
            reply = client.chat.completions.create(model=MODEL, messages=messages)
            answer = parse_answer(reply.choices[0].message.content, t.schema)
            for example, _ in build_examples(t, variables, answer):
                fh.write(json.dumps(example) + "\n")
    return time.perf_counter() - start


async def _raw_rounds(base_url: str, n: int, concurrency: int) -> None:
    import asyncio

    import httpx

    t = load_template("reasoning")
    variables = resolve_variables(t, {})
    body = {"model": MODEL, "messages": build_messages(t, variables, seed=0, index=0),
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": t.schema}}}
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60) as client:
        async def one() -> None:
            async with sem:
                (await client.post(base_url + "/chat/completions", json=body)).raise_for_status()
        await asyncio.gather(*[one() for _ in range(n)])


def raw_http(base_url: str, n: int, concurrency: int) -> float:
    """The floor on this machine now: the same requests with bare httpx (no SDK, parsing or files)."""
    import asyncio

    start = time.perf_counter()
    asyncio.run(_raw_rounds(base_url, n, concurrency))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--failure-rate", type=float, default=0.2)
    args = parser.parse_args()
    n, lat, conc = args.n, args.latency, args.concurrency
    tmp = Path(tempfile.mkdtemp(prefix="gen-bench-"))
    # Load the token encoder once, as a running app has: its one-time load (~2 s) is not throughput.
    from pipeline.tokens import counter_for

    counter_for(MODEL).count("warm up")
    ideal = n * lat / conc

    proc, url = serve(lat)
    try:
        t_raw = raw_http(url, n, conc)
        t_engine, s_engine = engine(url, n, conc, tmp / "engine.jsonl")
        t_serial = one_at_a_time(url, n, tmp / "serial.jsonl")
    finally:
        proc.terminate()
        proc.wait()
    proc, url = serve(lat, args.failure_rate)
    try:
        t_fail, s_fail = engine(url, n, conc, tmp / "failures.jsonl")
    finally:
        proc.terminate()
        proc.wait()
    lines = (tmp / "failures.jsonl").read_text().splitlines()

    print(f"n={n} latency={lat}s concurrency={conc}; ideal {ideal:.2f}s = {n / ideal:.1f} examples/s")
    print(f"engine           : {t_engine:6.2f}s  {n / t_engine:6.2f} ex/s  {t_engine / ideal:.3f}x ideal  "
          f"written={s_engine.written} retries={s_engine.retries}")
    print(f"bare httpx       : {t_raw:6.2f}s  {n / t_raw:6.2f} ex/s  {t_raw / ideal:.3f}x ideal  (no SDK/parse/files)")
    print(f"one at a time    : {t_serial:6.2f}s  {n / t_serial:6.2f} ex/s  speed-up of engine {t_serial / t_engine:.1f}x")
    print(f"{args.failure_rate:.0%} 429/500 : {t_fail:6.2f}s  {n / t_fail:6.2f} ex/s  {t_fail / ideal:.3f}x ideal  "
          f"written={s_fail.written} lines={len(lines)} distinct={len(set(lines))} retries={s_fail.retries} "
          f"429s={s_fail.rate_limited} failed_calls={s_fail.failed_calls} state={s_fail.state}")
    ok = (t_engine <= 1.25 * ideal and s_fail.written == n == len(lines) == len(set(lines)))
    print("TARGET MET" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
