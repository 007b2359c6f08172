"""The Fine-tune tab's handlers (called directly) and its API through gradio_client, against the
OpenAI stand-in: draft source, preflight, confirmation, start, polling, success -> fine_tuned role,
re-attach after an app restart, cancel, and a watcher that keeps going through network errors."""

from __future__ import annotations

import json
import re
import secrets
import time

import pandas as pd
import pytest

from components import finetune_actions as act
from pipeline import drafts, ownership
from pipeline.endpoints import Endpoint, RoleChoice, SessionSettings
from pipeline.errors import InputError
from pipeline.finetune.records import recorded_jobs, visitor_tag
from tests.fakes.openai_ft_stub import OpenAIFineTuneStub
from tests.test_finetune_openai import MODEL, examples

DRAFT = act.SOURCES[0]


@pytest.fixture
def stub():
    server = OpenAIFineTuneStub()
    yield server
    server.close()


def settings_for(stub: OpenAIFineTuneStub) -> SessionSettings:
    endpoint = Endpoint("stub", "compatible", base_url=stub.base_url,
                        capabilities=frozenset({"chat", "model_listing", "fine_tuning"}))
    return SessionSettings(custom_endpoints={"stub": endpoint}, typed_keys={"stub": stub.api_key})


@pytest.fixture
def visitor() -> str:
    vid = "v" + secrets.token_hex(8)
    drafts.save_draft(vid, examples(20))
    return vid


def start(settings, visitor, recent=None, confirmed=False, suffix="tab") -> dict:
    return act.start_run(settings, visitor, recent, DRAFT, None, 0.1, "stub", MODEL, "auto", "auto", "auto", None,
                         suffix, confirmed=confirmed)


def poll_until_finished(settings, visitor, watch, limit=30) -> tuple[dict, dict]:
    for _ in range(limit):
        out = act.poll_job(settings, visitor, {**watch, "next_poll_at": 0.0}, False)
        watch = out["watch_state"]
        if watch["snapshot"]["status"] in ("succeeded", "failed", "cancelled"):
            return out, watch
    raise AssertionError("job did not finish")


def test_preflight_start_and_watch_to_success(stub, visitor) -> None:
    settings = settings_for(stub)
    assert act.list_base_models(settings, "stub")["model_dd"].choices[0][0] == "gpt-3.5-turbo"
    summary = act.check_run(settings, visitor, DRAFT, None, 0.1, "stub", MODEL, "auto")["preflight_md"]
    assert "18 training examples, 2 validation" in summary and "Estimated cost" in summary
    assert re.search(r"Groups of the same lesson: \d+ train, \d+ validation, none on both sides", summary)

    out = start(settings, visitor)
    watch = out["watch_state"]
    assert out["timer"].active and out["recent_jobs"][0] == {"job_id": watch["job_id"], "endpoint": "stub"}
    body = stub.bodies("POST", "/v1/fine_tuning/jobs")[0]
    assert body["metadata"] == {"distill_visitor": visitor_tag(visitor)} and body["suffix"] == "tab"
    assert body["validation_file"]  # the 10 % split was uploaded as validation data
    assert recorded_jobs(visitor)[0]["job_id"] == watch["job_id"]

    out, watch = poll_until_finished(settings, visitor, watch)
    assert 'data-status="succeeded"' in out["status_html"] and not out["timer"].active
    model = watch["snapshot"]["fine_tuned_model"]
    assert out["settings"].roles["fine_tuned"] == RoleChoice("stub", model)
    assert out["settings"] is not settings  # a new object, so gradio fires settings.change
    assert model in out["progress_md"] and re.search(r"step \d+/\d+", out["progress_md"])
    snippet = out["progress_md"].split("```python\n")[1].split("```")[0]  # how to call the new model
    assert f'model="{model}"' in snippet and f'base_url="{stub.base_url}' in snippet and stub.api_key not in snippet
    chart = out["loss_plot"].value  # LinePlot's postprocessed data: columns + rows
    rows = pd.DataFrame(chart["data"], columns=chart["columns"])
    assert set(rows["series"]) == {"train", "validation"} and out["loss_plot"].x_lim[1] >= rows["step"].max()
    smoothed = act.redraw_chart(watch, True)["loss_plot"].value
    assert len(smoothed["data"]) == len(rows) and smoothed["data"] != chart["data"]
    assert "The job has successfully completed" in out["events_df"]["message"].iloc[0]
    assert len(out["checkpoints_df"]) == 3 and not out["cancel_btn"].interactive
    assert recorded_jobs(visitor)[0]["status"] == "succeeded"


