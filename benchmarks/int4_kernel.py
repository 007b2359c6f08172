"""The decode step's two int4 kernels alone: ours (pipeline/local/int4_linear.c) against torch's
(`_weight_int4pack_mm_for_cpu`), on the shapes of SmolLM2-135M's weights, in one process, alternated.

For each weight shape and row count: the best of --calls calls of each kernel (ms), on 1 and 2 threads,
and each kernel's error against the exact product (float64, the weights as torch's packing holds them;
random weights and activations with one outlier channel, as the real model's activations have).
Run it with the AVX2 knobs in front to see the other kind of CPU:

    .venv/bin/python benchmarks/int4_kernel.py [--calls 50] [--json]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python benchmarks/int4_kernel.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPES = {"qkv 768x576": (768, 576), "gate_up 3072x576": (3072, 576), "down 576x1536": (576, 1536),
          "lm_head screen 49152x576": (49152, 576)}


def main() -> int:
    import os

    os.environ.setdefault("DISTILL_HOME", tempfile.mkdtemp(prefix="distill-int4-bench-"))
    import torch

    from benchmarks.machine_facts import machine
    from pipeline.local import native, qweights
    from pipeline.local.fastlm import time_int4_kernels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    lib = native.library()
    if lib is None:
        print("no C compiler: only torch's kernel exists here", file=sys.stderr)
        return 1
    torch.manual_seed(0)
    rows_out = []
    for name, (out, inp) in SHAPES.items():
        weight = qweights.load("w", qweights.quantize("w", torch.randn(out, inp) * 0.05, "int4", torch.bfloat16))
        exact_w = weight.weights(torch.float64)
        for rows in (1, 3):
            x = torch.randn(rows, inp)
            x[:, 7] *= 100
            row = {"weight": name, "rows": rows}
            for threads in (1, 2):
                torch.set_num_threads(threads)
                best = time_int4_kernels(lib, weight, x, threads, max(5, args.calls // (10 if out > 10000 else 1)))
                row[f"{threads}thr_ms"] = {k: round(v * 1e3, 3) for k, v in best.items()}
            if exact_w is not None:
                exact = x.double() @ exact_w.t()
                ours = weight.native(lib, x, torch.empty(rows, out), 1)
                norm = exact.norm()
                row["relative_error"] = {"c": float((ours.double() - exact).norm() / norm),
                                         "torch": float((weight.kernel(x.to(torch.bfloat16)).double() - exact).norm()
                                                        / norm)}
            rows_out.append(row)
            if not args.json:
                print(json.dumps(row))
    result = {"machine": machine(), "kernels": rows_out}
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
