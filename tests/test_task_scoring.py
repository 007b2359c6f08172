"""Scoring labels, JSON-schema answers and tool calls: tricky cases, the per-label report, and a
benchmark of all three run through the real SDK against a fake server that makes tool calls."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import InputError
from pipeline.evaluate.bench import parse_benchmark
from pipeline.evaluate.runner import Target, run_benchmark
from pipeline.evaluate.tasks import label_report, score_json_schema, score_label, score_tool_call
from tests.fakes.chat_server import FakeChatServer

LABELS = ("billing", "bug", "feature request")


@pytest.mark.parametrize(("answer", "expected", "correct"), [
    ("billing", "billing", True),
    ("**Billing.**", "billing", True),
    ("Label: feature request", "feature request", True),
    ("It is a bug.", "bug", True),               # one label inside a sentence
    ("billing or bug", "bug", False),            # two labels name no class
    ("bugs", "bug", False),                      # not the label
    ("debug", "bug", False),                     # not as a whole word
    ("Feature Request", "feature request", True),
])
def test_label_tricky_cases(answer: str, expected: str, correct: bool) -> None:
    assert score_label(answer, expected, LABELS).correct is correct


def test_label_report_precision_recall_f1_and_confusion() -> None:
    expected = ["bug", "bug", "bug", "billing", "billing", "feature request"]
    predicted = ["bug", "bug", "billing", "billing", "hello", "bug"]
    report = label_report(expected, predicted, LABELS)
    assert report["columns"] == ["billing", "bug", "feature request", "(other)"]
    assert report["confusion"] == [[1, 0, 0, 1], [1, 2, 0, 0], [0, 1, 0, 0]]
    assert report["per_label"]["bug"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3}
    assert report["per_label"]["billing"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["per_label"]["feature request"]["f1"] == 0.0 and report["accuracy"] == 0.5


SCHEMA = {"type": "object", "properties": {"item": {"type": "string"}, "qty": {"type": "integer"}},
          "required": ["item", "qty"], "additionalProperties": False}


def test_json_schema_valid_conforming_and_per_field() -> None:
    want = {"item": "pen", "qty": 2}
    ok = score_json_schema('{"qty": 2.0, "item": "pen"}', json.dumps(want), SCHEMA)  # order, 2 vs 2.0
    assert ok.correct and ok.extracted == "valid, conforms, 2/2 fields"
    fenced = score_json_schema('```json\n{"item": "pen", "qty": 2}\n```', want, SCHEMA)
    assert fenced.correct and "code fence" in fenced.note
    wrong_field = score_json_schema('{"item": "pencil", "qty": 2}', want, SCHEMA)
    assert not wrong_field.correct and wrong_field.fields == {"item": False, "qty": True}
    off_schema = score_json_schema('{"item": "pen", "qty": "2"}', want, SCHEMA)
    assert not off_schema.correct and off_schema.extracted.startswith("valid, does not conform")
    assert "qty" in off_schema.note
    prose = score_json_schema("Two pens, please.", want, SCHEMA)
    assert not prose.correct and prose.extracted == "invalid JSON"


def call(name: str, args: str) -> dict:
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}


def test_tool_call_right_tool_equal_arguments_or_no_call() -> None:
    want = {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}
    assert score_tool_call({"tool_calls": [call("get_weather", '{"days": 2.0,  "city": "Paris"}')]}, want).correct
    assert score_tool_call({"tool_calls": [call("get_time", '{"city": "Paris"}')]}, want).note.startswith("wrong tool")
    assert score_tool_call({"tool_calls": [call("get_weather", '{"city": "paris", "days": 2}')]},
                           want).note == "right tool, different arguments"
    assert score_tool_call({"tool_calls": [call("get_weather", "{city: Paris}")]}, want).note == "the arguments are not JSON"
    assert score_tool_call({"content": "It is sunny."}, want).extracted == "no call"
    assert score_tool_call({"content": "Hello!"}, "no call").correct
    assert not score_tool_call({"tool_calls": [call("get_weather", "{}")]}, "no call").correct


WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def bench_lines() -> str:
    rows = [
        {"messages": [{"role": "user", "content": "Weather in Oslo?"}], "tools": WEATHER, "scoring": "tool_call",
         "expected": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        {"messages": [{"role": "user", "content": "Hi there"}], "tools": WEATHER, "scoring": "tool_call",
         "expected": "no call"},
        {"messages": [{"role": "user", "content": "Order: 3 pens"}], "schema": SCHEMA, "scoring": "json_schema",
         "expected": {"item": "pen", "qty": 3}},
        {"messages": [{"role": "user", "content": "I was charged twice"}], "scoring": "label",
         "labels": list(LABELS), "expected": "billing"},
        {"messages": [{"role": "user", "content": "The app crashes"}], "scoring": "label", "expected": "bug"},
    ]
    return "\n".join(json.dumps(r) for r in rows)


def fake_answers(model: str, messages: list[dict]) -> str | dict:
    question = messages[-1]["content"]
    if question == "Weather in Oslo?":
        return {"content": None, "tool_calls": [call("get_weather", '{"city": "Oslo"}')]}
    return {"Hi there": "Hello!", "Order: 3 pens": '{"item": "pen", "qty": 3}',
            "I was charged twice": "Billing", "The app crashes": "feature request"}[question]


def test_a_task_benchmark_runs_through_the_sdk() -> None:
    items = parse_benchmark(bench_lines())
    assert items[0].tools == WEATHER and items[2].schema == SCHEMA and items[3].labels == LABELS
    with FakeChatServer(answers=fake_answers, models=["m"]) as server:
        results = run_benchmark("tasks", items, [Target("m", server.client())], concurrency=1)
        sent = {r["messages"][-1]["content"]: r.get("tools") for r in server.requests}
    assert sent["Weather in Oslo?"] == WEATHER and sent["Order: 3 pens"] is None  # tools go with their items
    row = results["results"][0]
    assert (row["correct"], row["total"]) == (4, 5)
    answers = {i["index"]: i["answers"]["m"] for i in results["items"]}
    assert answers[0]["answer"] == '→ get_weather({"city": "Oslo"})' and answers[0]["correct"]
    assert answers[2]["fields"] == {"item": True, "qty": True}
    assert results["fields"]["m"] == {"item": 1.0, "qty": 1.0}
    labels = results["labels"]["m"]
    assert labels["confusion"][labels["labels"].index("bug")][labels["columns"].index("feature request")] == 1


def test_task_items_without_what_they_need_are_refused() -> None:
    no_tools = json.dumps({"messages": [{"role": "user", "content": "x"}], "scoring": "tool_call",
                           "expected": "no call"})
    with pytest.raises(InputError, match="needs 'tools'"):
        parse_benchmark(no_tools)
    bad_expected = json.dumps({"messages": [{"role": "user", "content": "x"}], "scoring": "tool_call",
                               "tools": WEATHER, "expected": {"tool": "get_weather"}})
    with pytest.raises(InputError, match="name"):
        parse_benchmark(bad_expected)


def test_evaluate_shows_the_confusion_heat_map_and_per_label_scores() -> None:
    from components.evaluate_run import show_results
    from pipeline.evaluate.task_chart import confusion_heatmap

    items = parse_benchmark(bench_lines())
    with FakeChatServer(answers=fake_answers, models=["m"]) as server:
        results = run_benchmark("tasks", items, [Target("m", server.client())], concurrency=1)
    fig = confusion_heatmap(results)
    heat = fig.data[0]
    assert heat.type == "heatmap" and list(heat.y) == ["billing", "bug", "feature request"]
    assert list(heat.x)[-1] == "(other)" and heat.z[1][2] == 1  # "bug" answered "feature request"
    shown = show_results(results, None)
    assert shown["task_plot"].visible and "| bug | 0.00 | 0.00 | 0.00 | 1 |" in shown["task_md"]
    assert "| qty | 100% |" in shown["task_md"]
    plain = {"results": results["results"], "items": results["items"], "verdicts": []}
    assert confusion_heatmap(plain) is None and not show_results(plain, None)["task_plot"].visible