def test_reattach_after_an_app_restart(stub, visitor) -> None:
    out = start(settings_for(stub), visitor)
    job_id = out["watch_state"]["job_id"]
    act.poll_job(settings_for(stub), visitor, out["watch_state"], False)
    # Restart: every gr.State is new; the browser still has its BrowserState, the workspace its record.
    # (the browser's list, or with a cleared browser the workspace record alone)
    for recent in (out["recent_jobs"], None):
        fresh = settings_for(stub)
        again = act.reattach(fresh, visitor, recent)
        assert again["watch_state"]["job_id"] == job_id and again["timer"].active
        assert job_id in [value for _, value in again["jobs_dd"].choices]
        assert again["endpoint_dd"].value == "stub" and again["model_dd"].choices
    final, watch = poll_until_finished(fresh, visitor, again["watch_state"])
    assert watch["snapshot"]["status"] == "succeeded" and final["settings"].roles["fine_tuned"].endpoint == "stub"
    assert act.reattach(settings_for(stub), visitor, None).get("watch_state") is None  # nothing running


def test_cost_confirmation(stub, visitor, monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_FINETUNE_CONFIRM_USD", "0.0000001")
    settings = settings_for(stub)
    out = start(settings, visitor)
    assert out["confirm_row"].visible and "above" in out["confirm_md"] and "watch_state" not in out
    assert stub.bodies("POST", "/v1/files") == []
    out = start(settings, visitor, confirmed=True)
    assert out["watch_state"]["job_id"] and not out["confirm_row"].visible


def test_cancel_asks_first(stub, visitor) -> None:
    settings = settings_for(stub)
    watch = start(settings, visitor)["watch_state"]
    asked = act.ask_cancel(watch)
    assert asked["cancel_row"].visible and watch["job_id"] in asked["cancel_md"]
    assert stub.bodies("POST", f"/v1/fine_tuning/jobs/{watch['job_id']}/cancel") == []
    assert not act.keep_running()["cancel_row"].visible
    out = act.cancel_run(settings, visitor, watch)
    assert 'data-status="cancelled"' in out["status_html"]
    final, _ = poll_until_finished(settings, visitor, out["watch_state"])
    assert 'data-status="cancelled"' in final["status_html"] and "fine_tuned" not in settings.roles


def test_failed_job_shows_the_provider_error(stub, visitor) -> None:
    settings = settings_for(stub)
    stub.fail_next_job = ("server_error", "Out of capacity, try later", None)
    out, _ = poll_until_finished(settings, visitor, start(settings, visitor)["watch_state"])
    assert 'data-status="failed"' in out["status_html"] and "Out of capacity" in out["progress_md"]
    assert "settings" not in out


def test_polling_keeps_going_through_network_errors(stub, visitor) -> None:
    settings = settings_for(stub)
    watch = start(settings, visitor)["watch_state"]
    stub.close()
    out = act.poll_job(settings, visitor, watch, False)
    assert "could not connect" in out["progress_md"] and "timer" not in out  # the timer keeps ticking
    assert out["watch_state"]["next_poll_at"] > time.time()
    waiting = act.poll_job(settings, visitor, out["watch_state"], False)  # not due yet: backoff
    assert waiting == {"watch_state": out["watch_state"]}


def test_draft_and_upload_errors_are_readable(stub, visitor, tmp_path) -> None:
    settings = settings_for(stub)
    with pytest.raises(InputError, match="Upload a training file"):
        act.check_run(settings, visitor, act.SOURCES[1], None, 0.1, "stub", MODEL, "auto")
    empty = "v" + secrets.token_hex(8)
    with pytest.raises(InputError, match="draft is empty"):
        act.check_run(settings, empty, DRAFT, None, 0.1, "stub", MODEL, "auto")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(e) + "\n" for e in examples(12)) + "{broken\n", encoding="utf-8")
    summary = act.check_run(settings, visitor, act.SOURCES[1], str(bad), 0, "stub", MODEL, "auto")["preflight_md"]
    assert "Error" in summary and "13" in summary  # the line that is not JSON is named


