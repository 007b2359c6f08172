"""Cold start of an installed checkout: `bash scripts/run_app.sh` to the first page, and to the local
model's first chat answer, clicked in Chromium as a user would (Chat tab, message to the three panes).

    .venv/bin/python benchmarks/cold_start.py [--checkout PATH] [--runs 2] [--json]

Each run launches the app from `--checkout` (default: this one) with a fresh workspace (DISTILL_HOME) and
the converted SmolLM2 from DISTILL_MODEL_DIR when set (otherwise the checkout's default workspace, which
must already hold it: the figure is for a cached conversion). The browser starts before the app, then
polls the page; times are from the launch:
  * page_s: the first HTTP 200 for "/";
  * first_text_s: the first pane shows answer text;
  * answered_s: every pane has finished (its Stop button disabled again).
To compare with an older version, make a worktree of it (`git worktree add /tmp/old <rev>`, link .venv)
and pass it as --checkout in the same session.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402


def one_run(checkout: Path, browser) -> dict:
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="distill-cold-"))
    env = {**os.environ, "DISTILL_HOME": str(home), "GRADIO_SERVER_PORT": str(port),
           "GRADIO_SERVER_NAME": "127.0.0.1"}
    url = f"http://127.0.0.1:{port}/"
    log = (home / "app.log").open("w")
    load_at_start = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.Popen(["bash", "scripts/run_app.sh"], cwd=checkout, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    result: dict = {"load_average_at_start": load_at_start}
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
        page.get_by_role("tab", name="Chat").click()
        page.get_by_label("Message to all three panes").fill("What is the capital of France?")
        page.get_by_role("button", name="Send").click()
        result["sent_s"] = round(time.perf_counter() - start, 2)
        stops = page.get_by_role("button", name="Stop", exact=True)
        bots = page.locator('[data-testid="bot"]')
        page.wait_for_timeout(500)
        while time.perf_counter() - start < 600:
            if "first_text_s" not in result and any(t.strip() for t in bots.all_inner_texts()):
                result["first_text_s"] = round(time.perf_counter() - start, 2)
            if "first_text_s" in result and all(stops.nth(i).is_disabled() for i in range(stops.count())):
                result["answered_s"] = round(time.perf_counter() - start, 2)
                break
            page.wait_for_timeout(100)
        result["answers"] = [t.strip()[:80] for t in bots.all_inner_texts()]
        page.close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()
    result["load_average_at_end"] = os.getloadavg()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch
    from playwright.sync_api import sync_playwright

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.checkout, capture_output=True,
                            text=True).stdout.strip()
    out = {"checkout": str(args.checkout), "commit": commit, "nproc": os.cpu_count(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "model_dir": os.environ.get("DISTILL_MODEL_DIR", "(checkout's workspace)"), "runs": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(args.runs):
            out["runs"].append(one_run(args.checkout, browser))
            print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
        browser.close()
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
