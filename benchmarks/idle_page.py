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

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402

# Installed before the page's own scripts: counts every requestAnimationFrame call.
COUNT_FRAMES = """(() => { window.__frames = 0; const asked = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (cb) => { window.__frames += 1; return asked(cb); }; })()"""


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass  # a renderer that ended
    return total


def chromium_processes() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name()]


def thread_seconds(app: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in app.threads()}


def busiest(before: dict[int, float], after: dict[int, float]) -> float:
    return max((after[t] - before.get(t, 0.0) for t in after), default=0.0)


def main(app_dir: Path | None, settle: float, window: float) -> dict:
    from playwright.sync_api import sync_playwright

    from tests import browser_support

    if app_dir:
        browser_support.ROOT = app_dir.resolve()
    home = Path(tempfile.mkdtemp(prefix="distill-idle-"))
    with running_app(home) as url, sync_playwright() as p:
        app = next(c for c in psutil.Process().children(recursive=True) if "app.py" in " ".join(c.cmdline()))
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(COUNT_FRAMES)
        page.goto(url)
        time.sleep(settle)
        chrome, frames = chromium_processes(), page.evaluate("() => window.__frames")
        c0, a0, t0, started = cpu_seconds(chrome), cpu_seconds([app]), thread_seconds(app), time.monotonic()
        time.sleep(window)
        took = time.monotonic() - started
        open_page = {"chromium_cores": (cpu_seconds(chrome) - c0) / took, "app_cores": (cpu_seconds([app]) - a0) / took,
                     "app_busiest_thread_cores": busiest(t0, thread_seconds(app)) / took,
                     "frames_per_s": (page.evaluate("() => window.__frames") - frames) / took}
        page.close()
        a0, t0, started = cpu_seconds([app]), thread_seconds(app), time.monotonic()
        time.sleep(window)
        took = time.monotonic() - started
        closed = {"app_cores": (cpu_seconds([app]) - a0) / took,
                  "app_busiest_thread_cores": busiest(t0, thread_seconds(app)) / took}
        browser.close()
    result = {"app_dir": str(app_dir or "."), "page_open": {k: round(v, 3) for k, v in open_page.items()},
              "page_closed": {k: round(v, 3) for k, v in closed.items()}, "nproc": os.cpu_count(),
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(f"page open:   Chromium {open_page['chromium_cores']:.3f} cores, app {open_page['app_cores']:.3f} "
          f"(busiest thread {open_page['app_busiest_thread_cores']:.3f}), {open_page['frames_per_s']:.1f} frames/s")
    print(f"page closed: app {closed['app_cores']:.3f} cores (busiest thread {closed['app_busiest_thread_cores']:.3f})")
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", type=Path, help="the checkout whose app.py to run (default: this one)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after opening before measuring")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of each measurement")
    args = parser.parse_args()
    main(args.app_dir, args.settle, args.window)
