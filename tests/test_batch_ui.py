"""The batches panel and the batch modes of the Generate and Evaluate tabs, handlers called directly
against the stand-in Batch API (real openai SDK over real HTTP): submit (and the confirmation above the
threshold), list after a restart, refresh with backoff, collect exactly once, cancel, retry the failed
requests, export and import, and the one-line message of an endpoint that runs no batches."""

from __future__ import annotations

import json
import secrets
import socket
from pathlib import Path

import gradio as gr
import pytest

from components import batches as panel
from components import batches_actions as actions
from components import batches_view as view
from components import evaluate_batch as eval_batch
from components import generate_batch as gen_batch
from components.errors import shown_errors
from components.evaluate_bench import UPLOADED
from components.generate_run import MAX_VARS
from pipeline import batch, drafts
from pipeline.endpoints import Endpoint, SessionSettings
from pipeline.generate import load_template
from tests.fakes.batch_server import FakeBatches
from tests.fakes.fake_openai import FakeOpenAI

BENCH = "person_bench.jsonl"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake():
    with FakeBatches() as server:
        yield server


def settings_for(base_url: str, confirm_above: float = 100.0) -> SessionSettings:
    s = SessionSettings(confirm_above_usd=confirm_above)
    s.custom_endpoints["fake"] = Endpoint("fake", "compatible", base_url=base_url)
    s.typed_keys["fake"] = "test-key"
    return s


def visitor_id() -> str:
    return "v" + secrets.token_hex(8)


def gen_form(visitor: str | None, settings: SessionSettings, n: int = 6, template: str = "reasoning") -> dict:
    defaults = [v.default for v in load_template(template).variables.values()][:MAX_VARS]
    boxes = {f"var_box_{i}": defaults[i] if i < len(defaults) else "" for i in range(MAX_VARS)}
    return {"template_dd": template, **boxes, "endpoint_dd": "fake", "model_dd": "gpt-4o-mini", "n_num": n,
            "concurrency_sl": 4, "temperature_sl": 0.9, "budget_num": None, "seed_num": 0, "check_cb": False,
            "source_file": None, "visitor": visitor, "settings": settings, "batch_kind": "generate"}


def submit_gen(visitor: str, settings: SessionSettings, n: int = 6) -> dict:
    return gen_batch.submit_generation_batch(**gen_form(visitor, settings, n))


def only_record(visitor: str) -> batch.BatchRecord:
    [record] = batch.list_batches(visitor)
    return record


def test_submit_lists_the_batch_with_its_cost_and_starts_the_timer(fake: FakeBatches) -> None:
    v = visitor_id()
    out = submit_gen(v, settings_for(fake.base_url))
    record = only_record(v)
    assert fake.created == 1 and record.state == "validating"
    assert out["batch_msg_md"].startswith(f"Submitted **{record.id}**") and "at batch prices" in out["batch_msg_md"]
    assert record.id in out["batch_list_html"] and "<progress" in out["batch_list_html"]
    assert out["batch_dd"]["value"] == record.id and out["batch_timer"]["active"] is True
    assert out["batch_cancel_btn"]["interactive"] is True and out["batch_retry_btn"]["interactive"] is False
    assert "generation" in out["batch_list_html"] and view.when(record.expected_by()) in out["batch_list_html"]


def test_above_the_threshold_it_asks_first_and_submits_only_when_confirmed(fake: FakeBatches) -> None:
    v = visitor_id()
    s = settings_for(fake.base_url, confirm_above=0.0)
    out = submit_gen(v, s)
    record = only_record(v)
    assert fake.created == 0 and record.state == "built"
    assert out["batch_confirm_row"]["visible"] is True and out["batch_pending"] == record.id
    assert "above your $0.00 confirmation threshold" in out["batch_confirm_md"]
    assert f"{record.requests:,} requests" in out["batch_confirm_md"]
    done = actions.submit_confirmed(s, v, "generate", out["batch_pending"])
    assert fake.created == 1 and done["batch_confirm_row"]["visible"] is False and done["batch_pending"] is None
    assert batch.load_batch(v, record.id).state == "validating"


