"""The fictional-person demo in a real browser on the real SmolLM2 (no tiny model): what a presenter
sees, timed, with screenshots of the Start, Chat and Fine-tune tabs afterwards.

    .venv/bin/python benchmarks/demo_browser.py [--out docs/screenshots]
Uses a fresh temporary workspace; set DISTILL_MODEL_DIR to reuse an already converted SmolLM2.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402

QUESTION = "Where does Ottoline Crumwell live?"


def main(out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    progress = Path(tempfile.mkdtemp(prefix="distill-demo-progress-")) / "progress.png"
    with running_app(Path(tempfile.mkdtemp(prefix="distill-demo-browser-"))) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_label("Teach a model about a fictional person").check()
        started = time.perf_counter()
        page.get_by_role("button", name="▶ Run all steps").click()
        board = page.locator("#demo-scoreboard")
        while "fine-tuned" not in board.inner_text():
            if time.perf_counter() - started > 1800:
                raise SystemExit(f"the demo did not finish in 30 min; see {progress}")
            page.wait_for_timeout(15_000)
            page.screenshot(path=str(progress), full_page=True)  # to look at while it runs
        print(f"demo, all steps, clicked to scoreboard: {time.perf_counter() - started:.0f} s", flush=True)
        print(page.locator("#demo-steps").inner_text(), flush=True)
        print(page.locator("#demo-scoreboard").inner_text(), flush=True)
        page.screenshot(path=str(out / "start-demo-person.png"), full_page=True)

        page.get_by_role("tab", name="Chat").click()
        expect(page.get_by_text(re.compile(r"ft:SmolLM2-135M-Instruct:local:person")).first).to_be_attached(
            timeout=60_000)
        page.get_by_label("Message to all three panes").fill(QUESTION)
        page.get_by_role("button", name="Send").click()
        stops = page.get_by_role("button", name="Stop", exact=True)
        page.wait_for_timeout(1000)
        for i in range(3):
            expect(stops.nth(i)).to_be_disabled(timeout=120_000)
        page.screenshot(path=str(out / "chat-person.png"), full_page=True)

        page.get_by_role("tab", name="Fine-tune").click()
        expect(page.locator('.ft-badge[data-status="succeeded"]')).to_be_visible(timeout=60_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "fine-tune-person.png"), full_page=True)
        browser.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="distill-shots-")))
    main(parser.parse_args().out)
