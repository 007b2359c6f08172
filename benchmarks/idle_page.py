"""What an open, idle page costs: the CPU of Chromium and of the app's process while nobody does
anything, then the app's with the page closed. On a 2-core machine this is taken from the local
fine-tune and chat (docs/bench/demo.md).

    .venv/bin/python benchmarks/idle_page.py [--app-dir CHECKOUT] [--settle 20] [--window 20]

Launches `python app.py` (of CHECKOUT, to compare with a baseline) with its own workspace, opens the
page in Chromium, waits `--settle` seconds for the session's first look-ups and the model's warm-up,
then measures `--window` seconds with the page open and `--window` with it closed. Prints CPU cores
used (CPU-seconds per second) for Chromium (all its processes), the app (all its threads) and the
app's busiest thread, and the animation frames the page asked for, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cpu_share import CpuShare  # noqa: E402
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, COUNT_FRAMES, running_app  # noqa: E402


def thread_seconds(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def busiest_thread_cores(pid: int, seconds: float) -> float:
    """CPU cores used by the process's busiest thread over the next `seconds` (it sleeps that long)."""
    before = thread_seconds(pid)
    time.sleep(seconds)
    after = thread_seconds(pid)
    return max((after[t] - before.get(t, 0.0) for t in after), default=0.0) / seconds


def main(app_dir: Path | None, settle: float, window: float) -> dict:
    from playwright.sync_api import sync_playwright

    from tests import browser_support

    if app_dir:
        browser_support.ROOT = app_dir.resolve()
    home = Path(tempfile.mkdtemp(prefix="distill-idle-"))
    with running_app(home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(COUNT_FRAMES)
        page.goto(url)
        time.sleep(settle)
        share = CpuShare().start()
        app, frames = share.app_pid(), page.evaluate("() => window.__frames")
        open_thread = busiest_thread_cores(app, window)
        frames = page.evaluate("() => window.__frames") - frames
        share.mark("page open")
        page.close()
        closed_thread = busiest_thread_cores(app, window)
        share.mark("page closed")
        share.stop()
        browser.close()
    opened, closed = share.between()
    open_page = {"chromium_cores": opened["chromium"] / opened["wall_s"], "app_cores": opened["app"] / opened["wall_s"],
                 "app_busiest_thread_cores": open_thread, "frames_per_s": frames / opened["wall_s"]}
    closed_page = {"app_cores": closed["app"] / closed["wall_s"], "app_busiest_thread_cores": closed_thread}
    result = {"app_dir": str(app_dir or "."), "page_open": {k: round(v, 3) for k, v in open_page.items()},
              "page_closed": {k: round(v, 3) for k, v in closed_page.items()}, "nproc": os.cpu_count(),
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(f"page open:   Chromium {open_page['chromium_cores']:.3f} cores, app {open_page['app_cores']:.3f} "
          f"(busiest thread {open_thread:.3f}), {open_page['frames_per_s']:.1f} frames/s")
    print(f"page closed: app {closed_page['app_cores']:.3f} cores (busiest thread {closed_thread:.3f})")
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", type=Path, help="the checkout whose app.py to run (default: this one)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after opening before measuring")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of each measurement")
    args = parser.parse_args()
    main(args.app_dir, args.settle, args.window)