def test_tab_api_through_gradio_client(stub, tmp_path, monkeypatch) -> None:
    from gradio_client import Client, handle_file

    import app

    monkeypatch.setenv("OPENAI_API_KEY", stub.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(e) + "\n" for e in examples(16)), encoding="utf-8")
    demo = app.build_app()
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        token = ownership.mint_visitor()  # what the browser keeps (a BrowserState is an API input)
        visitor = ownership.verify_visitor(token)
        summary = client.predict(token, act.SOURCES[1], handle_file(str(train)), 0.25, "openai", MODEL,
                                 "auto", api_name="/finetune_preflight")
        assert "12 training examples, 4 validation" in summary
        client.predict(token, [], act.SOURCES[1], handle_file(str(train)), 0.25, "openai", MODEL, "auto",
                       "auto", "auto", None, "api", api_name="/finetune_start")
        body = stub.bodies("POST", "/v1/fine_tuning/jobs")[0]
        assert body["suffix"] == "api" and body["model"] == MODEL
        assert body["metadata"] == {"distill_visitor": visitor_tag(visitor)}
        assert recorded_jobs(visitor)[0]["endpoint"] == "openai"
    finally:
        demo.close()


def test_a_job_started_elsewhere_is_watched_and_the_list_follows_its_status(stub, visitor) -> None:
    """The Start tab's demo starts a job: the Fine-tune tab watches it without an Open click, and
    the job list's entry reads 'succeeded' once it has."""
    settings = settings_for(stub)
    started = start(settings, visitor)  # as if another tab had started it: only the recent list knows
    recent = started["recent_jobs"]
    job_id = recent[0]["job_id"]
    out = act.follow_jobs(settings, visitor, recent, "stub", None, False)
    assert out["watch_state"]["job_id"] == job_id and out["timer"].active
    assert out["jobs_dd"].value == job_id

    watching = act.follow_jobs(settings, visitor, recent, "stub", out["watch_state"], False)
    assert "watch_state" not in watching  # already watching a running job: only the list refreshes

    watch, final = out["watch_state"], None
    for _ in range(30):
        final = act.poll_job(settings, visitor, {**watch, "next_poll_at": 0.0}, False, recent)
        watch = final["watch_state"]
        if watch["snapshot"]["status"] == "succeeded":
            break
    labels = [label for label, value in final["jobs_dd"].choices if value == job_id]
    assert final["jobs_dd"].value == job_id and "succeeded" in labels[0]


def test_start_and_confirm_are_one_handler_and_only_confirm_accepts_the_cost() -> None:
    """Both buttons run start_run; the confirm button's wiring alone says the visitor accepted the cost."""
    import gradio as gr

    from components.context import AppContext
    from components.finetune import build_finetune_tab

    with gr.Blocks() as demo:
        build_finetune_tab(AppContext(settings=gr.State(SessionSettings()), visitor=gr.State(None),
                                      dataset_rev=gr.State(0), recent_jobs=gr.State([]), remembered=gr.State(None)))
    flags = {fn.api_name: (fn.fn.__name__,
                           [s.value for s in fn.inputs if isinstance(s, gr.State) and isinstance(s.value, bool)])
             for fn in demo.fns.values() if fn.api_name in ("finetune_start", "finetune_start_confirmed")}
    assert flags == {"finetune_start": ("start_run", [False]), "finetune_start_confirmed": ("start_run", [True])}
