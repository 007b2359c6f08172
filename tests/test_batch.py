"""Batch mode: the request file, the lifecycle against a stand-in Batch API over real HTTP with the
real openai SDK (complete, expire, fail, cancel), collecting exactly once (twice, concurrently, after
a restart, after a crash mid-collect), retry of failed requests, export/import, and cost."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from pipeline import batch
from pipeline.generate import GenerationConfig, load_template
from pipeline.generate.teacher import chat_body
from tests.fakes.batch_server import FakeBatches

VISITOR = "visitor-batch-01"


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake():
    with FakeBatches() as server:
        yield server


def client_for(fake: FakeBatches) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)


def gen_config(tmp_path: Path, n: int = 20, template: str = "reasoning", **kw) -> GenerationConfig:
    kw.setdefault("model", "gpt-4o-mini")
    return GenerationConfig(template=load_template(template), n=n, out=tmp_path / "run.jsonl", **kw)


# -- the request file ------------------------------------------------------------------------------
def test_request_file_lines_are_the_interactive_bodies(tmp_path: Path) -> None:
    config = gen_config(tmp_path, n=20)
    record = batch.build_generation(config, visitor=VISITOR, endpoint="OpenAI")
    rows = lines(record.requests_path)
    assert len(rows) == record.requests == 22  # 20 examples + 10% for parse/duplicate losses
    assert {r["method"] for r in rows} == {"POST"} and {r["url"] for r in rows} == {"/v1/chat/completions"}
    assert len({r["custom_id"] for r in rows}) == 22
    first = rows[0]
    assert first["custom_id"] == "gen-0-0"
    # Exactly what the interactive teacher sends for request 0 (same messages, schema, max_tokens).
    from pipeline.generate import steps
    from pipeline.generate.templates import request_schema, resolve_variables
    t = config.template
    variables = resolve_variables(t, {})
    messages = steps.request_messages(t, variables, seed=0, index=0, recent=[], sources=None, sample_size=3)
    assert first["body"] == chat_body("gpt-4o-mini", messages, temperature=0.9, max_tokens=t.max_tokens,
                                      schema=request_schema(t, 1), name=t.name)
    assert first["body"]["response_format"]["type"] == "json_schema"
    assert batch.load_batch(VISITOR, record.id).state == "built"


def test_lifecycle_submit_follow_download(tmp_path: Path, fake: FakeBatches) -> None:
    client = client_for(fake)
    record = batch.build_generation(gen_config(tmp_path, n=9), visitor=VISITOR, endpoint="fake")
    record = batch.submit(record, client)
    part = record.parts[0]
    assert part.batch_id and part.input_file_id and record.state == "validating"
    assert fake.files[part.input_file_id]["purpose"] == "batch"
    assert fake.batches[part.batch_id]["metadata"] == {"app": "distill-studio", "record": record.id, "kind": "generate",
                                                     "part": "0"}
    assert record.expected_by() == part.created_at + 24 * 3600 or record.expected_by() == part.expires_at
    record = batch.refresh(record, client)
    assert record.state == "in_progress" and not record.finished()
    fake.finish(part.batch_id)
    record = batch.refresh(batch.load_batch(VISITOR, record.id), client)  # as after a restart
    assert record.state == "completed" and record.finished()
    assert record.counts() == {"total": 10, "completed": 10, "failed": 0} and record.progress() == 1.0
    assert len(lines(record.output_path(0))) == 10


# -- collect exactly once ------------------------------------------------------------------------------
def submitted(tmp_path: Path, fake: FakeBatches, n: int = 9, **kw) -> batch.BatchRecord:
    client = client_for(fake)
    record = batch.submit(batch.build_generation(gen_config(tmp_path, n=n, **kw), visitor=VISITOR, endpoint="fake"),
                          client)
    fake.finish(record.parts[0].batch_id)
    return record


def draft_ids() -> list[str]:
    from pipeline import drafts
    from pipeline.generate.store import example_id
    return [example_id(ex) for ex in drafts.load_draft(VISITOR)]


def test_collect_appends_to_draft_and_run_file_once(tmp_path: Path, fake: FakeBatches) -> None:
    fake.fail_lines, fake.garbage_lines = (2,), (5,)
    record = submitted(tmp_path, fake)
    client = client_for(fake)
    with pytest.raises(Exception, match="Collect batch .* first"):
        batch.retry_failed(record)  # not collected yet
    report = batch.collect(record, client)
    assert (report.appended, report.failed, report.unparsed, report.already) == (8, 1, 1, False)
    assert len(draft_ids()) == 8 == len(set(draft_ids()))
    assert len(lines(tmp_path / "run.jsonl")) == 8
    again = batch.collect(batch.load_batch(VISITOR, record.id), client)
    assert again.already and again.appended == 8
    assert len(draft_ids()) == 8 and len(lines(tmp_path / "run.jsonl")) == 8
    failed = {f["custom_id"]: f for f in batch.failed_requests(batch.load_batch(VISITOR, record.id))}
    assert failed["gen-0-2"]["kind"] == "status" and "injected failure" in failed["gen-0-2"]["reason"]
    assert failed["gen-0-5"]["kind"] == "parse"
    assert batch.load_batch(VISITOR, record.id).state == "collected"
    # the run file's review sidecar has the unparsed reply, as a run one by one keeps it
    assert any(f.get("custom_id") == "gen-0-5" for f in lines(tmp_path / "run.failed.jsonl"))


def test_retry_failed_is_a_smaller_batch_that_fills_the_gap(tmp_path: Path, fake: FakeBatches) -> None:
    fake.fail_lines = (1, 3)
    record = submitted(tmp_path, fake)
    client = client_for(fake)
    batch.collect(record, client)
    retry = batch.retry_failed(batch.load_batch(VISITOR, record.id))
    assert retry.requests == 2 and retry.retry_of == record.id
    assert [r["custom_id"] for r in lines(retry.requests_path)] == ["gen-0-1", "gen-0-3"]
    original = {r["custom_id"]: r["body"] for r in lines(record.requests_path)}
    assert all(r["body"] == original[r["custom_id"]] for r in lines(retry.requests_path))
    fake.fail_lines = ()
    retry = batch.submit(retry, client)
    fake.finish(retry.parts[0].batch_id)
    assert batch.collect(retry, client).appended == 2
    assert len(draft_ids()) == 10 == len(set(draft_ids()))


def test_concurrent_collects_append_once(tmp_path: Path, fake: FakeBatches) -> None:
    import threading
    record = submitted(tmp_path, fake)
    reports: list = []
    threads = [threading.Thread(target=lambda: reports.append(batch.collect(record, client_for(fake))))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.already for r in reports) == [False, True, True, True]
    assert len(draft_ids()) == 10 == len(set(draft_ids()))


def test_collect_from_two_processes_at_once_appends_once(tmp_path: Path, fake: FakeBatches, home: Path) -> None:
    import os
    import subprocess
    import sys
    record = submitted(tmp_path, fake)
    batch.refresh(record, client_for(fake))
    code = ("import sys; from pipeline import batch; r = batch.load_batch(sys.argv[1], sys.argv[2]); "
            "print(batch.collect(r).already)")
    env = {**os.environ, "DISTILL_HOME": str(home)}
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", code, VISITOR, record.id], cwd=root, env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outs == ["False", "True"]
    assert len(draft_ids()) == 10 == len(set(draft_ids()))


def test_crash_mid_collect_loses_nothing_and_doubles_nothing(tmp_path: Path, fake: FakeBatches,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import drafts
    record = submitted(tmp_path, fake)
    client = client_for(fake)
    real_append = drafts.append_to_draft

    def dies_after_half(visitor: str, examples: list[dict]) -> int:
        real_append(visitor, examples[:4])
        raise KeyboardInterrupt("the process died")
    monkeypatch.setattr(drafts, "append_to_draft", dies_after_half)
    with pytest.raises(KeyboardInterrupt):
        batch.collect(record, client)
    assert len(draft_ids()) == 4 and batch.load_batch(VISITOR, record.id).state != "collected"
    monkeypatch.setattr(drafts, "append_to_draft", real_append)
    report = batch.collect(batch.load_batch(VISITOR, record.id), client)
    assert report.appended == 10 and not report.already
    assert len(draft_ids()) == 10 == len(set(draft_ids()))
    assert len(lines(tmp_path / "run.jsonl")) == 10


def test_collect_refuses_a_running_batch(tmp_path: Path, fake: FakeBatches) -> None:
    client = client_for(fake)
    record = batch.submit(batch.build_generation(gen_config(tmp_path, n=3), visitor=VISITOR, endpoint="fake"), client)
    with pytest.raises(Exception, match="still"):
        batch.collect(record, client)
    assert draft_ids() == []


def test_expired_batch_collects_what_ran_and_lists_the_rest(tmp_path: Path, fake: FakeBatches) -> None:
    client = client_for(fake)
    record = batch.submit(batch.build_generation(gen_config(tmp_path, n=9), visitor=VISITOR, endpoint="fake"), client)
    fake.finish(record.parts[0].batch_id, outcome="expired", done=6)
    record = batch.refresh(record, client)
    assert record.state == "expired" and record.counts()["failed"] == 4
    report = batch.collect(record, client)
    assert report.appended == 6 and report.failed == 4
    reasons = {f["reason"] for f in batch.failed_requests(record)}
    assert any("completion window expired" in r for r in reasons)


def test_failed_validation_and_cancel(tmp_path: Path, fake: FakeBatches) -> None:
    client = client_for(fake)
    failing = batch.submit(batch.build_generation(gen_config(tmp_path, n=3), visitor=VISITOR, endpoint="fake"), client)
    fake.finish(failing.parts[0].batch_id, outcome="failed")
    failing = batch.refresh(failing, client)
    assert failing.state == "failed" and "injected validation failure" in failing.parts[0].errors[0]
    cancelled = batch.submit(batch.build_generation(gen_config(tmp_path / "c", n=3), visitor=VISITOR,
                                                    endpoint="fake"), client)
    cancelled = batch.cancel(cancelled, client)
    assert cancelled.state == "cancelling"
    cancelled = batch.refresh(cancelled, client)
    assert cancelled.state == "cancelled" and cancelled.finished()
    report = batch.collect(cancelled, client)
    assert report.appended == 0 and report.failed == 4
    assert [r.id for r in batch.list_batches(VISITOR)] == [cancelled.id, failing.id]


def test_a_restart_between_create_and_collect(tmp_path: Path, fake: FakeBatches, home: Path) -> None:
    """Build + submit in one process, collect in another (new process state, same workspace)."""
    import os
    import subprocess
    import sys
    record = batch.submit(batch.build_generation(gen_config(tmp_path, n=9), visitor=VISITOR, endpoint="fake"),
                          client_for(fake))
    fake.finish()
    code = ("import sys, openai; from pipeline import batch; "
            "c = openai.OpenAI(base_url=sys.argv[3], api_key='k'); "
            "[print(batch.collect(r, c).appended) for r in batch.list_batches(sys.argv[1]) if r.id == sys.argv[2]]")
    env = {**os.environ, "DISTILL_HOME": str(home)}
    root = Path(__file__).resolve().parent.parent
    for expected in ("10", "10"):  # the second process finds it collected: the same report, nothing added
        out = subprocess.run([sys.executable, "-c", code, VISITOR, record.id, fake.base_url], cwd=root, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.stdout.strip() == expected, out.stderr
    assert len(draft_ids()) == 10 == len(set(draft_ids()))


@pytest.mark.parametrize("style", ["azure", "vllm"])
def test_azure_and_vllm_shaped_results_collect_alike(tmp_path: Path, fake: FakeBatches, style: str) -> None:
    fake.style, fake.fail_lines = style, (3,)
    record = submitted(tmp_path, fake)
    report = batch.collect(record, client_for(fake))
    assert (report.appended, report.failed) == (9, 1)
    assert len(draft_ids()) == 9


def test_eval_batch_scores_into_the_kept_runs(tmp_path: Path, fake: FakeBatches) -> None:
    from pipeline.evaluate import Target
    from pipeline.evaluate.bench import parse_benchmark
    from pipeline.evaluate.runs import list_runs, load_run
    rows = [{"messages": [{"role": "user", "content": f"What is 40 + {i}?"}], "expected": str(40 + i),
             "scoring": "final_answer"} for i in range(3)]
    items = parse_benchmark("".join(json.dumps(r) + "\n" for r in rows), "sums.jsonl")
    targets = [Target("gpt-4o-mini", None, role="base"), Target("gpt-4o-mini", None, label="teacher copy",
                                                                 role="teacher")]
    record = batch.build_evaluation("sums.jsonl", items, targets, visitor=VISITOR, endpoint="fake")
    assert len(record.parts) == 1 and record.requests == 6  # one model: one provider batch
    assert batch.estimate_cost(record).batch_cost_usd is not None
    client = client_for(fake)
    batch.submit(record, client)
    fake.finish()
    report = batch.collect(record, client)
    board = {r["label"]: r for r in report.results["results"]}
    assert board["gpt-4o-mini"]["correct"] == 1 == board["teacher copy"]["correct"]  # the fake says 42
    runs = list_runs(VISITOR)
    assert len(runs) == 1 and load_run(VISITOR, runs[0]["name"])["settings"]["batch"] == record.id
    batch.collect(record, client)
    assert len(list_runs(VISITOR)) == 1  # kept once


def test_judge_benchmarks_need_a_judge_in_batch_mode(tmp_path: Path) -> None:
    from pipeline.evaluate import Target
    from pipeline.evaluate.bench import parse_benchmark
    items = parse_benchmark(json.dumps({"messages": [{"role": "user", "content": "Write a haiku"}],
                                        "expected": "a haiku", "scoring": "judge"}) + "\n", "j.jsonl")
    with pytest.raises(Exception, match="choose a judge model"):
        batch.build_evaluation("j.jsonl", items, [Target("gpt-4o-mini", None)], visitor=VISITOR, endpoint="x")


def test_judge_scored_batch_is_judged_by_a_second_batch_and_kept_once(tmp_path: Path, fake: FakeBatches) -> None:
    from pipeline.evaluate import Target
    from pipeline.evaluate.bench import parse_benchmark
    from pipeline.evaluate.runs import list_runs
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"}], "expected": exp, "scoring": scoring}
            for i, (exp, scoring) in enumerate([("42", "judge"), ("7", "judge"), ("42", "final_answer")])]
    items = parse_benchmark("".join(json.dumps(r) + "\n" for r in rows), "j.jsonl")
    record = batch.build_evaluation("j.jsonl", items, [Target("gpt-4o-mini", None)], visitor=VISITOR,
                                    endpoint="x", judge="gpt-4.1-nano")
    assert record.estimate["requests"] == 5  # 3 answers + 2 judge requests to come
    client = client_for(fake)
    batch.submit(record, client)
    fake.finish()
    record = batch.refresh(record, client)
    with pytest.raises(Exception, match="judge-scored"):
        batch.collect(record)  # the judge batch needs the endpoint
    first = batch.collect(record, client)
    assert first.waiting and "Sent 2 answers to the judge" in first.message and not list_runs(VISITOR)
    judge_batch = [b for b in fake.batches.values() if b["status"] != "completed"]
    assert len(judge_batch) == 1
    with pytest.raises(Exception, match="still"):
        batch.collect(record, client)  # the judge batch has not finished
    fake.finish(judge_batch[0]["id"])
    report = batch.collect(record, client)
    answers = {it["index"]: it["answers"]["gpt-4o-mini"] for it in report.results["items"]}
    assert [answers[i]["correct"] for i in range(3)] == [True, False, True]  # the fake answers 42
    assert answers[0]["verdict"] == "CORRECT" and answers[1]["verdict"] == "INCORRECT"
    assert answers[0]["judge_cost_usd"] is not None and report.results["judge"] == "gpt-4.1-nano"
    again = batch.collect(record, client)
    assert again.already and len(list_runs(VISITOR)) == 1 and len(fake.batches) == 2  # kept once, judged once


def test_an_evaluation_estimate_counts_the_judge_at_its_batch_price(tmp_path: Path) -> None:
    from pipeline.evaluate import Target
    from pipeline.evaluate.bench import parse_benchmark
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"}], "expected": "42", "scoring": scoring}
            for i, scoring in enumerate(["judge", "judge", "final_answer"])]
    items = parse_benchmark("".join(json.dumps(r) + "\n" for r in rows), "j.jsonl")
    targets = [Target("gpt-4o-mini", None)]
    answers = batch.estimate_evaluation(items, targets, max_tokens=64)
    judged = batch.estimate_evaluation(items, targets, max_tokens=64, judge="gpt-4.1-nano")
    record = batch.build_evaluation("j.jsonl", items, targets, visitor=VISITOR, endpoint="x", max_tokens=64,
                                    judge="gpt-4.1-nano")
    assert judged.to_json() == record.estimate  # the preview's figures are the built record's
    assert (answers.requests, judged.requests) == (3, 5)
    extra_in, extra_out = judged.input_tokens - answers.input_tokens, judged.output_tokens - answers.output_tokens
    assert extra_in > 2 * 16 and extra_out > 0  # each judge request carries the question, reference and answer
    assert judged.batch_cost_usd == pytest.approx(answers.batch_cost_usd + batch.batch_cost_usd("gpt-4.1-nano", extra_in,
                                                                                                 extra_out))
    unknown = batch.estimate_evaluation(items, targets, max_tokens=64, judge="judge-without-price")
    assert unknown.unpriced == ["judge-without-price"] and unknown.batch_cost_usd is None


def test_batch_prices_are_half_and_unknown_stays_unknown(tmp_path: Path) -> None:
    from pipeline.tokens import usage_cost_usd
    assert batch.batch_cost_usd("gpt-4o-mini", 1_000_000, 1_000_000) == usage_cost_usd("gpt-4o-mini", 1_000_000,
                                                                                       1_000_000) / 2
    assert batch.batch_cost_usd("some-unknown-model", 10, 10) is None
    record = batch.build_generation(gen_config(tmp_path, n=5, model="some-unknown-model"), visitor=VISITOR,
                                    endpoint="x")
    assert "no batch price known for some-unknown-model" in batch.estimate_cost(record).describe()
    priced = batch.estimate_cost(batch.build_generation(gen_config(tmp_path / "p", n=5), visitor=VISITOR,
                                                        endpoint="x"))
    assert priced.batch_cost_usd == pytest.approx(priced.interactive_cost_usd / 2, rel=1e-6)


def test_submit_again_after_dying_before_the_record_was_saved_runs_nothing_twice(
        tmp_path: Path, fake: FakeBatches, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.batch import provider
    client = client_for(fake)
    record = batch.build_generation(gen_config(tmp_path, n=3), visitor=VISITOR, endpoint="fake")
    real_apply = provider._apply

    def dies(part, created) -> None:  # noqa: ANN001 - the batch was created, the process dies before saving
        raise KeyboardInterrupt
    monkeypatch.setattr(provider, "_apply", dies)
    with pytest.raises(KeyboardInterrupt):
        batch.submit(record, client)
    monkeypatch.setattr(provider, "_apply", real_apply)
    record = batch.submit(batch.load_batch(VISITOR, record.id), client)
    assert fake.created == 1 and fake.uploads == 1 and record.parts[0].batch_id == "batch_000001"


def test_azure_openai_gets_its_own_path(tmp_path: Path, fake: FakeBatches) -> None:
    """Azure OpenAI's batch takes `/chat/completions` (no version) in the lines and at create."""
    client = openai.AzureOpenAI(base_url=fake.base_url, api_key="test-key", api_version="2024-10-21", max_retries=0)
    record = batch.submit(batch.build_generation(gen_config(tmp_path, n=2), visitor=VISITOR, endpoint="azure"),
                          client)
    part = record.parts[0]
    assert fake.batches[part.batch_id]["endpoint"] == "/chat/completions"
    sent = [json.loads(x) for x in fake.files[part.input_file_id]["_content"].decode().splitlines()]
    assert {r["url"] for r in sent} == {"/chat/completions"}
    assert [r["body"] for r in sent] == [r["body"] for r in lines(record.requests_path)]
    assert {r["url"] for r in lines(batch.request_file(record))} == {"/v1/chat/completions"}  # export: OpenAI/vLLM form
    fake.style = "azure"
    fake.finish()
    assert batch.collect(record, client).appended == 3


