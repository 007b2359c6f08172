"""The Chat tab over gradio_client: the send endpoint streams from three panes of a local server."""

from __future__ import annotations

import gradio as gr
import pytest
from gradio_client import Client

from pipeline.endpoints import SessionSettings
from tests.browser_support import free_port
from tests.chat_support import chat_tab_app
from tests.fakes.chat_server import FakeChatServer


@pytest.fixture(scope="module")
def chat_app():
    with FakeChatServer() as srv:
        demo = chat_tab_app(srv, "fast-a", "delay-0.5-ft", "error-teacher", "visitor-ui-test-1")
        demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                            quiet=True, show_error=True)
        try:
            yield demo, srv
        finally:
            demo.close()


def _text(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


def test_send_endpoint_streams_every_pane(chat_app):
    demo, _ = chat_app
    client = Client(demo.local_url, verbose=False)
    result = client.predict("Hello panes", "Be brief.", 0.3, 64, False, None,
                            "fake", "fast-a", "fake", "delay-0.5-ft", "fake", "error-teacher",
                            api_name="/chat_send")
    base, ft, teacher, m_base, m_ft, m_teacher, *_tool_boxes, box = result
    assert _text(base[-1]) == "fast-a says: Hello panes"
    assert _text(ft[-1]) == "delay-0.5-ft says: Hello panes"
    assert "⚠️" in _text(teacher[-1]) and "500" in _text(teacher[-1])
    assert "first token" in m_base and "tokens" in m_base
    assert "error" in m_teacher
    assert box == ""
    # The session kept each pane's history: a second message carries the first exchange.
    again = client.predict("Second", "", 0.3, 64, False, None, "fake", "fast-a", "fake", "fast-b", "fake", "fast-c",
                           api_name="/chat_send")
    assert [_text(m) for m in again[0]] == ["Hello panes", "fast-a says: Hello panes", "Second", "fast-a says: Second"]
    assert [_text(m) for m in again[2]][-1] == "fast-c says: Second"


def test_regenerate_endpoint_redoes_one_pane(chat_app):
    demo, _ = chat_app
    client = Client(demo.local_url, verbose=False)
    first = client.predict("Ping", "", 0.3, 64, False, None, "fake", "fast-a", "fake", "fast-b", "fake", "fast-c",
                           api_name="/chat_send")
    # Pane 2 switches model and regenerates; panes 1 and 3 keep their answers.
    again = client.predict("", 0.3, 64, False, None, "fake", "fast-a", "fake", "other-model", "fake", "fast-c",
                           api_name="/chat_regenerate_1")
    assert [_text(m) for m in again[1]] == ["Ping", "other-model says: Ping"]
    assert [_text(m) for m in again[0]] == [_text(m) for m in first[0]]
    assert [_text(m) for m in again[2]] == [_text(m) for m in first[2]]


def test_stop_is_live_only_while_its_pane_streams() -> None:
    from components.chat_panes import build_pane, pane_outputs
    from pipeline.chat import ChatSession
    from pipeline.chat.session import Turn
    from pipeline.chat.streams import PaneState

    with gr.Blocks():
        panes = [build_pane(SessionSettings(), i) for i in range(3)]
    assert all(p[f"stop_{i}"].interactive is False for i, p in enumerate(panes))  # nothing runs at page open
    session = ChatSession()
    turn = Turn([[], [], []], [PaneState(status="streaming"), PaneState(status="done"), None])
    live = [pane_outputs(session, turn)[f"stop_{i}"].interactive for i in range(3)]
    assert live == [True, False, False]
    assert [pane_outputs(session)[f"stop_{i}"].interactive for i in range(3)] == [False] * 3


def test_every_pane_has_a_line_under_its_model_picker_so_the_chats_line_up() -> None:
    """With the stand-in note alone under the fine-tuned pane's picker, that pane's chat box sat lower
    than the other two (seen in Chromium): each pane has one short line, at page load and after a
    refresh of the pickers."""
    from components.chat_panes import build_pane, pane_names, pane_pickers

    settings = SessionSettings()
    with gr.Blocks():
        panes = [build_pane(settings, i) for i in range(3)]
    infos = [p[pane_names(i)["model"]].info for i, p in enumerate(panes)]
    refreshed = [pane_pickers(settings)[pane_names(i)["model"]].info for i in range(3)]
    # One line each at a pane's minimum width (~50 characters of the picker's small print).
    assert all(info and len(info) <= 50 for info in infos + refreshed)
    # The look-up found no fine-tuned model (nothing serves this session's endpoint): the base stands in.
    assert refreshed[1].startswith("None yet: the base stands in") and refreshed[0] == infos[0]
