"""The Evaluate tab over gradio_client: a sample benchmark scored for two models of a local server."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
from gradio_client import Client

from components.context import AppContext
from components.evaluate import build_evaluate_tab
from pipeline import drafts
from pipeline.endpoints import Endpoint, SessionSettings
from pipeline.evaluate import latest_results
from tests.fakes.chat_server import FakeChatServer

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "data" / "benchmarks" / "person_bench.jsonl"


def test_evaluate_run_scores_saves_and_warns_about_leaks():
    rows = [json.loads(line) for line in BENCH.read_text().splitlines() if line.strip()]
    expected = {r["messages"][-1]["content"]: r["expected"] for r in rows}

    def answers(model, messages):
        q = messages[-1]["content"]
        return f"That would be {expected[q]}." if model == "oracle" else "I have no idea who that is."

    visitor = "visitor-eval-ui-1"
    # One training example copies a benchmark question: the leakage check must say so.
    drafts.save_draft(visitor, [{"messages": [{"role": "user", "content": rows[0]["messages"][-1]["content"]},
                                              {"role": "assistant", "content": "x"}]}])
    with FakeChatServer(answers=answers) as srv:
        settings = SessionSettings(custom_endpoints={"fake": Endpoint("fake", "compatible", base_url=srv.base_url)},
                                   typed_keys={"fake": "k"})
        with gr.Blocks() as demo:
            ctx = AppContext(settings=gr.State(settings), visitor=gr.State(visitor), dataset_rev=gr.State(0),
                             recent_jobs=gr.State([]), remembered=gr.State(None))
            build_evaluate_tab(ctx)
        demo.queue().launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
        try:
            client = Client(demo.local_url, verbose=False)
            status, score, plot, drill = client.predict(
                "person_bench.jsonl", None, True, "fake", "oracle", True, "fake", "clueless", False, "fake", "",
                "fake", "judge", 4, 64, api_name="/evaluate_run")
        finally:
            demo.close()
    assert status.startswith("Done"), status
    board = {row[0]: row for row in score["data"]}
    n = len(rows)
    assert board["Base: oracle"][2] == f"{n}/{n}" and board["Fine-tuned: clueless"][2] == f"0/{n}"
    saved = latest_results(visitor)
    assert saved["benchmark"] == "person_bench.jsonl" and len(saved["items"]) == n
    assert saved["leakage"] and saved["leakage"][0]["index"] == 0
    assert drill["headers"][-2:] == ["Base: oracle", "Fine-tuned: clueless"]
