"""The Dataset tab's endpoints through gradio_client against the launched app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import drafts, ownership
from tests.browser_support import free_port

VISITOR = "client-test-visitor"
TOKEN = ""  # what the browser holds: the id with the server's signature (made when the app starts)


@pytest.fixture(scope="module")
def client():
    from gradio_client import Client

    import app

    # Signed now, not at import: with the whole suite collected, the workspace's secret at import time
    # was not the one the app checks against when these tests run.
    global TOKEN
    TOKEN = ownership.token_for(VISITOR)

    app.demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                            quiet=True)
    try:
        yield Client(app.demo.local_url, verbose=False)
    finally:
        app.demo.close()


def test_load_file_then_validate(client, tmp_path: Path) -> None:
    from gradio_client import handle_file

    path = tmp_path / "up.jsonl"
    good = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(12)]
    path.write_text("".join(json.dumps(e) + "\n" for e in good) + "{broken\n", encoding="utf-8")
    table, _page, summary, _plot, report, status = client.predict(
        handle_file(str(path)), False, "", "", TOKEN, "gpt-3.5-turbo-0125", 0, api_name="/load_file")
    assert len(table["data"]) == 13 and table["data"][-1][0] == "raw 1"
    assert "Loaded 12 example(s)" in status and "unreadable" in status
    assert report["examples"] == 12 and report["errors"][0]["code"] == "invalid_json"
    assert drafts.load_draft(VISITOR) == good  # saved to the visitor's draft at once

    table, _page, summary, _plot, report, _ = client.predict(TOKEN, "gpt-3.5-turbo-0125", 2,
                                                             api_name="/validate_dataset")
    assert report["n_epochs"] == 2 and report["tokens_approximate"] is False
    assert report["estimated_cost_usd"] == pytest.approx(report["billing_tokens_per_epoch"] * 2 * 8 / 1e6)
    assert "12 examples" in summary


def test_load_sample_and_bad_input(client) -> None:
    from gradio_client.exceptions import AppError

    from components.dataset_view import sample_choices

    names = sample_choices()
    assert names, "data/samples/*.jsonl should ship with the app"
    table, _, _, _, report, status = client.predict(names[0], False, TOKEN, "gpt-4o-mini-2024-07-18", 0,
                                                    api_name="/load_sample")
    assert report["examples"] == len(drafts.load_draft(VISITOR)) == len(table["data"]) > 0
    assert f"sample {names[0]}" in status
    with pytest.raises(AppError, match="reload the page"):
        client.predict("", "gpt-4o-mini-2024-07-18", 0, api_name="/clear_table")


def test_save_edits_from_a_fresh_client_does_not_duplicate(client) -> None:
    from gradio_client import Client

    fresh = Client(client.src, verbose=False)  # a new session: the table's drawn-from state is unset
    rows = fresh.predict(TOKEN, "gpt-4o-mini-2024-07-18", 0, api_name="/validate_dataset")[0]
    n = len(drafts.load_draft(VISITOR))
    rows["data"][0][2] = "changed through the API"
    table, *_ = fresh.predict(rows, TOKEN, "gpt-4o-mini-2024-07-18", 0, api_name="/save_edits")
    saved = drafts.load_draft(VISITOR)
    assert len(saved) == n and len(table["data"]) == len(rows["data"])
    assert [m["content"] for m in saved[0]["messages"] if m["role"] == "user"][0] == "changed through the API"


def test_a_redraw_that_read_a_draft_being_replaced_changes_nothing(monkeypatch) -> None:
    """Page-load redraw racing a sample load: its stale (empty) table must not land after the new one."""
    import gradio as gr

    from components import dataset as tab
    from components import dataset_render

    visitor = "redraw-race-visitor"
    drafts.save_draft(visitor, [])
    real_render = dataset_render.render

    def render_then_load(*args, **kwargs) -> dict:
        shown = real_render(*args, **kwargs)  # read the empty draft...
        drafts.save_draft(visitor, [{"messages": [{"role": "user", "content": "hi"}]}])  # ...then a load wrote
        return shown

    monkeypatch.setattr(dataset_render, "render", render_then_load)
    *_, out = tab.show_draft(visitor, 0, "gpt-4o-mini-2024-07-18", 0)
    assert out and all(isinstance(v, type(gr.skip())) for v in out.values())

    monkeypatch.setattr(dataset_render, "render", real_render)
    *_, out = tab.show_draft(visitor, 0, "gpt-4o-mini-2024-07-18", 0)
    assert len(out["table_df"]) == 1 and isinstance(out["status_md"], type(gr.skip()))