def test_dont_submit_keeps_the_request_file_for_elsewhere(fake: FakeBatches) -> None:
    v = visitor_id()
    out = submit_gen(v, settings_for(fake.base_url, confirm_above=0.0))
    kept = actions.keep_unsubmitted(out["batch_pending"])
    assert kept["batch_confirm_row"]["visible"] is False and "Download request file" in kept["batch_msg_md"]
    record = only_record(v)
    assert fake.created == 0 and "not submitted" in panel.show_batches(v, "generate", None)["batch_list_html"]
    picked = panel.pick_batch(v, record.id)
    assert picked["batch_export_btn"]["interactive"] is True and picked["batch_collect_btn"]["interactive"] is False
    file = actions.export_batch(v, record.id)["batch_file"]["value"]
    assert len(Path(file).read_text().splitlines()) == record.requests


def test_a_day_away_shows_the_same_list_and_refresh_follows_it(fake: FakeBatches) -> None:
    v = visitor_id()
    s = settings_for(fake.base_url)
    submit_gen(v, s)
    record = only_record(v)
    # A new page (or an app restart): the list comes from the workspace records, per visitor.
    again = panel.follow_kind(v, "generate", None)
    assert again["batch_dd"]["value"] == record.id and again["batch_timer"]["active"] is True
    newcomer = visitor_id()
    first = panel.follow_kind(newcomer, "generate", None)
    assert first["batch_dd"]["choices"] == [] and "batch-empty" in first["batch_list_html"]
    # Even with nothing to follow the timer beats once: the page-load list can be stale by the time it
    # arrives (a batch submitted meanwhile); the beat lists again and stops the timer.
    assert first["batch_timer"]["active"] is True
    beat = panel.tick_batches(s, newcomer, "generate", None, first["batch_watch"])
    assert beat["batch_timer"]["active"] is False and "batch-empty" in beat["batch_list_html"]
    assert "1 generation batch" in panel.show_batches(v, "eval", None)["batch_other_md"]
    fake.finish()
    out = panel.refresh_batches(s, v, "generate", record.id)
    assert "finished: collect it" in out["batch_list_html"] and out["batch_timer"]["active"] is False


def test_the_timer_backs_off_while_nothing_changes(fake: FakeBatches) -> None:
    v = visitor_id()
    s = settings_for(fake.base_url)
    submit_gen(v, s)
    record = only_record(v)
    first = panel.tick_batches(s, v, "generate", record.id, None)  # validating -> in_progress: news
    assert first["batch_watch"]["every"] == panel.FIRST_POLL_S
    assert panel.tick_batches(s, v, "generate", record.id, first["batch_watch"]) == {}  # not due yet
    due = {**first["batch_watch"], "next_at": 0.0}
    second = panel.tick_batches(s, v, "generate", record.id, due)  # no change: the wait doubles
    assert second["batch_watch"]["every"] == 2 * panel.FIRST_POLL_S
    fake.finish()
    third = panel.tick_batches(s, v, "generate", record.id, {**second["batch_watch"], "next_at": 0.0})
    assert third["batch_watch"]["every"] == panel.FIRST_POLL_S and third["batch_timer"]["active"] is False


