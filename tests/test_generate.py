"""Generation engine: parsing garbage, templates, dedup, retries/fallbacks over real HTTP, resume,
cancel, budget, answer checks, the CLI, and an end-to-end run with the real SmolLM2 as teacher."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import openai
import pytest

from pipeline.dataset import validate_file
from pipeline.generate import GenerationConfig, RetryPolicy, estimate_run, load_template, run_generation
from pipeline.generate.checking import answers_agree, extract_final_answer
from pipeline.generate.dedup import Deduper
from pipeline.generate.parse import ParseFailure, parse_answer, parse_items_answer
from pipeline.generate.store import load_existing
from pipeline.generate.templates import (
    build_examples,
    list_templates,
    request_schema,
    resolve_variables,
    user_template_dir,
)
from tests.fakes.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
REASONING_SCHEMA = load_template("reasoning").schema


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def config(tmp_path: Path, template: str = "reasoning", n: int = 10, **kw) -> GenerationConfig:
    kw.setdefault("model", "gpt-4o-mini")
    kw.setdefault("concurrency", 4)
    kw.setdefault("retry", RetryPolicy(base_delay=0.01, max_delay=0.05))
    return GenerationConfig(template=load_template(template), n=n, out=tmp_path / "out.jsonl", **kw)


def client_for(fake: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="test-key")


@pytest.fixture
def fake():
    with FakeOpenAI(seed=7) as server:
        yield server


# -- parsing garbage ------------------------------------------------------------------------------
GOOD = {"question": "What is 2+2?", "reasoning": "2 plus 2 is 4.", "final_answer": "4"}


@pytest.mark.parametrize("raw", [
    json.dumps(GOOD),
    "```json\n" + json.dumps(GOOD) + "\n```",
    "Sure! Here is the problem:\n" + json.dumps(GOOD) + "\nHope this helps {really}.",
    "Note {this} first. " + json.dumps(GOOD, indent=2),
])
def test_parse_finds_the_object_in_wrapped_replies(raw: str) -> None:
    assert parse_answer(raw, REASONING_SCHEMA) == GOOD


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "empty reply"),
    (None, "empty reply"),
    ("The answer is 4.", "no JSON object"),
    ('{"question": "What is 2+2?", "reasoning": "2 plus', "no JSON object"),
    ('[{"question": "x"}]', "lacks the field 'reasoning'"),
    ('{"question": "What?", "reasoning": "r"}', "lacks the field 'final_answer'"),
    ('{"question": "What?", "reasoning": "r", "final_answer": 4}', "should be string"),
    ('{"question": "  ", "reasoning": "r", "final_answer": "4"}', "answer.question is empty"),
    ("{'question': 'single quotes'}", "no JSON object"),
])
def test_parse_failures_keep_raw_text_and_reason(raw: str | None, reason: str) -> None:
    result = parse_answer(raw, REASONING_SCHEMA)
    assert isinstance(result, ParseFailure)
    assert reason in result.reason
    assert result.raw == (raw or "")


def test_parse_says_when_the_reply_was_cut_off() -> None:
    result = parse_answer('{"question": "long', REASONING_SCHEMA, finish_reason="length")
    assert isinstance(result, ParseFailure) and "max_tokens" in result.reason


def test_parse_checks_list_items() -> None:
    schema = load_template("paraphrase").schema
    assert isinstance(parse_answer('{"rewrites": []}', schema), ParseFailure)
    assert isinstance(parse_answer('{"rewrites": ["a", 3]}', schema), ParseFailure)
    assert parse_answer('{"rewrites": ["a", "b"]}', schema) == {"rewrites": ["a", "b"]}


@pytest.mark.parametrize(("raw", "finish_reason", "kept", "why"), [
    ('{"rewrites": ["", "Is it so?"]}', "stop", ["Is it so?"], "rewrites[0] is empty"),
    ('{"rewrites": ["Is it so?", 7, "Really?"]}', "stop", ["Is it so?", "Really?"], "rewrites[1] should be string"),
    # A small model looped inside its second rewrite until max_tokens: the whole first one is kept, even
    # when the cut text holds a "{}" that a search for objects would take for the answer.
    ('{"rewrites": ["Is it so?", "Only in 2.5.1 {}; 2.5.2; 2.5.3; 2.5', "length", ["Is it so?"], "cut off"),
])
def test_a_list_answer_keeps_its_good_items(raw: str, finish_reason: str, kept: list, why: str) -> None:
    schema = load_template("paraphrase").schema
    answer, dropped = parse_items_answer(raw, schema, "rewrites", finish_reason=finish_reason)
    assert answer == {"rewrites": kept} and why in "; ".join(dropped)


@pytest.mark.parametrize(("raw", "finish_reason", "why"), [
    ('{"rewrites": [""]}', "stop", "rewrites[0] is empty"),
    ('{"rewrites": ["Is it so', "length", "cut off at max_tokens"),
    ('{"rewrites": ["Is it so?", "Not cut', "stop", "no JSON object"),  # broken, yet not cut off
])
def test_a_list_answer_without_a_good_item_fails(raw: str, finish_reason: str, why: str) -> None:
    result = parse_items_answer(raw, load_template("paraphrase").schema, "rewrites", finish_reason=finish_reason)
    assert isinstance(result, ParseFailure) and why in result.reason and result.raw == raw


# -- templates --------------------------------------------------------------------------------------
def test_builtin_templates_make_valid_chat_examples() -> None:
    assert {"reasoning", "knowledge", "paraphrase", "tone", "custom"} <= set(list_templates())
    answers = {"reasoning": GOOD, "knowledge": {"question": "q?", "answer": "a."},
               "tone": {"question": "q?", "answer": "a."}, "custom": {"user": "u", "assistant": "a"},
               "paraphrase": {"rewrites": ["r1", "r2"]}}
    source = {"messages": [{"role": "user", "content": "orig"}, {"role": "assistant", "content": "ans"}],
              "weight": 1}
    for name, answer in answers.items():
        t = load_template(name)
        variables = resolve_variables(t, {"student_system": "Be brief."} if name == "custom" else {})
        made = build_examples(t, variables, answer, source)
        assert made, name
        for example, _final in made:
            roles = [m["role"] for m in example["messages"]]
            assert roles[-1] == "assistant" and "user" in roles, name
            assert all(isinstance(m["content"], str) and m["content"] for m in example["messages"])
    para = build_examples(load_template("paraphrase"), {"ways": "2"}, answers["paraphrase"], source)
    assert [e["messages"][0]["content"] for e, _ in para] == ["r1", "r2"]
    assert all(e["messages"][1]["content"] == "ans" and e["weight"] == 1 for e, _ in para)


def test_reasoning_answer_ends_with_exactly_one_final_answer_line() -> None:
    t = load_template("reasoning")
    answer = {**GOOD, "reasoning": "Two and two.\nFinal answer: 4\n\n**Final Answer:** four"}
    [(example, final)] = build_examples(t, resolve_variables(t, {}), answer)
    text = example["messages"][-1]["content"]
    assert final == "4"
    assert text.splitlines()[-1] == "Final answer: 4"
    assert text.lower().count("final answer") == 1


def test_user_template_folder_overrides_and_adds(tmp_path: Path) -> None:
    raw = json.loads((ROOT / "data/templates/tone.json").read_text())
    raw["name"] = "pirate"
    raw["variables"]["voice"]["default"] = "like a pirate"
    path = user_template_dir() / "pirate.json"
    path.write_text(json.dumps(raw))
    try:
        assert "pirate" in list_templates()
        t = load_template("pirate")
        assert resolve_variables(t, {})["student_system"].endswith("like a pirate.")
        assert load_template(str(path)).name == "pirate"
    finally:
        path.unlink()


def test_template_errors_say_what_to_fix() -> None:
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="Unknown template"):
        load_template("no-such-template")
    with pytest.raises(InputError, match="needs"):
        resolve_variables(load_template("knowledge"), {"fact_sheet": "  "})


# -- dedup and answer checks ----------------------------------------------------------------------
def ex(user: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": "x"}]}


def test_dedup_exact_and_near() -> None:
    d = Deduper(threshold=90)
    d.add(ex("What year was Jonny Whizbang born?"))
    assert "exact" in d.duplicate_reason(ex("what year was jonny whizbang born"))
    assert "near" in d.duplicate_reason(ex("What year was Jonny Whizbang born in?"))
    assert d.duplicate_reason(ex("Where does Jonny Whizbang live now?")) is None


def test_final_answer_comparison() -> None:
    assert extract_final_answer("steps\nFinal answer: 1,000") == "1,000"
    assert answers_agree("1,000", "1000.0")
    assert answers_agree("The Moon.", "moon")
    assert not answers_agree("12", "13")
    assert not answers_agree("12", None)


# -- runs against a real HTTP server -------------------------------------------------------------
def test_retries_on_429_and_500_write_every_example_once(tmp_path: Path) -> None:
    with FakeOpenAI(failure_rate=0.3, latency=0.02, retry_after=0.01, seed=3) as fake:
        status = run_generation(config(tmp_path, n=20), client_for(fake))
        failures = fake.statuses[429] + fake.statuses[500]
    written = lines(tmp_path / "out.jsonl")
    assert status.state == "done" and status.written == 20 == len(written)
    assert len({json.dumps(e) for e in written}) == 20
    assert failures > 0
    # The SDK's own retries are off: every failed HTTP request is one of our counted retries.
    assert status.retries == failures
    assert status.rate_limited == fake.statuses[429]


def test_retry_after_is_honoured(tmp_path: Path, fake: FakeOpenAI) -> None:
    from pipeline.generate.teacher import Teacher

    fake.fail_first, fake.failure_statuses, fake.retry_after = 2, (429,), 7.5
    teacher = Teacher(client_for(fake), "gpt-4o-mini", policy=RetryPolicy(base_delay=0.01, max_delay=0.02))
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    teacher.sleep = record
    import asyncio

    reply = asyncio.run(teacher.complete([{"role": "user", "content": "hi"}]))
    assert reply.text and delays == [7.5, 7.5]
    assert teacher.stats.retries == 2 and teacher.stats.rate_limited == 2


def test_adaptive_slowdown_when_429s_keep_coming() -> None:
    from pipeline.generate.teacher import AdaptiveLimiter

    limiter = AdaptiveLimiter(16)
    for _ in range(3):
        limiter.record(True)
    assert limiter.limit == 8 and limiter.slowdowns == 1
    for _ in range(200):
        limiter.record(False)
    assert limiter.limit == 16


def test_retry_budget_is_bounded(tmp_path: Path) -> None:
    with FakeOpenAI(failure_rate=1.0, failure_statuses=(500,), seed=1) as fake:
        cfg = config(tmp_path, n=5, retry=RetryPolicy(base_delay=0.001, max_delay=0.002, max_total_retries=12))
        status = run_generation(cfg, client_for(fake))
    assert status.state == "failed" and status.written == 0
    assert status.retries == 12 and "retries" in status.message


def test_structured_output_falls_back_when_refused(tmp_path: Path) -> None:
    with FakeOpenAI(reject_json_schema=True, seed=2) as fake:
        status = run_generation(config(tmp_path, n=6), client_for(fake))
        assert fake.response_formats["json_object"] >= 6
    assert status.written == 6 and status.structured_output == "json_object"


def test_garbage_replies_are_kept_counted_and_never_stop_the_run(tmp_path: Path) -> None:
    with FakeOpenAI(garbage_rate=0.4, seed=5) as fake:
        status = run_generation(config(tmp_path, n=12), client_for(fake))
    assert status.written == 12 and status.failed_parse > 0
    failed = lines(tmp_path / "out.failed.jsonl")
    parse_failures = [f for f in failed if f["kind"] == "parse"]
    assert len(parse_failures) == status.failed_parse
    assert all(f["raw"] and f["reason"] for f in parse_failures)


def test_a_teacher_that_never_follows_the_template_stops_cleanly(tmp_path: Path) -> None:
    with FakeOpenAI(garbage_rate=1.0, seed=5) as fake:
        status = run_generation(config(tmp_path, n=3), client_for(fake))
    assert status.state == "failed" and status.written == 0 and status.failed_parse >= 10
    assert "stronger teacher" in status.message


def test_resume_makes_only_what_is_missing(tmp_path: Path, fake: FakeOpenAI) -> None:
    first = run_generation(config(tmp_path, n=5), client_for(fake))
    assert first.written == 5
    out = tmp_path / "out.jsonl"
    with out.open("a", encoding="utf-8") as fh:
        fh.write('{"messages": [{"role": "user", "con')  # a crash mid-write
    requests_before = fake.requests
    second = run_generation(config(tmp_path, n=8), client_for(fake))
    assert second.written == 8 and second.new == 3
    assert fake.requests - requests_before == 3
    examples = lines(out)
    assert len(examples) == 8 and len({json.dumps(e) for e in examples}) == 8
    again = run_generation(config(tmp_path, n=8), client_for(fake))
    assert again.new == 0 and again.state == "done"
    state = json.loads((tmp_path / "out.run.json").read_text())
    assert [r["counts"]["new"] for r in state["runs"]] == [5, 3, 0]


def test_cancel_stops_quickly_and_keeps_finished_examples(tmp_path: Path) -> None:
    with FakeOpenAI(latency=0.2, seed=4) as fake:
        cancel = threading.Event()

        def on_progress(status) -> None:
            if status.written >= 3:
                cancel.set()

        status = run_generation(config(tmp_path, n=200, concurrency=2), client_for(fake),
                                on_progress=on_progress, cancel=cancel)
    assert status.state == "cancelled"
    assert 3 <= status.written < 200
    assert len(lines(tmp_path / "out.jsonl")) == status.written


def test_cancel_aborts_requests_in_flight(tmp_path: Path) -> None:
    with FakeOpenAI(latency=60, seed=4) as fake:
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        status = run_generation(config(tmp_path, n=4), client_for(fake), cancel=cancel)
    assert status.state == "cancelled" and status.written == 0
    # The server would answer after 60 s; a run that waited for it would report that.
    assert status.elapsed_s < 5


def test_budget_stops_before_going_over(tmp_path: Path, fake: FakeOpenAI) -> None:
    budget = 0.002
    status = run_generation(config(tmp_path, n=100, budget_usd=budget), client_for(fake))
    assert status.state == "budget" and 0 < status.written < 100
    assert status.cost_usd <= budget
    assert "budget" in status.message


def test_cost_estimated_with_tiktoken_when_usage_is_absent(tmp_path: Path) -> None:
    with FakeOpenAI(omit_usage=True, seed=6) as fake:
        status = run_generation(config(tmp_path, n=3), client_for(fake))
    assert status.input_tokens > 0 and status.output_tokens > 0 and status.cost_usd > 0


def test_estimate_before_the_run_and_for_a_resume(tmp_path: Path, fake: FakeOpenAI) -> None:
    cfg = config(tmp_path, n=10)
    before = estimate_run(cfg)
    assert before.requests >= 10 and before.cost_usd > 0 and before.max_cost_usd >= before.cost_usd
    run_generation(config(tmp_path, n=5), client_for(fake))
    assert estimate_run(cfg).requests < before.requests


def test_answer_check_keeps_only_agreeing_examples(tmp_path: Path) -> None:
    with FakeOpenAI(disagree_rate=0.4, seed=8) as fake:
        status = run_generation(config(tmp_path, n=10, check=True), client_for(fake))
    assert status.written == 10 and status.check_dropped > 0
    dropped = [f for f in lines(tmp_path / "out.failed.jsonl") if f["kind"] == "check"]
    assert len(dropped) == status.check_dropped and all("example" in f for f in dropped)
    answers = lines(tmp_path / "out.answers.jsonl")
    assert len(answers) == 10 and all(a["final_answer"] == "42" for a in answers)


def test_custom_template_writes_its_system_prompt_first(tmp_path: Path, fake: FakeOpenAI) -> None:
    status = run_generation(config(tmp_path, "custom", n=4), client_for(fake))
    assert status.written == 4
    state = json.loads((tmp_path / "out.run.json").read_text())
    system = state["setup_outputs"]["student_system"]
    assert all(e["messages"][0] == {"role": "system", "content": system} for e in lines(tmp_path / "out.jsonl"))


def test_paraphrase_rewrites_user_turns_and_keeps_answers(tmp_path: Path, fake: FakeOpenAI) -> None:
    sources = [ex(f"Original question number {i} about apples?") for i in range(3)]
    status = run_generation(config(tmp_path, "paraphrase", n=7, sources=sources, variables={"ways": "3"}),
                            client_for(fake))
    assert status.written == 7
    made = lines(tmp_path / "out.jsonl")
    assert all(e["messages"][-1]["content"] == "x" for e in made)
    assert not {e["messages"][0]["content"] for e in made} & {s["messages"][0]["content"] for s in sources}


def test_a_list_answer_is_bounded_to_what_the_prompt_asked_for(tmp_path: Path, fake: FakeOpenAI) -> None:
    """'Rewrite it 2 ways' asks for at most 2 items: a small model once looped one rewrite until max_tokens."""
    sources = [ex(f"Original question number {i} about pears?") for i in range(2)]
    status = run_generation(config(tmp_path, "paraphrase", n=4, sources=sources, variables={"ways": "2"}),
                            client_for(fake))
    assert status.written == 4 and fake.schemas
    assert all((s["properties"]["rewrites"]["minItems"], s["properties"]["rewrites"]["maxItems"]) == (1, 2)
               for s in fake.schemas)
    assert "maxItems" not in json.dumps(load_template("paraphrase").schema)  # the template itself is unchanged
    assert request_schema(load_template("knowledge"), 3) == load_template("knowledge").schema


def test_the_good_rewrites_of_a_partly_bad_reply_are_written(tmp_path: Path) -> None:
    """A blank rewrite, or a reply cut off in its second rewrite, cost the whole reply before."""
    sources = [ex(f"Original question number {i} about plums?") for i in range(2)]
    script = [('{"rewrites": ["", "Which plum question is number 0?"]}', "stop"),
              ('{"rewrites": ["Tell me plum question one.", "1.1; 1.2; 1.3; 1.', "length")]
    with FakeOpenAI(seed=3, scripted=script) as fake:
        status = run_generation(config(tmp_path, "paraphrase", n=2, sources=sources, variables={"ways": "2"},
                                       concurrency=1), client_for(fake))
    assert status.written == 2 and status.failed_parse == 0 and fake.requests == 2
    assert [e["messages"][0]["content"] for e in lines(tmp_path / "out.jsonl")] == [
        "Which plum question is number 0?", "Tell me plum question one."]
    notes = [json.loads(x)["reason"] for x in (tmp_path / "out.failed.jsonl").read_text().splitlines()]
    assert len(notes) == 2 and "rewrites[0] is empty" in notes[0] and "cut off" in notes[1]


def test_fatal_provider_error_ends_the_run_with_a_readable_message(tmp_path: Path) -> None:
    with FakeOpenAI(fail_first=10**6, failure_statuses=(401,), seed=1) as fake:
        status = run_generation(config(tmp_path, n=3), client_for(fake))
    assert status.state == "failed" and "key" in status.message and status.retries == 0


# -- the command line ------------------------------------------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_cli_json_contract_and_output_validates(tmp_path: Path, fake: FakeOpenAI) -> None:
    out = tmp_path / "k.jsonl"
    result = cli("generate", "--template", "knowledge", "--n", "12", "--out", str(out), "--base-url",
                 fake.base_url, "--api-key", "k", "--concurrency", "4", "--var", "subject=Ada", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("requested", "written", "failed_parse", "duplicates_dropped", "retries", "cost_usd", "out"):
        assert key in data
    assert data["requested"] == data["written"] == 12 and data["out"] == str(out)
    checked = cli("validate", str(out), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_cli_exit_1_when_not_everything_was_written(tmp_path: Path, fake: FakeOpenAI) -> None:
    result = cli("generate", "--template", "tone", "--n", "500", "--out", str(tmp_path / "t.jsonl"),
                 "--base-url", fake.base_url, "--api-key", "k", "--teacher", "gpt-4o-mini",
                 "--budget-usd", "0.001", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["state"] == "budget" and data["written"] < 500


def test_cli_bad_usage_is_exit_2(tmp_path: Path) -> None:
    result = cli("generate", "--template", "nope", "--n", "3", "--out", str(tmp_path / "x.jsonl"),
                 "--base-url", "http://127.0.0.1:9/v1", "--api-key", "k", "--teacher", "m")
    assert result.returncode == 2 and "Unknown template" in result.stderr


# -- end to end with the real SmolLM2 behind the local backend ----------------------------------
@pytest.mark.slow
def test_end_to_end_with_smollm2_as_teacher(tmp_path: Path, smollm_backend) -> None:
    model = smollm_backend.client().models.list().data[0].id
    client = openai.AsyncOpenAI(base_url=smollm_backend.base_url, api_key=smollm_backend.api_key)
    cfg = GenerationConfig(template=load_template("knowledge"), n=3, out=tmp_path / "e2e.jsonl", model=model,
                           concurrency=3, max_tokens=300, max_failures=6, retry=RetryPolicy(timeout=600))
    status = run_generation(cfg, client)
    print("SmolLM2 as teacher:", status.summary(), status.message)  # shown with -s; quality is not the point
    assert status.state in ("done", "failed")
    assert status.written == len(load_existing(cfg.out)) >= 1
    failed = lines(tmp_path / "e2e.failed.jsonl") if (tmp_path / "e2e.failed.jsonl").exists() else []
    assert status.failed_parse + status.duplicates_dropped == len(failed)
    # The local backend constrains decoding to the template's schema: a 135M teacher's replies are
    # JSON of the right shape (only a reply cut off at max_tokens could be incomplete).
    assert not [f for f in failed if f.get("kind") == "parse" and "JSON" in f["reason"] and "cut off" not in f["reason"]]
    problems = {e["code"] for e in validate_file(cfg.out).errors}
    assert problems <= {"too_few_examples"}  # OpenAI's minimum of 10; the lines themselves are valid


def test_dedup_scores_are_token_sort_ratio_exactly() -> None:
    """The presorted comparison is the documented rule (token_sort_ratio on normalised user turns)."""
    import random as _random

    from rapidfuzz import fuzz

    from pipeline.dataset.groups import normal_text
    from tests.fakes.fake_openai import WORDS
    rng = _random.Random(3)
    kept = [" ".join(rng.sample(WORDS, 8)) for _ in range(40)]
    d = Deduper(80.0)
    for text in kept:
        d.add(ex(text))
    for _ in range(200):
        words = rng.choice(kept).split()
        words[rng.randrange(len(words))] = rng.choice(WORDS)  # one word changed, order shuffled
        rng.shuffle(words)
        probe = " ".join(words)
        best = max(fuzz.token_sort_ratio(normal_text(probe), normal_text(k), processor=None) for k in kept)
        reason = d.duplicate_reason(ex(probe))
        assert (reason is not None) == (best >= 80.0), (probe, best, reason)
        if reason and "near" in reason:
            assert f"({best:.0f}% similar)" in reason
