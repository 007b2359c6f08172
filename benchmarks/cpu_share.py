"""Who used the CPU while a benchmark ran: this process's children by kind (chromium, the app with its
embedded local backend, the training subprocess, the Playwright driver) and everyone else on the machine.

    share = CpuShare().start()
    ...                          # the timed work
    share.mark("augment")        # a named point in time (the end of what ran since the last mark)
    share.stop()
    print(share.between())       # wall and CPU seconds per kind between the marks

Samples every 0.5 s with psutil; a process that ends between samples loses at most its last 0.5 s.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import psutil

KINDS = ("chromium", "app", "trainer", "playwright", "others")
#: Chromium's own processes by their --type (the browser process has none).
CHROMIUM_TYPES = ("renderer", "gpu-process", "utility")


def kind_of(proc: psutil.Process) -> str:
    try:
        name, cmd = proc.name(), " ".join(proc.cmdline())
    except psutil.Error:
        return "others"
    if "chrom" in name or "chrom" in cmd.split(" ")[0]:
        return next((f"chromium {t}" for t in CHROMIUM_TYPES if f"--type={t}" in cmd), "chromium browser")
    if "pipeline.local.trainer" in cmd:
        return "trainer"
    if "app.py" in cmd:
        return "app"
    return "playwright" if "node" in name or "playwright" in cmd else "others"


class CpuShare:
    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s, self.me = every_s, psutil.Process(os.getpid())
        self.seen: dict[int, tuple[str, float]] = {}  # pid -> (kind, newest user+system seconds)
        self.marks: list[tuple[str, float, dict[str, float]]] = []
        #: Called at each mark for more cumulative figures (e.g. the page's own script/layout seconds).
        self.extra: Callable[[], dict[str, float]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cpu-share")

    def _busy(self) -> float:
        t = psutil.cpu_times()
        return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    def _sample(self) -> None:
        for proc in self.me.children(recursive=True):
            try:
                cpu = proc.cpu_times()
                self.seen[proc.pid] = (self.seen.get(proc.pid, (None,))[0] or kind_of(proc), cpu.user + cpu.system)
            except psutil.Error:
                continue

    def totals(self) -> dict[str, float]:
        self._sample()
        out = dict.fromkeys(KINDS, 0.0)
        for kind, seconds in self.seen.values():
            out[kind.split(" ")[0]] += seconds
            out[kind] = out.get(kind, 0.0) + seconds if " " in kind else out[kind]
        mine = self.me.cpu_times()
        ours = sum(out[k] for k in KINDS)
        out["others"] = self._busy() - ours - mine.user - mine.system
        return out

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter(), {**self.totals(), **(self.extra() if self.extra else {})}))

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def start(self) -> CpuShare:
        self._thread.start()
        self.mark("start")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def app_pid(self) -> int | None:
        return next((p.pid for p in self.me.children(recursive=True) if kind_of(p) == "app"), None)

    def between(self) -> list[dict]:
        """One row per interval between marks: its wall seconds and each kind's CPU seconds."""
        rows = []
        for (_a, t0, c0), (name, t1, c1) in zip(self.marks, self.marks[1:], strict=False):
            rows.append({"until": name, "wall_s": round(t1 - t0, 1),
                         **{k: round(c1[k] - c0.get(k, 0.0), 1) for k in c1}})
        return rows
