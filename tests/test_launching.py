"""The app's own reachability check: patient, never fatal, and it says what to do; gradio's queue
looking for work less often than every millisecond."""

from __future__ import annotations

import http.server
import logging

from components.launching import PROGRESS_IDLE_S, QUEUE_IDLE_S, calm_queue, page_answers, warn_if_unreachable
from tests.browser_support import free_port
from tests.fakes.serving import serve_in_thread


class _Refuses(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_page_behind_auth_counts_as_reachable() -> None:
    with serve_in_thread(_Refuses) as served:
        assert page_answers(f"{served.url}/", patience_s=5)


def test_a_page_that_never_answers_is_a_warning_not_an_exit(caplog) -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    with caplog.at_level(logging.WARNING):
        assert warn_if_unreachable(url, patience_s=1) is False
    assert "NO_PROXY" in caplog.text


def test_the_app_launches_without_gradios_fatal_probe() -> None:
    """gradio's own probe (3 s timeouts) quit the app on a loaded machine; app.py must skip it."""
    from pathlib import Path

    source = (Path(__file__).parent.parent / "app.py").read_text()
    assert "_frontend=False" in source and "warn_if_unreachable(" in source


def test_gradios_queue_looks_for_work_less_often(caplog) -> None:
    """gradio 6.31 polls its empty queue every 1 ms (~0.08 of a core with no page open); the app calms it.
    Fails if a gradio release renames the two settings, which would leave the polling as it was."""
    import gradio as gr

    with gr.Blocks() as demo:
        gr.Markdown("x")
    demo.queue()
    assert demo._queue.sleep_when_free < QUEUE_IDLE_S  # gradio's own rate, on Linux
    assert calm_queue(demo._queue)
    assert (demo._queue.sleep_when_free, demo._queue.progress_update_sleep_when_free) == (QUEUE_IDLE_S, PROGRESS_IDLE_S)
    with caplog.at_level(logging.WARNING):
        assert not calm_queue(object())
    assert "left polling" in caplog.text
    from pathlib import Path

    assert "calm_queue(demo._queue)" in (Path(__file__).parent.parent / "app.py").read_text()
