"""Validation of tool-call, structured-output and classification data, and the data-prep `stats`,
through `python -m pipeline validate --json` (line numbers, codes, exit codes) and the functions."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import tokens
from pipeline.__main__ import main
from pipeline.dataset import validate_examples

WEATHER = {"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "description": "The unit of temperature to return",
                 "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"], "additionalProperties": False}}}


def call(args: str, name: str = "get_current_weather", cid: str = "call_1") -> dict:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def tool_example(args: str = '{"location": "Paris", "unit": "celsius"}', *, name: str = "get_current_weather",
                 answer_id: str | None = "call_1", final: bool = True, tools: list | None = None) -> dict:
    msgs = [{"role": "system", "content": "You help with the weather."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [call(args, name)]}]
    if answer_id is not None:
        msgs.append({"role": "tool", "tool_call_id": answer_id, "content": '{"temp": 21}'})
    if final:
        msgs.append({"role": "assistant", "content": "It is 21 °C in Paris."})
    return {"messages": msgs, "tools": [WEATHER] if tools is None else tools}


def write(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def validate_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["validate", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def codes_by_line(out: dict, errors_only: bool = False) -> dict[int | None, set[str]]:
    found: dict[int | None, set[str]] = {}
    for p in out["errors"] + ([] if errors_only else out["warnings"]):
        found.setdefault(p["line"], set()).add(p["code"])
    return found


def test_good_tool_call_file_passes(tmp_path, capsys) -> None:
    rows = [tool_example(f'{{"location": "City {i}"}}') for i in range(12)]
    rows.append(tool_example(final=False, answer_id=None))  # ends on the call: teaches "call now"
    code, out = validate_json(capsys, str(write(tmp_path / "tools.jsonl", rows)))
    assert code == 0 and out["errors"] == [], out["errors"]
    assert out["stats"]["with_tools"] == 13


def test_broken_tool_calls_are_reported_with_their_lines(tmp_path, capsys) -> None:
    rows = [tool_example() for _ in range(10)]
    rows += [
        tool_example('{"location": "Paris",}'),                 # line 11: not JSON
        tool_example('{"location": 5, "unit": "kelvin"}'),      # line 12: does not fit the parameters
        tool_example(name="get_stock_price"),                   # line 13: not defined
        tool_example(answer_id="call_9"),                       # line 14: call_1 unanswered, call_9 orphan
        tool_example(tools=[{"type": "function", "function": {"name": "get_current_weather",
                                                             "parameters": {"type": "objekt"}}}]),  # 15
        tool_example('["Paris"]'),                              # line 16: not an object
    ]
    code, out = validate_json(capsys, str(write(tmp_path / "tools.jsonl", rows)))
    found = codes_by_line(out)
    assert code == 1
    assert "tool_arguments_not_json" in found[11] and "tool_arguments_mismatch" in found[12]
    assert "undefined_tool" in found[13]
    assert {"unanswered_tool_call", "tool_message_without_call"} <= found[14]
    assert "invalid_tool_definition" in found[15] and "tool_arguments_not_json" in found[16]
    assert not any(line <= 10 for line in codes_by_line(out, errors_only=True) if line)
    mismatch = next(p["message"] for p in out["errors"] if p["code"] == "tool_arguments_mismatch")
    assert "Line 12" in mismatch and "$.location" in mismatch and "kelvin" in mismatch
    unanswered = next(p["message"] for p in out["errors"] if p["code"] == "unanswered_tool_call")
    assert "'call_1'" in unanswered and '"tool_call_id": "call_1"' in unanswered


def test_tools_are_counted_in_training_tokens_as_openai_counts_them() -> None:
    # OpenAI's token-counting cookbook: this tool + these messages are 101 prompt tokens on
    # gpt-4o-mini (o200k_base) and 105 on gpt-3.5-turbo (cl100k_base), as the API reports.
    msgs = [{"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
            {"role": "user", "content": "What's the weather like in San Francisco?"}]
    for model, expected in (("gpt-4o-mini-2024-07-18", 101), ("gpt-3.5-turbo", 105)):
        counter = tokens.counter_for(model)
        assert tokens.count_messages(msgs, counter) + tokens.count_tools([WEATHER], counter) == expected
    plain = validate_examples([{"messages": msgs}])
    with_tools = validate_examples([{"messages": msgs, "tools": [WEATHER]}])
    assert with_tools.total_tokens - plain.total_tokens == 68


def test_structured_answers_checked_against_the_attached_schema(tmp_path, capsys) -> None:
    schema = {"type": "object", "properties": {"item": {"type": "string"}, "qty": {"type": "integer"}},
              "required": ["item", "qty"], "additionalProperties": False}
    rows = [{"messages": [{"role": "user", "content": f"Order {i} pens"},
                          {"role": "assistant", "content": json.dumps({"item": "pen", "qty": i})}]}
            for i in range(1, 11)]
    rows.append({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "two pens"}]})
    rows.append({"messages": [{"role": "user", "content": "y"},
                              {"role": "assistant", "content": '{"item": "pen", "qty": "2"}'}]})
    data = write(tmp_path / "orders.jsonl", rows)
    code, out = validate_json(capsys, str(data))  # no schema attached: free text is fine
    assert not {"answer_not_json", "answer_schema_mismatch"} & {p["code"] for p in out["errors"]}
    (tmp_path / "orders.schema.json").write_text(json.dumps(schema), encoding="utf-8")  # the sidecar
    code, out = validate_json(capsys, str(data))
    found = codes_by_line(out)
    assert code == 1 and "answer_not_json" in found[11] and "answer_schema_mismatch" in found[12]
    assert not any(line <= 10 for line in codes_by_line(out, errors_only=True) if line)
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "objekt"}', encoding="utf-8")
    code, out = validate_json(capsys, str(data), "--schema", str(bad))
    assert code == 1 and "invalid_schema" in codes_by_line(out)[None]
    bad.write_text("{not json", encoding="utf-8")
    assert main(["validate", str(data), "--schema", str(bad)]) == 2


def test_label_distribution_and_imbalance_warning(tmp_path, capsys) -> None:
    def row(text: str, label: str) -> dict:
        return {"messages": [{"role": "system", "content": "Classify the ticket."},
                             {"role": "user", "content": text}, {"role": "assistant", "content": label}]}

    balanced = [row(f"ticket {i}", ["billing", "bug", "feature"][i % 3]) for i in range(30)]
    code, out = validate_json(capsys, str(write(tmp_path / "b.jsonl", balanced)))
    assert out["stats"]["labels"] == {"billing": 10, "bug": 10, "feature": 10}
    assert "label_imbalance" not in {p["code"] for p in out["warnings"]}
    skewed = [row(f"ticket {i}", "bug") for i in range(24)] + [row(f"other {i}", "billing") for i in range(4)]
    code, out = validate_json(capsys, str(write(tmp_path / "s.jsonl", skewed)))
    warning = next(p for p in out["warnings"] if p["code"] == "label_imbalance")
    assert warning["line"] is None and "bug: 24" in warning["message"] and "6.0x" in warning["message"]
    prose = [row(f"question {i}", f"A long free-text answer number {i} with many words in it.") for i in range(12)]
    code, out = validate_json(capsys, str(write(tmp_path / "p.jsonl", prose)))
    assert out["stats"]["labels"] is None  # free-text answers are not labels


def test_stats_are_the_notebooks_report(tmp_path, capsys) -> None:
    rows = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Q{i}"},
                          {"role": "assistant", "content": " ".join(["word"] * (i + 1))}]} for i in range(19)]
    rows.append({"messages": [{"role": "user", "content": "no system"}, {"role": "assistant", "content": "ok"},
                              {"role": "user", "content": "more"}, {"role": "assistant", "content": "ok"}]})
    code, out = validate_json(capsys, str(write(tmp_path / "d.jsonl", rows)), "--epochs", "2")
    stats = out["stats"]
    assert stats["messages_per_example"] == {"min": 3, "max": 4, "mean": 3.05, "median": 3, "p5": 3, "p95": 3.05}
    assert stats["messages_per_example_counts"] == {"3": 19, "4": 1}
    assert stats["assistant_tokens_per_example"]["min"] == 1 and stats["assistant_tokens_per_example"]["max"] == 19
    assert set(stats["tokens_per_example"]) == {"min", "max", "mean", "median", "p5", "p95"}
    assert stats["tokens_per_example"]["max"] == max(tokens.count_examples(
        [r["messages"] for r in rows], tokens.counter_for("gpt-4o-mini-2024-07-18")))
    assert (stats["missing_system"], stats["missing_user"], stats["over_token_limit"]) == (1, 0, 0)
    charged = out["billing_tokens_per_epoch"] * 2
    assert stats["charged_tokens"] == charged and stats["billing_line"].startswith(f"~{charged:,} tokens will be "
                                                                                   "charged during training, for 2 epoch")
    assert main(["validate", str(tmp_path / "d.jsonl")]) == 0
    human = capsys.readouterr().out
    assert "assistant tokens per example: min 1, max 19" in human and "will be charged during training" in human


def test_the_dataset_tab_summary_shows_the_report() -> None:
    from pipeline.dataset.draft_view import summary_markdown, validate_draft

    rows = [{"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": "A"}]}
            for i in range(12)]
    text = summary_markdown(validate_draft(rows, [], "gpt-4o-mini-2024-07-18"))
    assert "| assistant tokens |" in text and "Missing a system message: 12" in text
    assert "tokens will be charged during training" in text
    assert "~" not in text.replace("\\~", "")  # a bare pair of "~" strikes the billing line through


def test_odd_tool_shapes_become_problems_not_exceptions() -> None:
    import random

    junk = [None, 1, "x", [], {}, [1], {"a": []}, [{"type": "function"}], {"function": []}, [[]]]
    rng = random.Random(16)
    rows = []
    for _ in range(300):
        msgs = [{"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": rng.choice(junk + [[{"id": rng.choice(junk), "function":
                                                                           rng.choice(junk)}]])},
                {"role": "tool", "tool_call_id": rng.choice(junk + ["call_1"]), "content": "r"},
                {"role": rng.choice(["assistant", ["assistant"]]), "content": "done"}]
        rows.append({"messages": msgs, "tools": rng.choice(junk + [[WEATHER, rng.choice(junk)]])})
    report = validate_examples(rows)
    assert len(report.example_problems) == 300 and report.errors