def test_collect_adds_the_examples_once_and_says_how_many(fake: FakeBatches) -> None:
    v = visitor_id()
    s = settings_for(fake.base_url)
    submit_gen(v, s, n=6)
    record = only_record(v)
    with pytest.raises(gr.Error, match="still"):
        shown_errors(actions.collect_batch)(s, v, "generate", record.id, 3)
    fake.finish()
    assert panel.pick_batch(v, record.id)["batch_collect_btn"]["interactive"] is True
    out = actions.collect_batch(s, v, "generate", record.id, 3)
    added = len(drafts.load_draft(v))
    assert added >= 6 and out["dataset_rev"] == 4
    assert f"{added} examples added to your draft" in out["batch_msg_md"] and "0 requests failed" in out["batch_msg_md"]
    assert "collected" in out["batch_list_html"] and out["batch_collect_btn"]["interactive"] is False
    again = actions.collect_batch(s, v, "generate", record.id, 4)
    assert "already collected" in again["batch_msg_md"] and "dataset_rev" not in again
    assert len(drafts.load_draft(v)) == added


def test_retry_failed_sends_only_those_as_a_new_batch() -> None:
    with FakeBatches(fail_lines=(0, 2)) as fake:
        v = visitor_id()
        s = settings_for(fake.base_url)
        submit_gen(v, s, n=6)
        record = only_record(v)
        fake.finish()
        out = actions.collect_batch(s, v, "generate", record.id, 0)
        assert "2 requests failed" in out["batch_msg_md"] and "Retry failed" in out["batch_msg_md"]
        assert out["batch_retry_btn"]["interactive"] is True
        retried = actions.retry_batch(s, v, "generate", record.id)
        new = batch.load_batch(v, retried["batch_dd"]["value"])
        assert new.retry_of == record.id and new.requests == 2 and new.state == "validating"
        assert fake.created == 2 and retried["batch_msg_md"].startswith(f"Submitted **{new.id}**")


def test_cancel_a_running_batch(fake: FakeBatches) -> None:
    v = visitor_id()
    s = settings_for(fake.base_url)
    submit_gen(v, s)
    record = only_record(v)
    out = actions.cancel_batch(s, v, "generate", record.id)
    assert out["batch_msg_md"].startswith(f"Cancelling {record.id}")
    assert batch.load_batch(v, record.id).state in ("cancelling", "cancelled")
    panel.refresh_batches(s, v, "generate", record.id)
    assert batch.load_batch(v, record.id).state == "cancelled"
    with pytest.raises(gr.Error, match="nothing to cancel"):
        shown_errors(actions.cancel_batch)(s, v, "generate", record.id)


def test_import_a_vllm_results_file_collects_it(tmp_path: Path, fake: FakeBatches) -> None:
    v = visitor_id()
    out = submit_gen(v, settings_for(fake.base_url, confirm_above=0.0), n=5)
    actions.keep_unsubmitted(out["batch_pending"])
    record = only_record(v)
    requests = [json.loads(x) for x in Path(actions.export_batch(v, record.id)["batch_file"]["value"]).read_text().splitlines()]
    engine = FakeBatches(style="vllm")  # only its answer writer: what `vllm run-batch` would write
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(engine._line(r, i, 200, engine._answer(r["body"], i, False, "x"))) + "\n"
                               for i, r in enumerate(requests)))
    bad = tmp_path / "other.jsonl"
    bad.write_text(json.dumps({"custom_id": "not-ours", "response": {"status_code": 200, "body": {}}}) + "\n")
    with pytest.raises(gr.Error, match="not a results file of batch"):
        shown_errors(actions.import_batch)(SessionSettings(), v, "generate", record.id, str(bad), 0)
    got = actions.import_batch(SessionSettings(), v, "generate", record.id, str(results), 0)
    assert got["dataset_rev"] == 1 and "examples added to your draft" in got["batch_msg_md"]
    assert len(drafts.load_draft(v)) >= 5 and got["batch_import_file"] is None


def test_an_endpoint_without_batches_gets_one_clear_line(home: Path) -> None:
    with FakeOpenAI(seed=3) as chat_only:
        v = visitor_id()
        out = gen_batch.submit_generation_batch(**gen_form(v, settings_for(chat_only.base_url)))
    message = out["batch_msg_md"]
    assert message.startswith("**Not submitted:**") and "run batches" in message
    assert "Traceback" not in message and "\n" not in message.strip()
    record = only_record(v)  # the request file is kept, listed, ready to export and run elsewhere
    assert record.state == "built" and out["batch_dd"]["value"] == record.id
    assert out["batch_export_btn"]["interactive"] is True


