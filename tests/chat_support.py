"""The Chat tab alone in a Blocks, its three roles on a FakeChatServer's models (for gradio_client and
browser tests)."""

from __future__ import annotations

import gradio as gr

from components.chat import build_chat_tab
from components.context import AppContext
from pipeline.endpoints import Endpoint, RoleChoice, SessionSettings
from tests.fakes.chat_server import FakeChatServer


def chat_tab_app(srv: FakeChatServer, base: str, fine_tuned: str, teacher: str, visitor: str) -> gr.Blocks:
    settings = SessionSettings(
        custom_endpoints={"fake": Endpoint("fake", "compatible", base_url=srv.base_url)},
        typed_keys={"fake": "k"},
        roles={"base": RoleChoice("fake", base), "fine_tuned": RoleChoice("fake", fine_tuned),
               "teacher": RoleChoice("fake", teacher)})
    with gr.Blocks() as demo:
        ctx = AppContext(settings=gr.State(settings), visitor=gr.State(visitor), dataset_rev=gr.State(0),
                         recent_jobs=gr.State([]), remembered=gr.State(None))
        build_chat_tab(ctx)
    return demo
