"""The OpenAI path of fine-tuning, against a loopback stand-in that answers like OpenAI.

The stand-in (tests/fakes/openai_ft_stub.py) records every request, so these tests check the exact
bodies the openai SDK sends, and the errors a user meets: bad key, quota, 429 with Retry-After,
unknown model, invalid file, a job failing on the provider's side.
"""

from __future__ import annotations

import json

import openai
import pytest

from pipeline.errors import InputError, explain
from pipeline.finetune import jobs as ft
from pipeline.finetune.metrics import loss_frame, rows_from_csv, smooth
from pipeline.finetune.preflight import ConfirmationNeeded, check_base_model, offered_base_models
from pipeline.finetune.records import known_jobs, visitor_tag
from pipeline.finetune.session import start_job
from pipeline.finetune.watch import JobSnapshot, watch_job
from pipeline.models import openai_fine_tunable_models
from tests.fakes.openai_ft_stub import OpenAIFineTuneStub

MODEL = "gpt-4o-mini-2024-07-18"


def examples(n: int, tag: str = "q") -> list[dict]:
    return [{"messages": [{"role": "system", "content": "You answer riddles."},
                          {"role": "user", "content": f"Riddle {tag}{i}?"},
                          {"role": "assistant", "content": f"Step by step.\nFinal answer: {tag}{i}"}]}
            for i in range(n)]


@pytest.fixture
def stub():
    server = OpenAIFineTuneStub()
    yield server
    server.close()


def run_to_end(client, job_id: str, limit: int = 30) -> JobSnapshot:
    snap = None
    for _ in range(limit):
        snap = watch_job(client, job_id, snap)
        if snap.finished:
            return snap
    raise AssertionError(f"job did not finish: {snap}")


