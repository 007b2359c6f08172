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
from pipeline.evaluate.tables import SCOREBOARD_COLUMNS
from tests.browser_support import free_port
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
        # Sized by content, a fine-tuned model's long id took most of the row and broke the figures'
        # headers into one letter a line: each column has its width.
        board = next(c["props"] for c in demo.config["components"] if c["props"].get("elem_id") == "eval-scoreboard")
        assert len(board["column_widths"]) == len(SCOREBOARD_COLUMNS)
        demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            client = Client(demo.local_url, verbose=False)
            out = client.predict(
                "person_bench.jsonl", None, True, "fake", "oracle", False, 3, True, "fake", "clueless", False, "fake",
                "", "fake", "judge", 4, 64, "", api_name="/evaluate_run")
        finally:
            demo.close()
    names = ("status_md", "verdict_md", "breakeven_md", "empty_md", "score_df", "chart_plot", "drill_df", "runs_dd",
             "compare_dd", "stop_btn", "run_btn", "training_cost_tb")
    got = dict(zip(names, out, strict=False))
    status, score, drill = got["status_md"], got["score_df"]["value"], got["drill_df"]["value"]
    assert status.startswith("Done"), status
    board = {row[0]: row for row in score["data"]}
    n = len(rows)
    assert board["Base: oracle"][3] == f"{n}/{n}" and board["Fine-tuned: clueless"][3] == f"0/{n}"
    assert "Base: oracle beats Fine-tuned: clueless" in got["verdict_md"].replace("**", "")
    assert got["chart_plot"]["visible"] and got["chart_plot"]["value"]["type"] == "plotly"
    assert got["runs_dd"]["choices"] and got["empty_md"] == {"visible": False, "__type__": "update"}
    saved = latest_results(visitor)
    assert saved["benchmark"] == "person_bench.jsonl" and len(saved["items"]) == n
    assert saved["leakage"] and saved["leakage"][0]["index"] == 0
    assert drill["headers"][-2:] == ["Base: oracle", "Fine-tuned: clueless"]


def test_each_contestants_refresh_lists_its_own_endpoints_models():
    """One handler serves the four ↻ buttons: each reads its slot's endpoint and fills its slot's model list."""
    with FakeChatServer(models=["m-one", "m-two"]) as srv:
        settings = SessionSettings(custom_endpoints={"fake": Endpoint("fake", "compatible", base_url=srv.base_url)},
                                   typed_keys={"fake": "k"})
        with gr.Blocks() as demo:
            c = build_evaluate_tab(AppContext(settings=gr.State(settings), visitor=gr.State("v-eval-refresh"),
                                              dataset_rev=gr.State(0), recent_jobs=gr.State([]),
                                              remembered=gr.State(None)))
        for slot in ("base", "fine_tuned", "teacher", "judge"):
            dep = next(fn for fn in demo.fns.values() if (c[f"{slot}_refresh"]._id, "click") in fn.targets)
            assert dep.inputs[1:] == [c[f"{slot}_ep"], c[f"{slot}_model"]] and dep.outputs == [c[f"{slot}_model"]]
            shown = dep.fn(settings, "fake", "not-listed")[c[f"{slot}_model"]]
            assert shown.choices == [("m-one", "m-one"), ("m-two", "m-two")] and shown.value == "m-one"
