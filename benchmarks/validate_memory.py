"""Peak memory of validating a large JSONL file: the streamed validate_file vs the whole-file path.

    .venv/bin/python benchmarks/validate_memory.py [--n 50000]

Writes N generated chat examples (benchmarks/validate_bench.generate, plus a few bad lines and
duplicates) to a temporary JSONL file, then validates it in fresh subprocesses, whole-file and
streamed in one run, each reporting ru_maxrss (peak RSS; also the RSS after imports and the
tokenizer's load) and the seconds taken, then again under tracemalloc for the peak of Python's own
allocations during validation. Also checks both reports are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_CHILD = r"""
import json, resource, sys, time, tracemalloc
from pipeline import tokens
from pipeline.dataset.streaming import validate_file, validate_file_whole
tokens.counter_for("gpt-4o-mini-2024-07-18").count_batch(["warm up"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
fn = validate_file if sys.argv[2] == "streamed" else validate_file_whole
trace = sys.argv[4] == "trace"
if trace:
    tracemalloc.start()
t0 = time.perf_counter()
report = fn(sys.argv[1])
secs = time.perf_counter() - t0
traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[3], "w") as fh:
    json.dump(report.to_json(), fh)
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "seconds": secs, "traced_mb": traced,
                  "examples": report.n_examples}))
"""


def run(path: Path, mode: str, out: Path, trace: bool = False) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), mode, str(out), "trace" if trace else "-"],
                          cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from validate_bench import generate

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        lines = [json.dumps(ex, ensure_ascii=False) for ex in generate(args.n)]
        lines[10] = lines[9]  # a duplicate
        lines[20] = '{"messages": [oops'  # a bad line
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        size = path.stat().st_size / 1e6
        print(f"file: {args.n:,} rows, {size:.1f} MB; cpu={os.cpu_count()} load={os.getloadavg()}")
        res = {}
        for mode in ("whole", "streamed"):
            res[mode] = run(path, mode, Path(tmp) / f"{mode}.json")
            r = res[mode]
            print(f"{mode:>8}: peak RSS {r['peak_mb']:.0f} MB (after imports {r['base_mb']:.0f} MB, "
                  f"validation +{r['peak_mb'] - r['base_mb']:.0f} MB), {r['seconds']:.1f} s")
        for mode in ("whole", "streamed"):  # again under tracemalloc (slower): Python's own peak
            res[mode]["traced_mb"] = run(path, mode, Path(tmp) / "traced.json", trace=True)["traced_mb"]
            print(f"{mode:>8}: tracemalloc peak during validation {res[mode]['traced_mb']:.1f} MB")
        same = (Path(tmp) / "whole.json").read_text() == (Path(tmp) / "streamed.json").read_text()
        w, s = res["whole"], res["streamed"]
        print(f"identical reports: {same}; peak ratio streamed/whole {s['peak_mb'] / w['peak_mb']:.2f}x, "
              f"validation's own growth {(s['peak_mb'] - s['base_mb']) / (w['peak_mb'] - w['base_mb']):.2f}x, "
              f"time {s['seconds'] / w['seconds']:.2f}x, tracemalloc peak {s['traced_mb'] / w['traced_mb']:.3f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