def test_start_sends_exact_bodies_and_watch_reads_everything(stub) -> None:
    client = stub.client(max_retries=0)
    train, valid = examples(12), examples(3, "v")
    started = start_job(client, train, MODEL, validation=valid, n_epochs=2, batch_size="auto",
                        learning_rate_multiplier="0.5", suffix="riddles", seed=7, name="riddles",
                        metadata={"distill_visitor": "abc"})
    uploads = stub.bodies("POST", "/v1/files")
    assert [u["purpose"] for u in uploads] == ["fine-tune", "fine-tune"]
    assert [u["filename"] for u in uploads] == ["riddles-train.jsonl", "riddles-validation.jsonl"]
    assert [json.loads(line) for line in uploads[0]["file"].decode().splitlines()] == train
    assert [json.loads(line) for line in uploads[1]["file"].decode().splitlines()] == valid
    assert stub.bodies("POST", "/v1/fine_tuning/jobs") == [{
        "model": MODEL,
        "training_file": started.training_file,
        "validation_file": started.validation_file,
        "suffix": "riddles",
        "seed": 7,
        "metadata": {"distill_visitor": "abc"},
        "method": {"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 2, "batch_size": "auto", "learning_rate_multiplier": 0.5}}},
    }]
    assert started.preflight.n_epochs == 2 and started.preflight.estimated_cost_usd > 0

    snap = run_to_end(client, started.job.id)
    assert snap.status == "succeeded" and snap.error is None
    assert snap.fine_tuned_model.startswith(f"ft:{MODEL}:stub-org:riddles:")
    assert snap.total_steps == 24 and snap.step == 24 and snap.remaining_s == 0
    assert [r["step"] for r in snap.metrics] == list(range(1, 25))
    assert snap.metrics[0]["train_loss"] > snap.metrics[-1]["train_loss"] == pytest.approx(0.6)
    assert all(r["valid_loss"] is not None and r["accuracy"] is not None for r in snap.metrics)
    assert [c["step"] for c in snap.checkpoints] == [24, 16, 8]
    assert snap.events[0]["message"] == "Created fine-tuning job"
    assert snap.events[-1]["message"] == "The job has successfully completed"
    assert len({e["id"] for e in snap.events}) == len(snap.events)  # incremental fetch, no repeats


def test_minimal_job_body_sends_auto_and_nothing_unasked(stub) -> None:
    client = stub.client(max_retries=0)
    started = start_job(client, examples(10), MODEL)
    body = stub.bodies("POST", "/v1/fine_tuning/jobs")[0]
    assert body == {"model": MODEL, "training_file": started.training_file, "method": {
        "type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}}}}


def test_job_failing_provider_side_shows_its_error(stub) -> None:
    client = stub.client(max_retries=0)
    stub.fail_next_job = ("server_error", "Training diverged: loss became NaN", None)
    job = start_job(client, examples(12), MODEL).job
    snap = run_to_end(client, job.id)
    assert snap.status == "failed" and snap.fine_tuned_model is None
    assert "Training diverged: loss became NaN" in snap.error and "server_error" in snap.error
    assert snap.events[-1]["level"] == "error"


def test_invalid_file_fails_the_job_with_the_providers_line(stub) -> None:
    client = stub.client(max_retries=0)
    bad = [*examples(2), "not an example", *examples(8)]
    file_id = ft.upload_examples(client, bad, "bad")
    job = ft.create_job(client, model=MODEL, training_file=file_id)
    snap = run_to_end(client, job.id)
    assert snap.status == "failed"
    assert "Line 3" in snap.error and "invalid_training_file" in snap.error and "Fix the file" in snap.error


def test_preflight_refuses_bad_data_before_any_upload(stub) -> None:
    client = stub.client(max_retries=0)
    with pytest.raises(InputError, match="error"):
        start_job(client, examples(4), MODEL)
    assert stub.bodies("POST", "/v1/files") == []


def test_cost_above_threshold_needs_confirmation(stub, monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_FINETUNE_CONFIRM_USD", "0.0000001")
    client = stub.client(max_retries=0)
    with pytest.raises(ConfirmationNeeded, match="above"):
        start_job(client, examples(12), MODEL)
    assert stub.bodies("POST", "/v1/files") == []
    assert start_job(client, examples(12), MODEL, confirmed=True).job.status == "validating_files"


def test_429_with_retry_after_is_retried_by_the_sdk(stub) -> None:
    client = stub.client(max_retries=2)
    stub.rate_limit("POST", "/v1/fine_tuning/jobs", retry_after="0.05")
    job = start_job(client, examples(10), MODEL).job
    bodies = stub.bodies("POST", "/v1/fine_tuning/jobs")
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert job.id.startswith("ftjob-")


def test_429_that_persists_says_how_long_to_wait(stub) -> None:
    client = stub.client(max_retries=0)
    stub.rate_limit("POST", "/v1/files", retry_after="7")
    with pytest.raises(openai.RateLimitError) as info:
        start_job(client, examples(10), MODEL)
    assert "wait 7 s" in explain(info.value)


def test_insufficient_quota_and_bad_key_messages(stub) -> None:
    stub.insufficient_quota("POST", "/v1/fine_tuning/jobs")
    with pytest.raises(openai.RateLimitError) as info:
        start_job(stub.client(max_retries=0), examples(10), MODEL)
    assert "quota" in explain(info.value) and "billing" in explain(info.value)

    bad = stub.client(api_key="sk-wrong-key-98765", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        start_job(bad, examples(10), MODEL)
    message = explain(info.value)
    assert "401" in message and "8765" not in message  # the key never reaches the message


def test_non_fine_tunable_model_refused_locally_and_by_the_provider(stub) -> None:
    offered = openai_fine_tunable_models()
    with pytest.raises(InputError, match="cannot fine-tune 'gpt-4'"):
        check_base_model("gpt-4", offered, openai_hosted=True)
    check_base_model("gpt-4o-mini", offered, openai_hosted=True)  # an alias OpenAI accepts
    with pytest.raises(InputError, match="does not serve"):
        check_base_model("no-such-model", ["a", "b"], openai_hosted=False)
    client = stub.client(max_retries=0)
    assert "gpt-4" in offered_base_models(client, openai_hosted=False)
    file_id = ft.upload_examples(client, examples(10), "x")
    with pytest.raises(openai.BadRequestError) as info:
        ft.create_job(client, model="gpt-4", training_file=file_id)
    assert "cannot use that model" in explain(info.value) and "not available for fine-tuning" in explain(info.value)


def test_upload_refused_by_the_provider_names_the_file_problem(stub) -> None:
    client = stub.client(max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("data.csv", b"a,b\n", "text/csv"), purpose="fine-tune")
    assert "refused the file" in explain(info.value) and "Must be .jsonl" in explain(info.value)


def test_cancel(stub) -> None:
    client = stub.client(max_retries=0)
    job = start_job(client, examples(40), MODEL).job
    snap = None
    while snap is None or snap.status != "running":
        snap = watch_job(client, job.id, snap)
    assert ft.cancel_job(client, job.id).status == "cancelled"
    snap = watch_job(client, job.id, snap)
    assert snap.finished and snap.status == "cancelled" and snap.remaining_s == 0
    with pytest.raises(openai.BadRequestError):
        ft.cancel_job(client, job.id)


def test_watcher_survives_rate_limits_and_network_errors_with_backoff(stub) -> None:
    client = stub.client(max_retries=0)
    job = start_job(client, examples(12), MODEL).job
    snap = watch_job(client, job.id)
    assert snap.warning is None and snap.status == "queued"

    stub.rate_limit("GET", f"/v1/fine_tuning/jobs/{job.id}", retry_after="30")
    limited = watch_job(client, job.id, snap)
    assert limited.status == "queued" and limited.failures == 1
    assert "429" in limited.warning and "Still watching" in limited.warning
    assert limited.next_poll_s() >= 30

    port = stub.base_url.split(":")[2].split("/")[0]
    stub.close()
    gone = openai.OpenAI(api_key="x", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=2)
    down = watch_job(gone, job.id, limited)
    down2 = watch_job(gone, job.id, down)
    assert down2.failures == 3 and "could not connect" in down2.warning  # the one translation (errors.explain)
    assert down2.next_poll_s() > down.next_poll_s() or down2.next_poll_s() == 60
    assert down2.status == "queued" and down2.events == snap.events  # last known state is kept


def test_new_events_pages_back_and_stops_at_known_ones(stub) -> None:
    client = stub.client(max_retries=0)
    job = start_job(client, examples(12), MODEL).job
    for _ in range(4):
        ft.retrieve_job(client, job.id)  # each retrieve moves the stand-in's job one tick
    first = ft.new_events(client, job.id, set(), page_size=2)
    assert len(first) >= 5 and first[0].message == "Created fine-tuning job"
    assert [e.created_at for e in first] == sorted(e.created_at for e in first)
    assert ft.new_events(client, job.id, {e.id for e in first}, page_size=2) == []
    ft.retrieve_job(client, job.id)
    more = ft.new_events(client, job.id, {e.id for e in first}, page_size=2)
    assert more and all(e.type == "metrics" for e in more)


def test_known_jobs_on_a_shared_endpoint_shows_only_the_visitors_own(stub, monkeypatch) -> None:
    client = stub.client(max_retries=0)
    mine = start_job(client, examples(10), MODEL, metadata={"distill_visitor": visitor_tag("visitor-aaaa")}).job
    theirs = start_job(client, examples(10), MODEL, metadata={"distill_visitor": visitor_tag("visitor-bbbb")}).job
    remembered = start_job(client, examples(10), MODEL).job
    recent = [{"job_id": remembered.id, "endpoint": "stub"}]
    # One user (localhost): every job, the CLI's too.
    alone = {r["job_id"] for r in known_jobs(client, "stub", "visitor-aaaa", recent, shared=True)}
    assert alone == {mine.id, theirs.id, remembered.id}
    monkeypatch.setenv("DISTILL_MULTI_USER", "1")
    # Several users: only the visitor's own; a job id the browser's list names proves nothing.
    shared = {r["job_id"] for r in known_jobs(client, "stub", "visitor-aaaa", recent, shared=True)}
    assert shared == {mine.id}
    private = {r["job_id"] for r in known_jobs(client, "stub", "visitor-aaaa", recent, shared=False)}
    assert private == {mine.id, theirs.id, remembered.id}


def test_hyperparameters_are_checked_before_anything_is_sent(stub) -> None:
    client = stub.client(max_retries=0)
    for bad in ({"n_epochs": 0}, {"n_epochs": 2.5}, {"batch_size": "big"}, {"learning_rate_multiplier": -1}):
        with pytest.raises(InputError):
            start_job(client, examples(10), MODEL, **bad)
    assert stub.requests == []
    assert ft.supervised_method(" AUTO ", "", None)["supervised"]["hyperparameters"] == {
        "n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}


def test_metrics_from_result_csv_and_smoothing() -> None:
    rows = rows_from_csv("\ufeffstep,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
                         "1,1.2,0.5,,\n2,0.9,0.6,1.0,0.55\n3,nan,0.7,,\n")
    assert rows == [
        {"step": 1, "train_loss": 1.2, "valid_loss": None, "accuracy": 0.5, "valid_accuracy": None},
        {"step": 2, "train_loss": 0.9, "valid_loss": 1.0, "accuracy": 0.6, "valid_accuracy": 0.55},
        {"step": 3, "train_loss": None, "valid_loss": None, "accuracy": 0.7, "valid_accuracy": None},
    ]
    assert smooth([1.0, None, 1.0]) == [pytest.approx(1.0), None, pytest.approx(1.0)]
    assert smooth([0.0, 1.0], weight=0.5) == [0.0, pytest.approx(2 / 3)]
    frame = loss_frame(rows)
    assert frame.to_dict("records") == [{"step": 1, "loss": 1.2, "series": "train"},
                                        {"step": 2, "loss": 0.9, "series": "train"},
                                        {"step": 2, "loss": 1.0, "series": "validation"}]


def test_loss_frame_names_every_series_from_the_first_point() -> None:
    """A chart fixes its series when built: the validation series must exist before its first value."""
    frame = loss_frame([{"step": 3, "train_loss": 1.5, "valid_loss": None}], series=("train", "validation"))
    assert list(frame["series"]) == ["train", "validation"] and frame["loss"].isna().tolist() == [False, True]
    assert loss_frame([], series=("train", "validation")).empty  # no points: nothing to name yet


def test_preflight_counts_the_epochs_the_provider_will_run() -> None:
    """OpenAI's "auto" rule by default; the embedded backend's own rule when the job runs there."""
    from pipeline.finetune.preflight import preflight
    from pipeline.local.dataset import resolved_auto_epochs

    data = examples(11)
    openai_rule = preflight(data, MODEL)
    local_rule = preflight(data, MODEL, auto_epochs=resolved_auto_epochs)
    assert local_rule.epochs_auto and local_rule.n_epochs == resolved_auto_epochs(11) == 4  # 2-4 epochs at batch 2
    assert openai_rule.n_epochs != local_rule.n_epochs
    assert local_rule.billing_tokens_per_epoch == openai_rule.billing_tokens_per_epoch
    assert preflight(data, MODEL, n_epochs=2, auto_epochs=resolved_auto_epochs).n_epochs == 2