def test_only_write_the_request_file_sends_nothing(fake: FakeBatches) -> None:
    v = visitor_id()
    out = gen_batch.submit_generation_batch(**gen_form(v, settings_for(fake.base_url, confirm_above=0.0)), batch_send=False)
    record = only_record(v)
    assert fake.created == 0 and fake.uploads == 0 and record.state == "built"
    assert out["batch_file"]["visible"] is True and Path(out["batch_file"]["value"]) == batch.request_file(record)
    assert "Wrote the request file" in out["batch_msg_md"] and "vllm run-batch" in out["batch_msg_md"]


def test_a_batch_over_the_budget_is_not_sent(fake: FakeBatches) -> None:
    v = visitor_id()
    out = gen_batch.submit_generation_batch(**{**gen_form(v, settings_for(fake.base_url), n=40), "budget_num": 1e-6})
    assert fake.created == 0 and out["batch_msg_md"].startswith("Not submitted") and "budget" in out["batch_msg_md"]


def test_no_visitor_id_never_shows_the_command_lines_records(fake: FakeBatches) -> None:
    submit_gen(visitor_id(), settings_for(fake.base_url))
    assert panel.show_batches(None, "generate", None)["batch_dd"]["choices"] == []
    with pytest.raises(gr.Error, match="session"):
        shown_errors(gen_batch.submit_generation_batch)(**gen_form(None, settings_for(fake.base_url)))


def test_evaluation_batch_lands_on_the_scoreboard(fake: FakeBatches) -> None:
    v = visitor_id()
    s = settings_for(fake.base_url)
    form = {"bench_dd": BENCH, "upload_file": None, "base_use": True, "base_ep": "fake", "base_model": "gpt-4o-mini",
            "few_shot_use": False, "shots_sl": 3, "fine_tuned_use": True, "fine_tuned_ep": "fake",
            "fine_tuned_model": "gpt-4o", "teacher_use": False, "teacher_ep": "fake", "teacher_model": "x",
            "judge_ep": "fake", "judge_model": "", "max_tokens_nb": 64, "settings": s, "visitor": v,
            "batch_kind": "eval"}
    with pytest.raises(gr.Error, match="one endpoint"):
        shown_errors(eval_batch.submit_evaluation_batch)(**{**form, "teacher_use": True, "teacher_ep": "local"})
    preview = eval_batch.preview_evaluation_batch(panel.MODES[1], **{k: form[k] for k in form if k != "batch_kind"})
    out = eval_batch.submit_evaluation_batch(**form)
    record = only_record(v)
    # What the preview said before anything was written is what the built request file holds.
    built = batch.estimate_cost(record)
    assert f"{built.requests:,} requests, ~{built.input_tokens:,} input" in preview["batch_msg_md"]
    assert "18 questions × 2 contestants" in preview["batch_msg_md"]
    assert record.kind == "eval" and len(record.parts) == 2 and out["batch_msg_md"].startswith("Submitted")
    assert "evaluation" in out["batch_list_html"]
    fake.finish()
    got = actions.collect_batch(s, v, "eval", record.id, 0)
    assert "scoreboard" in got["batch_msg_md"] and "dataset_rev" not in got
    shown = eval_batch.show_batch_results(got["batch_results"], v)
    assert shown["score_df"].visible is True and shown["status_md"].startswith("Batch results")
    labels = [row[0] for row in shown["score_df"].value["data"]]
    assert any("gpt-4o-mini" in label for label in labels) and any("gpt-4o" in label for label in labels)


