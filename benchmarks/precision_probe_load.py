"""Does the precision probe keep its answer when other processes load the CPU?

The probe (pipeline/local/precision.py `probe`) races one matmul in fp32 and bf16. Its first version
timed fp32's calls and then bf16's and compared the means, so load during the second half alone could
turn "bf16 ~3x faster" into "slower" (it once did, under the test suite). The current one alternates
the formats and compares each one's fastest call. This runs both, round by round, on a quiet CPU and
then beside `--busy` processes that each keep one core busy with fp32 matmuls, and prints each
version's speedups and how many fell under the decision threshold.

    .venv/bin/python benchmarks/precision_probe_load.py [--rounds 20] [--busy 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pipeline.local import precision  # noqa: E402

BUSY = ("import torch, time; torch.set_num_threads(1); a = torch.randn(1024, 1024)\n"
        "end = time.time() + {seconds}\nwhile time.time() < end: a @ a")


def first_version(budget_s: float = 0.5) -> float:
    """The probe as first written: each format's mean over its own half of the budget, fp32 first."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a32, b32 = torch.randn(256, 576), torch.randn(576, 576)
        means = {}
        for name, a, b in (("fp32", a32, b32), ("bf16", a32.bfloat16(), b32.bfloat16())):
            a @ b
            runs, start = 0, time.perf_counter()
            while runs < 20 and time.perf_counter() - start < budget_s / 2:
                a @ b
                runs += 1
            means[name] = (time.perf_counter() - start) / runs
    finally:
        torch.set_num_threads(threads)
    return means["fp32"] / means["bf16"]


def rounds(count: int) -> dict:
    out: dict = {"first_version": [], "current": []}
    for _ in range(count):
        out["first_version"].append(round(first_version(), 2))
        out["current"].append(round(precision.probe()["bf16_speedup"], 2))
    return {name: {"speedups": values, "min": min(values), "under_threshold": sum(v < precision.MIN_SPEEDUP for v in values)}
            for name, values in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--busy", type=int, default=4, help="processes keeping a core busy in the loaded half")
    args = parser.parse_args()
    result = {"cpu": precision.cpu_facts(), "nproc": os.cpu_count(), "threshold": precision.MIN_SPEEDUP,
              "quiet": {"load": os.getloadavg()[0], **rounds(args.rounds)}}
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=600)]) for _ in range(args.busy)]
    try:
        time.sleep(2)
        result["loaded"] = {"busy_processes": args.busy, **rounds(args.rounds), "load": os.getloadavg()[0]}
    finally:
        for hog in hogs:
            hog.kill()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
