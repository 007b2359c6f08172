"""The Start tab runs the reasoning story's hold-out step (its benchmark from its own data) over gradio_client."""

from __future__ import annotations

import gradio as gr
from gradio_client import Client

from components.context import AppContext
from components.start import build_start_tab
from pipeline import drafts
from pipeline.endpoints import SessionSettings
from tests.browser_support import free_port


def test_holdout_step_from_the_start_tab():
    visitor = "visitor-start-holdout-1"
    with gr.Blocks() as demo:
        ctx = AppContext(settings=gr.State(SessionSettings()), visitor=gr.State(visitor), dataset_rev=gr.State(0),
                         recent_jobs=gr.State([]), remembered=gr.State(None))
        build_start_tab(ctx)
    demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        client.predict("reasoning", False, api_name="/demo_load")
        client.predict("reasoning", False, api_name="/demo_holdout")
    finally:
        demo.close()
    assert len(drafts.load_draft(visitor)) == 40  # 10 of the 50 problems left the training data