def test_answer_checks_go_out_as_a_second_batch_and_drop_disagreements(tmp_path: Path, fake: FakeBatches) -> None:
    """The reasoning template's answers are checked as a run one by one checks them: solved again by the
    checker (the same request body), kept only when the final answers agree."""
    from pipeline.generate.checking import check_messages
    from pipeline.generate.teacher import chat_body as body_of
    client = client_for(fake)
    record = batch.build_generation(gen_config(tmp_path, n=9, check=True, check_model="gpt-4.1-mini"),
                                    visitor=VISITOR, endpoint="fake")
    assert "gpt-4.1-mini" in {m for m in [record.plan["check"]["model"]]}
    assert batch.estimate_cost(record).requests == 20  # 10 replies + 10 checks, before anything is sent
    record = batch.submit(record, client)
    fake.finish()
    first = batch.collect(record, client)
    assert first.waiting and "answer checks" in first.message and draft_ids() == []
    record = batch.load_batch(VISITOR, record.id)
    assert len(record.parts) == 2 and not record.finished()
    check_lines = lines(record.folder / "check-requests.jsonl")
    assert len(check_lines) == 10 and {r["body"]["model"] for r in check_lines} == {"gpt-4.1-mini"}
    candidates = json.loads((record.folder / "check-candidates.json").read_text())["examples"]
    assert check_lines[0]["body"] == body_of("gpt-4.1-mini", check_messages(candidates[0]["example"]),
                                             temperature=0.0, max_tokens=record.plan["max_tokens"])
    with pytest.raises(Exception, match="still"):
        batch.collect(record, client)
    # the fake solves every check as 42; the fake teacher's final answers are 42 too, except where the
    # test changes them: those two must be dropped
    for i in (1, 4):
        candidates[i]["final"] = "17"
    path = record.folder / "check-candidates.json"
    raw = json.loads(path.read_text())
    raw["examples"] = candidates
    path.write_text(json.dumps(raw))
    fake.finish()
    report = batch.collect(record, client)
    assert (report.appended, report.check_dropped, report.waiting) == (8, 2, False)
    assert len(draft_ids()) == 8
    reasons = [f["reason"] for f in batch.failed_requests(record) if f["kind"] == "check"]
    assert reasons == ["final answers disagree: '17' vs checker '42'"] * 2
    assert batch.collect(record, client).already and len(draft_ids()) == 8


