"""The classification, structured-output and tool-calling templates: what they ask the teacher, the
examples they make (checked before they are kept), against stand-in teachers and the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from pipeline.dataset import validate_file
from pipeline.errors import InputError
from pipeline.generate import (
    GenerationConfig,
    RetryPolicy,
    load_template,
    prompts,
    resolve_variables,
    run_generation,
)
from pipeline.generate.tasks import TaskReject
from pipeline.generate.templates import build_examples
from tests.fakes.chat_server import FakeChatServer
from tests.fakes.fake_openai import FakeOpenAI


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def config(tmp_path: Path, template: str, n: int, **kw) -> GenerationConfig:
    kw.setdefault("model", "gpt-4o-mini")
    kw.setdefault("concurrency", 2)
    kw.setdefault("retry", RetryPolicy(base_delay=0.01, max_delay=0.05))
    return GenerationConfig(template=load_template(template), n=n, out=tmp_path / "out.jsonl", **kw)


def test_classification_is_balanced_and_answers_are_the_label_alone(tmp_path: Path) -> None:
    t = load_template("classification")
    variables = resolve_variables(t, {"labels": "spam: unwanted ads\nham: a normal message\nphishing: asks for a "
                                                "password or payment", "task": "Sort emails"})
    assert variables["student_system"] == "Sort emails. Answer with exactly one label: spam, ham, phishing."
    asked = [prompts.build_messages(t, variables, seed=3, index=i)[1]["content"] for i in range(9)]
    assert [sum(f"label is: {lab} (" in a for a in asked) for lab in ("spam", "ham", "phishing")] == [3, 3, 3]
    system = prompts.build_messages(t, variables, seed=3, index=0)[0]["content"]
    assert '"enum": ["spam", "ham", "phishing"]' in system and "hard case close to the boundary" in str(t.seeds)
    with FakeOpenAI(seed=11) as fake:
        status = run_generation(config(tmp_path, "classification", 9, variables={"labels": "spam: ads\nham: normal"}),
                                openai.AsyncOpenAI(base_url=fake.base_url, api_key="k"))
    made = lines(tmp_path / "out.jsonl")
    assert status.written == 9 and {e["messages"][-1]["content"] for e in made} <= {"spam", "ham"}
    assert [m["role"] for m in made[0]["messages"]] == ["system", "user", "assistant"]


def test_classification_needs_two_labels() -> None:
    with pytest.raises(InputError, match="at least two different labels"):
        resolve_variables(load_template("classification"), {"labels": "spam: ads"})


def test_structured_outputs_fit_the_schema_and_the_run_attaches_it(tmp_path: Path) -> None:
    with FakeOpenAI(seed=5) as fake:
        status = run_generation(config(tmp_path, "structured", 6),
                                openai.AsyncOpenAI(base_url=fake.base_url, api_key="k"))
    assert status.written == 6
    schema = json.loads((tmp_path / "out.schema.json").read_text())
    assert schema == json.loads(load_template("structured").variables["output_schema"].default)
    for ex in lines(tmp_path / "out.jsonl"):
        order = json.loads(ex["messages"][-1]["content"])
        assert set(order) == {"customer_name", "items", "delivery"} and order["delivery"] in ("standard", "express")
    report = validate_file(tmp_path / "out.jsonl", schema=schema)
    assert not [p for p in report.errors if p["code"].startswith("answer_")]


def test_structured_rejects_outputs_off_the_schema_and_bad_schemas() -> None:
    t = load_template("structured")
    schema = {"type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}, "required": ["qty"]}
    variables = resolve_variables(t, {"output_schema": json.dumps(schema)})
    made = build_examples(t, variables, {"input": "two please", "output": {"qty": 2}})
    assert made[0][0]["messages"][-1]["content"] == '{"qty": 2}'
    with pytest.raises(TaskReject, match="does not fit the schema.*qty"):
        build_examples(t, variables, {"input": "none", "output": {"qty": 0}})
    with pytest.raises(InputError, match="Curly quotes"):
        resolve_variables(t, {"output_schema": "{\u201ctype\u201d: \u201cobject\u201d}"})
    with pytest.raises(InputError, match="not a valid JSON schema"):
        resolve_variables(t, {"output_schema": '{"type": "objekt"}'})


CITIES = ["Paris", "Oslo", "Lima", "Kyoto", "Accra", "Quito", "Perth", "Bergen", "Dakar", "Hanoi", "Cusco"]


def tool_teacher(model: str, messages: list[dict]) -> str:
    """A stand-in teacher for the tool-calling template: calls when asked to, once with a bad unit."""
    ask = messages[-1]["content"]
    if "No tool fits" in ask:
        return json.dumps({"user": "Tell me a joke", "tool": "none", "arguments": "{}", "tool_result": "(no tool)",
                           "answer": "Why did the cloud stay home? It was feeling under the weather."})
    city = CITIES[sum(map(ord, ask)) % len(CITIES)]
    unit = "kelvin" if "typo" in ask else "celsius"
    return json.dumps({"user": f"How warm is it in {city} right now? ({ask[-40:]})", "tool": "get_current_weather",
                       "arguments": json.dumps({"city": city, "unit": unit}),
                       "tool_result": json.dumps({"temperature": 18, "unit": unit}),
                       "answer": f"It is 18 degrees in {city}."})


def test_tool_calling_conversations_with_calls_results_and_no_tool_cases(tmp_path: Path) -> None:
    with FakeChatServer(answers=tool_teacher, models=["teacher"]) as server:
        status = run_generation(config(tmp_path, "tool_calling", 6, model="teacher", concurrency=1),
                                openai.AsyncOpenAI(base_url=server.base_url, api_key="k"))
    made = lines(tmp_path / "out.jsonl")
    assert status.written == 6
    assert all(e["tools"][0]["function"]["name"] == "get_current_weather" for e in made)
    calls = [e for e in made if len(e["messages"]) == 5]
    plain = [e for e in made if len(e["messages"]) == 3]
    assert calls and plain and len(calls) + len(plain) == 6
    call, result = calls[0]["messages"][2], calls[0]["messages"][3]
    assert [m["role"] for m in calls[0]["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert result["tool_call_id"] == call["tool_calls"][0]["id"]
    assert json.loads(call["tool_calls"][0]["function"]["arguments"])["unit"] == "celsius"
    failed = [f for f in lines(tmp_path / "out.failed.jsonl") if f["kind"] == "parse"]
    assert failed and all("do not fit get_current_weather's parameters" in f["reason"] for f in failed)
    report = validate_file(tmp_path / "out.jsonl")
    assert not [p for p in report.errors if p["code"] != "too_few_examples"]


def test_tool_samples_and_own_tools() -> None:
    t = load_template("tool_calling")
    assert "create_event" in resolve_variables(t, {"tools": "calendar"})["tool_names"]
    own = [{"type": "function", "function": {"name": "lookup_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]
    variables = resolve_variables(t, {"tools": json.dumps(own)})
    system = prompts.build_messages(t, variables, seed=0, index=0)[0]["content"]
    assert '"enum": ["lookup_order", "none"]' in system
    with pytest.raises(InputError, match="not OpenAI tool definitions"):
        resolve_variables(t, {"tools": '[{"name": "x"}]'})


@pytest.mark.parametrize("template", ["classification", "structured", "tool_calling"])
def test_templates_run_on_the_local_backend(tiny_backend, tmp_path: Path, template: str) -> None:
    """The tiny random model, constrained to each template's schema: the run ends cleanly, and whatever
    it keeps is valid chat data (tool arguments it invents are checked, and mostly refused)."""
    model = tiny_backend.client().models.list().data[0].id
    status = run_generation(config(tmp_path, template, 2, model=model, concurrency=1, max_tokens=120,
                                   max_failures=6),
                            openai.AsyncOpenAI(base_url=tiny_backend.base_url, api_key=tiny_backend.api_key))
    assert status.state in ("done", "failed") and status.failed_calls == 0
    out = tmp_path / "out.jsonl"
    if status.written:
        assert not [p for p in validate_file(out).errors if p["code"] != "too_few_examples"]
