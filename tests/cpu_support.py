"""Making this CPU behave like an AVX2-only one (no AVX512, no native bf16), as most laptops and cloud
VMs are: the one spelling of it for every test.

Three knobs, all needed: `ATEN_CPU_CAPABILITY` caps torch's own kernels, `ONEDNN_MAX_CPU_ISA` caps oneDNN
(it runs the bf16 matmuls: docs/bench/backend.md shows one falling from ~165 to ~0.8 GFLOP/s), and
`MKL_ENABLE_INSTRUCTIONS` caps MKL, which runs torch's fp32 matmuls and ignores the other two: without it
an fp32 matmul kept AVX512's speed (141 GFLOP/s, one thread; 76 with it, docs/bench/demo.md), so an
"AVX2" fine-tune would look faster than on such a CPU. They are read when a process starts, so they
reach a subprocess (a trainer, a server) through its environment.
"""

from __future__ import annotations

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def emulate_avx2(monkeypatch) -> None:  # noqa: ANN001  (pytest.MonkeyPatch)
    """Set the three knobs for this test (processes it starts inherit them)."""
    for name, value in AVX2_ONLY.items():
        monkeypatch.setenv(name, value)