def test_custom_template_gets_its_system_prompt_written_once_before_the_batch(tmp_path: Path,
                                                                              fake: FakeBatches) -> None:
    client = client_for(fake)
    config = gen_config(tmp_path, n=4, template="custom")
    with pytest.raises(Exception, match="system prompt"):
        batch.build_generation(config, visitor=VISITOR, endpoint="fake")  # no client: said what to do
    record = batch.build_generation(config, visitor=VISITOR, endpoint="fake", client=client)
    assert fake.chats == 1
    written = record.plan["variables"]["student_system"]
    assert written.strip()
    from pipeline.generate.store import RunFiles
    assert RunFiles(config.out).load_state()["setup_outputs"]["student_system"] == written
    batch.submit(record, client)
    fake.finish()
    report = batch.collect(record, client)
    examples = lines(config.out)
    assert report.appended == len(examples) > 0
    assert all(ex["messages"][0] == {"role": "system", "content": written} for ex in examples)


def test_a_collect_that_died_before_sending_the_checks_sends_them_next_time(tmp_path: Path, fake: FakeBatches,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.batch import phases
    client = client_for(fake)
    record = batch.submit(batch.build_generation(gen_config(tmp_path, n=3, check=True), visitor=VISITOR,
                                                 endpoint="fake"), client)
    fake.finish()
    real_submit = phases.submit

    def dies(*args: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(phases, "submit", dies)
    with pytest.raises(KeyboardInterrupt):
        batch.collect(record, client)
    monkeypatch.setattr(phases, "submit", real_submit)
    with pytest.raises(Exception, match="still"):  # the checks are sent now, and not finished yet
        batch.collect(record, client)
    assert fake.created == 2
    fake.finish()
    assert batch.collect(record, client).appended == 4 and len(draft_ids()) == 4