def test_the_batch_button_replaces_start_in_batch_mode() -> None:
    on = gen_batch.switch_mode(panel.MODES[1])
    assert on["batch_submit_btn"]["visible"] is True and on["start_btn"]["visible"] is False
    off = eval_batch.switch_mode(panel.MODES[0])
    assert off["batch_submit_btn"]["visible"] is False and off["run_btn"]["visible"] is True


def test_a_provider_that_hangs_is_one_line_and_the_timer_backs_off(fake: FakeBatches, monkeypatch) -> None:
    v = visitor_id()
    submit_gen(v, settings_for(fake.base_url))
    record = only_record(v)
    monkeypatch.setattr(panel, "POLL_TIMEOUT_S", 0.5)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        hung = settings_for(f"http://127.0.0.1:{silent.getsockname()[1]}/v1")
        out = panel.tick_batches(hung, v, "generate", record.id, {"next_at": 0.0, "every": 40.0, "seen": None})
    assert out["batch_msg_md"].startswith(f"{record.id}: ") and "\n" not in out["batch_msg_md"]
    assert out["batch_watch"]["every"] == 80.0 and out["batch_timer"]["active"] is True


def test_words_for_free_and_priced_batches() -> None:
    free = batch.BatchEstimate(requests=3, input_tokens=10, output_tokens=10, batch_cost_usd=0.0,
                               max_batch_cost_usd=0.0, interactive_cost_usd=0.0)
    assert view.estimate_words(free) == "3 requests: free (no provider charges for this model)"
    paid = batch.BatchEstimate(requests=1, input_tokens=10, output_tokens=10, batch_cost_usd=0.5,
                               max_batch_cost_usd=1.0, interactive_cost_usd=1.0)
    assert "$0.5000 at batch prices" in view.estimate_words(paid) and view.plural(1, "reply", "replies") == "1 reply"


def test_answer_checks_go_out_as_a_second_batch_and_the_panel_follows_it(fake: FakeBatches) -> None:
    v = visitor_id()
    s = settings_for(fake.base_url)
    gen_batch.submit_generation_batch(**{**gen_form(v, s, n=4), "check_cb": True})
    record = only_record(v)
    fake.finish()
    first = actions.collect_batch(s, v, "generate", record.id, 0)
    assert "answer checks as a second batch" in first["batch_msg_md"] and "dataset_rev" not in first
    assert first["batch_timer"]["active"] is True and drafts.load_draft(v) == []
    fake.finish()
    second = actions.collect_batch(s, v, "generate", record.id, 0)
    assert "dropped by the answer check" in second["batch_msg_md"]
    assert batch.load_batch(v, record.id).state == "collected"


def test_evaluation_batch_takes_the_judge_on_its_endpoint(fake: FakeBatches, tmp_path: Path) -> None:
    v = visitor_id()
    bench = tmp_path / "judged.jsonl"
    bench.write_text(json.dumps({"messages": [{"role": "user", "content": "Name a colour"}], "expected": "blue",
                                "scoring": "judge"}) + "\n", encoding="utf-8")
    form = {"bench_dd": UPLOADED, "upload_file": str(bench), "base_use": True, "base_ep": "fake",
            "base_model": "gpt-4o-mini", "few_shot_use": False, "shots_sl": 3, "fine_tuned_use": False,
            "fine_tuned_ep": "fake", "fine_tuned_model": "", "teacher_use": False, "teacher_ep": "fake",
            "teacher_model": "", "judge_ep": "local", "judge_model": "gpt-4.1-nano", "max_tokens_nb": 64,
            "settings": settings_for(fake.base_url), "visitor": v, "batch_kind": "eval"}
    with pytest.raises(gr.Error, match="judge goes to the contestants' endpoint"):
        shown_errors(eval_batch.submit_evaluation_batch)(**form)
    out = eval_batch.submit_evaluation_batch(**{**form, "judge_ep": "fake"})
    record = only_record(v)
    assert record.plan["judge"] == {"model": "gpt-4.1-nano"} and out["batch_msg_md"].startswith("Submitted")


