"""The Dataset tab with a large draft in a real browser (Debian's chromium): upload, first paint after
a reload, a page turn, a jump; with screenshots to look at.

    .venv/bin/python benchmarks/dataset_scale_browser.py [--rows 50000] [--shots DIR]

Launches `python app.py` on a free port with its own workspace, uploads a JSONL file of `--rows`
realistic examples (benchmarks/dataset_scale.py's) through the tab, then reloads the page and times
the tab's first paint (from the Dataset tab's click to the page line "Rows 1–200 of N"), a click on
"Next ›" and a jump to the row at 3/4 of the draft. Prints one JSON object; screenshots go to --shots.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from dataset_scale import machine, realistic  # noqa: E402

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--shots", type=Path, default=Path(tempfile.gettempdir()) / "dataset-scale-shots")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    args.shots.mkdir(parents=True, exist_ok=True)
    result: dict = {"rows": args.rows, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="bench-scale-browser-") as tmp:
        home = Path(tmp)
        data = home / f"draft-{args.rows}.jsonl"
        data.write_text("".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in realistic(args.rows)),
                        encoding="utf-8")
        result["file_mb"] = round(data.stat().st_size / 1e6, 1)
        # No model warm-up in the background: this measures the Dataset tab, not the local backend.
        with running_app(home, {"DISTILL_WARM_START": "0"}) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(url)
            page.get_by_role("tab", name="Dataset").click(timeout=180_000)
            t0 = time.perf_counter()
            page.locator("#dataset-upload input[type=file]").set_input_files(str(data))
            page.get_by_text(f"Loaded {args.rows:,} example(s)").wait_for(timeout=600_000)
            result["upload_rows_shown_s"] = round(time.perf_counter() - t0, 1)
            page.screenshot(path=str(args.shots / "upload-first-page.png"), full_page=True)
            page.get_by_text("estimated training cost").wait_for(timeout=600_000)
            result["upload_validated_s"] = round(time.perf_counter() - t0, 1)

            page.reload()
            t0 = time.perf_counter()
            page.get_by_role("tab", name="Dataset").click(timeout=180_000)
            page.locator("#dataset-page").get_by_text(f"of {args.rows:,}").wait_for(timeout=600_000)
            result["reload_rows_shown_s"] = round(time.perf_counter() - t0, 1)
            page.get_by_text("estimated training cost").wait_for(timeout=600_000)
            result["reload_validated_s"] = round(time.perf_counter() - t0, 1)
            page.screenshot(path=str(args.shots / "first-paint.png"), full_page=True)

            t0 = time.perf_counter()
            page.get_by_role("button", name="Next ›").click()
            page.locator("#dataset-page").get_by_text("Rows 201–400").wait_for(timeout=120_000)
            result["next_page_s"] = round(time.perf_counter() - t0, 2)

            target = args.rows * 3 // 4
            t0 = time.perf_counter()
            page.get_by_placeholder("Go to row # (Enter)").fill(str(target))
            page.get_by_role("button", name="Go", exact=True).click()
            page.locator("#dataset-page").get_by_text(f"Rows {target:,}–").wait_for(timeout=120_000)
            result["jump_s"] = round(time.perf_counter() - t0, 2)
            page.screenshot(path=str(args.shots / "jump.png"), full_page=True)

            browser.close()
    result["screenshots"] = str(args.shots)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
