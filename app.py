"""Distill Studio: builds the Gradio app from components/ and launches it. Nothing else lives here."""

from __future__ import annotations

import os

import components.quick_import  # noqa: F401 - before gradio: makes its import ~1.6 s cheaper

# isort: split
import gradio as gr
from starlette.middleware import Middleware

from components import page_frames
from components.chat import build_chat_tab
from components.context import AppContext
from components.dataset import build_dataset_tab
from components.evaluate import build_evaluate_tab
from components.finetune import build_finetune_tab
from components.generate import build_generate_tab
from components.hub import build_hub_tab
from components.launching import calm_queue, warn_if_unreachable
from components.settings import build_settings_tab
from components.settings_handlers import restore_settings
from components.start import build_start_tab
from components.status import build_status_line
from components.visitor import browser_secret, start_session, visitor_state
from components.wiring import wire
from pipeline.endpoints import SessionSettings

TITLE = "Distill Studio"


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nTeach a small model what a strong one knows: generate, review, "
                    "fine-tune, compare.")
        ctx = AppContext(
            settings=gr.State(SessionSettings()),
            visitor=visitor_state("distill_visitor"),
            dataset_rev=gr.State(0),
            recent_jobs=gr.BrowserState([], storage_key="distill_jobs", secret=browser_secret()),
            remembered=gr.BrowserState(None, storage_key="distill_settings", secret=browser_secret()),
        )
        build_status_line(ctx)
        # The tabs appear once the page's visitor id is known: a click in the first moment after the page
        # opened (a presenter's quick "Run all steps") otherwise ran with no id and asked for a reload.
        starting_md = gr.Markdown("*Starting your session…*", elem_id="distill-starting")
        with gr.Column(visible=False) as main_col, gr.Tabs():
            with gr.Tab("Start", id="start"):
                build_start_tab(ctx)
            with gr.Tab("Generate", id="generate"):
                build_generate_tab(ctx)
            with gr.Tab("Dataset", id="dataset") as dataset_tab:
                build_dataset_tab(ctx, dataset_tab)
            with gr.Tab("Fine-tune", id="finetune"):
                build_finetune_tab(ctx)
            with gr.Tab("Chat", id="chat"):
                build_chat_tab(ctx)
            with gr.Tab("Evaluate", id="evaluate"):
                build_evaluate_tab(ctx)
            with gr.Tab("Hub", id="hub"):
                build_hub_tab(ctx)
            with gr.Tab("Settings", id="settings") as settings_tab:
                build_settings_tab(ctx, settings_tab)
        # No progress timer: it flashed "0.8s" under the status line for the second a session takes.
        started = demo.load(start_session, inputs=ctx.visitor, outputs=[ctx.visitor, main_col, starting_md],
                            api_visibility="private", show_progress="hidden")
        started.then(restore_settings, [ctx.settings, ctx.remembered, ctx.visitor], ctx.settings,
                     api_visibility="private")
        for fn, comps, kwargs in ctx.session_handlers:  # the Dataset's draft, the batch lists: once, with the id
            wire(started.then, fn, comps, **kwargs)
    return demo


demo = build_app()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=8)
    calm_queue(demo._queue)  # gradio polls its empty queue every 1 ms (components/launching.py)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        prevent_thread_lock=True,
        # gradio probes its own page with 3 s timeouts and exits when the probe fails: on a loaded
        # 2-core machine the probe timed out while the server was fine, and a presenter's app
        # quit. `_frontend=False` skips that probe only; the patient check below replaces it.
        _frontend=False,
        # No frames drawn for progress timers nobody sees (components/page_frames.py).
        app_kwargs={"middleware": [Middleware(page_frames.FirstInHead)]},
    )
    from pipeline.local.warmup import warm_up_in_background

    warm_up_in_background()  # the page is up: load the local model while the visitor looks at it
    warn_if_unreachable(demo.local_url)
    demo.block_thread()
