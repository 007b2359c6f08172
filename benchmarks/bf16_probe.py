"""Is bf16 native here? One 512x576x1536 matmul and one Linear forward+backward, fp32 vs bf16, one thread.

    .venv/bin/python benchmarks/bf16_probe.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python benchmarks/bf16_probe.py  # AVX2-only CPU

Also times `torch._weight_int8pack_mm` (the decoder's int8 weights) against an fp32 matvec.
"""

from __future__ import annotations

import os
import time

import torch


def bench(f, n: int = 5) -> float:
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n


def main() -> None:
    torch.set_num_threads(1)
    print(f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY')} "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA')} "
          f"MKL_ENABLE_INSTRUCTIONS={os.environ.get('MKL_ENABLE_INSTRUCTIONS')} "
          f"get_cpu_capability()={torch.backends.cpu.get_cpu_capability()} load={os.getloadavg()[0]:.2f}")
    m, k, n = 512, 576, 1536
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        seconds = bench(lambda a=a, b=b: a @ b)
        lin, x = torch.nn.Linear(k, n), torch.randn(m, k, requires_grad=True)

        def step(lin=lin, x=x, dtype=dtype):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                y = lin(x)
            y.float().sum().backward()

        print(f"{dtype}: matmul {2 * m * k * n / seconds / 1e9:.1f} GFLOP/s, "
              f"Linear fwd+bwd {bench(step) * 1e3:.1f} ms")
    x = torch.randn(1, k, dtype=torch.bfloat16)
    q, scale = torch.randint(-127, 127, (n, k), dtype=torch.int8), torch.rand(n, dtype=torch.bfloat16)
    print(f"int8pack_mm, bf16 activations: {bench(lambda: torch._weight_int8pack_mm(x, q, scale), 50) * 1e6:.0f} us; "
          f"fp32 matvec: {bench(lambda: torch.nn.functional.linear(x.float(), q.float()), 50) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