def test_the_evaluation_batch_preview_counts_the_judges_second_batch(fake: FakeBatches, tmp_path: Path) -> None:
    v = visitor_id()
    bench = tmp_path / "judged.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Describe colour number {i} in a sentence"}],
             "expected": f"colour {i} is a shade of blue", "scoring": "judge"} for i in range(2)]
    rows.append({"messages": [{"role": "user", "content": "What is 40 + 2?"}], "expected": "42",
                 "scoring": "final_answer"})
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    form = {"bench_dd": UPLOADED, "upload_file": str(bench), "base_use": True, "base_ep": "fake",
            "base_model": "gpt-4o-mini", "few_shot_use": False, "shots_sl": 3, "fine_tuned_use": True,
            "fine_tuned_ep": "fake", "fine_tuned_model": "gpt-4o", "teacher_use": False, "teacher_ep": "fake",
            "teacher_model": "", "judge_ep": "fake", "judge_model": "gpt-4.1-nano", "max_tokens_nb": 64,
            "settings": settings_for(fake.base_url), "visitor": v}
    said = eval_batch.preview_evaluation_batch(panel.MODES[1], **form)["batch_msg_md"]
    eval_batch.submit_evaluation_batch(**form, batch_kind="eval")
    built = batch.estimate_cost(only_record(v))
    # 3 questions x 2 contestants, then the 2 judge-scored answers of each contestant to the judge
    assert built.requests == 10 and "then 4 answers to the judge (gpt-4.1-nano) as a second batch" in said
    assert view.estimate_words(built) in said  # the same requests, tokens and batch-price cost as the built file
    unpriced = eval_batch.preview_evaluation_batch(panel.MODES[1], **{**form, "judge_model": "judge-without-price"})
    assert "no batch price known for judge-without-price" in unpriced["batch_msg_md"]
    no_judge = eval_batch.preview_evaluation_batch(panel.MODES[1], **{**form, "judge_model": ""})
    assert "need a judge model" in no_judge["batch_msg_md"]


def test_importing_a_judged_evaluations_results_sends_the_judge(fake: FakeBatches, tmp_path: Path) -> None:
    v = visitor_id()
    bench = tmp_path / "judged.jsonl"
    bench.write_text(json.dumps({"messages": [{"role": "user", "content": "Name a colour"}], "expected": "42",
                                "scoring": "judge"}) + "\n", encoding="utf-8")
    s = settings_for(fake.base_url)
    form = {"bench_dd": UPLOADED, "upload_file": str(bench), "base_use": True, "base_ep": "fake",
            "base_model": "gpt-4o-mini", "few_shot_use": False, "shots_sl": 3, "fine_tuned_use": False,
            "fine_tuned_ep": "fake", "fine_tuned_model": "", "teacher_use": False, "teacher_ep": "fake",
            "teacher_model": "", "judge_ep": "fake", "judge_model": "gpt-4.1-nano", "max_tokens_nb": 64,
            "settings": s, "visitor": v, "batch_kind": "eval"}
    eval_batch.submit_evaluation_batch(**form, batch_send=False)  # the file only: run elsewhere
    record = only_record(v)
    requests = [json.loads(x) for x in batch.request_file(record).read_text().splitlines()]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(fake._line(r, i, 200, fake._answer(r["body"], i, False, "x"))) + "\n"
                               for i, r in enumerate(requests)))
    got = actions.import_batch(s, v, "eval", record.id, str(results), 0)  # it used to say "collect it with its endpoint"
    assert "Sent 1 answers to the judge" in got["batch_msg_md"] and len(fake.batches) == 1
    fake.finish()
    done = actions.collect_batch(s, v, "eval", record.id, 0)
    assert [(r["correct"], r["total"]) for r in done["batch_results"]["results"]] == [(1, 1)]  # the fake says 42

