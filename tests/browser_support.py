"""Real-browser test support: the app in its own process, Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: For `page.add_init_script`, before the page's own scripts: counts every requestAnimationFrame call in
#: `window.__frames` (tests/test_page_frames.py, benchmarks/idle_page.py).
COUNT_FRAMES = """(() => { window.__frames = 0; const asked = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (cb) => { window.__frames += 1; return asked(cb); }; })()"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(home: Path, extra_env: dict[str, str] | None = None,
                timeout_s: float = 120) -> Iterator[str]:
    """Launch `python app.py` on a free loopback port with its own workspace; yield its URL."""
    port = free_port()
    env = {**os.environ, "DISTILL_HOME": str(home), "GRADIO_SERVER_PORT": str(port),
           "GRADIO_SERVER_NAME": "127.0.0.1", **(extra_env or {})}
    log = (home / "app.log").open("w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited early:\n{(home / 'app.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("app did not answer in time") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def start_fine_tune_from_file(page, path: Path, timeout_ms: int = 60_000, epochs: int | None = None) -> None:
    """In the Fine-tune tab: upload `path` as the training file (with `epochs` set under Hyperparameters,
    if given) and press Start fine-tuning."""
    upload_training_file(page, path, timeout_ms)
    if epochs is not None:
        page.get_by_text("Hyperparameters").click()
        page.locator("#ft-epochs textarea").fill(str(epochs))  # "Epochs" also labels a box of another tab
    page.get_by_role("button", name="Start fine-tuning").click()


def upload_training_file(page, path: Path, timeout_ms: int = 60_000) -> None:
    """In the Fine-tune tab: choose "Upload a file" and upload `path`, waiting until its name shows."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Fine-tune").click()
    page.get_by_label("Upload a file").check()
    # The file box is shown by the server's answer to that click: a file set before then would go to an
    # input the page has not drawn yet.
    expect(page.locator("#ft-upload")).to_be_visible(timeout=timeout_ms)
    page.locator("#ft-upload input[type=file]").set_input_files(str(path))
    # The finished upload is a table row whose cell is named after the file. Its text cannot be matched:
    # it is split as "riddles .jsonl" (stem and extension in two spans). A text match only ever caught
    # the progress line shown while the upload runs, and missed it when the upload was quick.
    expect(page.locator("#ft-upload").get_by_role("cell", name=path.name, exact=True)).to_be_visible(
        timeout=timeout_ms)


def choose_demo_scenario(page, title: str, timeout_ms: int = 60_000) -> None:
    """In the Start tab: pick the demo scenario `title` and wait for its pitch, which the server's answer
    to that pick shows (with the steps table and the step buttons it has): a run started before then
    found the page still showing the first scenario's table."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Start").click()
    page.get_by_label(title).check()
    expect(page.get_by_text(f"{title}.", exact=True)).to_be_visible(timeout=timeout_ms)
