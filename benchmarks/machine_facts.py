"""What a benchmark's figures were measured on: CPU, torch's kernel level, the knobs set, the load."""

from __future__ import annotations

import os
from pathlib import Path

KNOBS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def machine() -> dict:
    import torch

    return {"nproc": os.cpu_count(), "cpu": cpu_name(), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "env": {k: os.environ[k] for k in KNOBS if k in os.environ}, "load_average_at_start": os.getloadavg()}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"
