"""A process run beside the one being measured (benchmarks/decode_waits.py, benchmarks/train_waits.py):
it prints "ready", then "<time> <count so far>" lines as it works; its own rate is read back from them."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(cmd: list[str], env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def rate_inside(proc: subprocess.Popen, window: tuple[float, float]) -> float:
    """Stops `proc`; its count per second between its first and last progress lines inside `window`."""
    proc.kill()
    out, _ = proc.communicate(timeout=30)
    marks = [tuple(map(float, line.split())) for line in out.splitlines() if line.strip()]
    inside = [(t, n) for t, n in marks if window[0] <= t <= window[1]]
    (t0, n0), (t1, n1) = inside[0], inside[-1]
    return round((n1 - n0) / (t1 - t0), 1)
