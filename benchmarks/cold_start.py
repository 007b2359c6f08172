"""Cold start of an installed checkout: `bash scripts/run_app.sh` to the first page, and to the local
model's first chat answer, clicked in Chromium as a user would (Chat tab, message to the three panes).

    .venv/bin/python benchmarks/cold_start.py [--runs 2] [--baseline PATH] [--json]

Each run launches the app (`bash scripts/run_app.sh`) with a fresh workspace (DISTILL_HOME) and the
converted SmolLM2 of an installed checkout: DISTILL_MODEL_DIR when set, else the default workspace's
`models/` (~/.cache/distill-studio/models), which is where a user's earlier runs converted it. (A fresh
DISTILL_HOME alone would make every run convert the GGUF again: ~30 s more, not a cold start of an
installed checkout; `cached_weights` in the output says whether the conversion was found.) The browser
starts before the app, then polls the page; times are from the launch:
  * page_s: the first HTTP 200 for "/" (target <= 5 s);
  * model_ready_s: the local backend's /health says the model is loaded;
  * sent_s: the message to the three panes was sent (Chat tab, as soon as the page allowed it);
  * first_text_s: the first pane shows answer text (target <= 15 s);
  * answered_s: every pane has finished (its Stop button disabled again; answers are up to 512 tokens);
  * app_cpu_at_sent_s / app_cpu_at_first_text_s: CPU seconds (user + system, all threads) the app's
    process had used by then: less sensitive to a shared machine's load than the wall times.
`--baseline PATH` runs an older checkout too, alternating with this one in the same session (make it
with `git worktree add /tmp/old <rev>` and link .venv), and prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.local.standby import cpu_seconds  # noqa: E402
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402


def models_dir() -> Path:
    """Where an installed checkout keeps its converted SmolLM2 (see the module docstring)."""
    if os.environ.get("DISTILL_MODEL_DIR"):
        return Path(os.environ["DISTILL_MODEL_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "distill-studio" / "models"


def watch_model_ready(home: Path, start: float, result: dict, stop: threading.Event) -> None:
    """Polls the backend the app advertises in its workspace until its model is loaded."""
    record = home / "local-backend" / "server.json"
    while not stop.wait(0.1):
        try:
            url = json.loads(record.read_text())["url"].removesuffix("/v1") + "/health"
            with urllib.request.urlopen(url, timeout=2) as response:
                if json.loads(response.read()).get("model_ready"):
                    result["model_ready_s"] = round(time.perf_counter() - start, 2)
                    return
        except (OSError, ValueError, KeyError):
            continue


def app_cpu_s(pid: int) -> float | None:
    """User + system CPU time of the app's process, all its threads, to the hundredth (Linux /proc)."""
    seconds = cpu_seconds(pid)
    return None if seconds is None else round(seconds, 2)


def one_run(checkout: Path, browser) -> dict:
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="distill-cold-"))
    env = {**os.environ, "DISTILL_HOME": str(home), "GRADIO_SERVER_PORT": str(port),
           "GRADIO_SERVER_NAME": "127.0.0.1", "DISTILL_MODEL_DIR": str(models_dir())}
    url = f"http://127.0.0.1:{port}/"
    log = (home / "app.log").open("w")
    load_at_start = os.getloadavg()
    result: dict = {"checkout": str(checkout), "load_average_at_start": load_at_start}
    stop = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(["bash", "scripts/run_app.sh"], cwd=checkout, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    threading.Thread(target=watch_model_ready, args=(home, start, result, stop), daemon=True).start()
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited:\n{(home / 'app.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                time.sleep(0.05)
        result["page_s"] = round(time.perf_counter() - start, 2)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.set_default_timeout(300_000)  # a busy machine shows the tabs late; the times say how late
        page.get_by_role("tab", name="Chat").click()
        page.get_by_label("Message to all three panes").fill("What is the capital of France?")
        page.get_by_role("button", name="Send").click()
        result["sent_s"] = round(time.perf_counter() - start, 2)
        result["app_cpu_at_sent_s"] = app_cpu_s(proc.pid)  # run_app.sh execs python: same pid
        stops = page.get_by_role("button", name="Stop", exact=True)
        bots = page.locator('[data-testid="bot"]')
        page.wait_for_timeout(500)
        while time.perf_counter() - start < 600:
            if "first_text_s" not in result and any(t.strip() for t in bots.all_inner_texts()):
                result["first_text_s"] = round(time.perf_counter() - start, 2)
                result["app_cpu_at_first_text_s"] = app_cpu_s(proc.pid)
            if "first_text_s" in result and all(stops.nth(i).is_disabled() for i in range(stops.count())):
                result["answered_s"] = round(time.perf_counter() - start, 2)
                break
            page.wait_for_timeout(100)
        result["answers"] = [t.strip()[:80] for t in bots.all_inner_texts()]
        page.close()
    finally:
        stop.set()
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()
    result["load_average_at_end"] = os.getloadavg()
    return result


KEYS = ("page_s", "model_ready_s", "sent_s", "first_text_s", "answered_s", "app_cpu_at_sent_s",
        "app_cpu_at_first_text_s")


def summary(runs: list[dict]) -> dict:
    """Median of each time over the runs, and whether the medians meet the issue's targets."""
    out = {k: statistics.median([r[k] for r in runs if r.get(k) is not None]) for k in KEYS
           if any(r.get(k) is not None for r in runs)}
    out["page_ok"] = out.get("page_s", 99) <= 5
    out["first_text_ok"] = out.get("first_text_s", 99) <= 15
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--baseline", type=Path, help="an older checkout, run alternately for ratios")
    parser.add_argument("--runs", type=int, default=2, help="runs of each checkout")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import platform

    import torch
    from playwright.sync_api import sync_playwright

    def commit(path: Path) -> str:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True,
                              text=True).stdout.strip()

    weights = models_dir() / "SmolLM2-135M-Instruct"
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    out = {"checkout": str(args.checkout), "commit": commit(args.checkout), "nproc": os.cpu_count(),
           "cpu": caps.get("cpu_name") or platform.processor(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "load_average": os.getloadavg(), "model_dir": str(models_dir()),
           "cached_weights": (weights / ".converted").is_file() and any(weights.glob(".fastlm-*")),
           "runs": [], "baseline_runs": []}
    if args.baseline:
        out["baseline"], out["baseline_commit"] = str(args.baseline), commit(args.baseline)
    if not out["cached_weights"]:  # what an earlier launch of an installed checkout left: make it first
        subprocess.run([sys.executable, "-c", "from pipeline.local.engine import load_fast; from pathlib import Path; "
                        f"load_fast(Path({str(weights)!r}))"], cwd=ROOT, check=True,
                       env={**os.environ, "DISTILL_MODEL_DIR": str(models_dir())})
        out["cached_weights"] = "converted before the first run"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(args.runs):
            for key, checkout in (("baseline_runs", args.baseline), ("runs", args.checkout)):
                if checkout is None:
                    continue
                out[key].append(one_run(checkout, browser))
                print(json.dumps(out[key][-1]), file=sys.stderr, flush=True)
        browser.close()
    out["median"] = summary(out["runs"])
    if out["baseline_runs"]:
        out["baseline_median"] = summary(out["baseline_runs"])
        out["ratio_new_to_baseline"] = {k: round(out["median"][k] / out["baseline_median"][k], 2)
                                        for k in KEYS if k in out["median"] and out["baseline_median"].get(k)}
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
