"""Validation: each check, token counting the notebook's way, epochs and cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import tokens
from pipeline.dataset import SEVERITY, validate_examples, validate_file


def ex(user: str = "What is 2+2?", assistant: str = "4", system: str | None = "Be brief.") -> dict:
    msgs = [{"role": "system", "content": system}] if system is not None else []
    return {"messages": msgs + [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def many(n: int = 60) -> list[dict]:
    return [ex(f"Question {i}?", f"Answer {i}.") for i in range(n)]


def codes_for(bad: object, model: str = "gpt-4o-mini-2024-07-18") -> list[str]:
    report = validate_examples([*many(), bad], model)
    return [p.code for p in report.example_problems[-1]]


def test_clean_dataset_has_no_problems() -> None:
    report = validate_examples(many())
    assert report.errors == [] and report.warnings == [] and report.ok


@pytest.mark.parametrize("bad,code", [
    ([1, 2], "not_a_dict"),
    ("just text", "not_a_dict"),
    ({"prompt": "x"}, "missing_messages"),
    ({"messages": []}, "missing_messages"),
    ({"messages": "hello"}, "messages_not_a_list"),
    ({"messages": ["hello", {"role": "assistant", "content": "x"}]}, "message_not_a_dict"),
    ({"messages": [{"content": "hi"}, {"role": "assistant", "content": "x"}]}, "message_missing_key"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}, "message_missing_key"),
    ({"messages": [{"role": "user", "content": "hi", "mood": "ok"}, {"role": "assistant", "content": "x"}]},
     "message_unrecognized_key"),
    ({"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "x"}]}, "unrecognized_role"),
    ({"messages": [{"role": ["user"], "content": "hi"}, {"role": "assistant", "content": "x"}]}, "unrecognized_role"),
    ({"messages": [{"role": "user", "content": None}, {"role": "assistant", "content": "x"}]}, "missing_content"),
    ({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}, "missing_assistant_message"),
    ({"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "x"}]}, "content_not_string"),
    ({"messages": [{"role": "user", "content": ["a"]}, {"role": "assistant", "content": "x"}]}, "content_not_string"),
    ({"messages": [{"role": "user", "content": "  \n"}, {"role": "assistant", "content": "x"}]}, "blank_content"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 2}]},
     "invalid_weight"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": True}]},
     "invalid_weight"),
    ({"messages": [{"role": "user", "content": "hi", "weight": 1}, {"role": "assistant", "content": "x"}]},
     "invalid_weight"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 0}]},
     "all_weights_zero"),
    (ex(system=None), "missing_system_message"),
    ({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "x"}]},
     "missing_user_message"),
    ({**ex(), "id": 7}, "unrecognized_example_key"),
    (ex("Question 3?", "Answer 3."), "duplicate"),
])
def test_each_check(bad: object, code: str) -> None:
    found = codes_for(bad)
    assert code in found
    assert SEVERITY[code] in ("error", "warning")


def test_problem_shape_and_line_numbers() -> None:
    examples = [*many(12), {"messages": [{"role": "user", "content": "hi"}]}]
    report = validate_examples(examples, line_numbers=list(range(3, 3 + len(examples))))
    (err,) = report.errors
    assert err == {"line": 15, "code": "missing_assistant_message", "severity": "error",
                   "message": err["message"]}
    assert "Line 15" in err["message"] and "Add the answer" in err["message"]
    assert report.example_problems[-1][0].index == 12


def test_valid_tool_call_and_weight_examples_pass() -> None:
    tool = {"messages": [{"role": "user", "content": "Weather?"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "c1", "content": "18C"},
                         {"role": "assistant", "content": "18C", "weight": 1}],
            "tools": [{"type": "function", "function": {"name": "w"}}]}
    assert [c for c in codes_for(tool) if c != "missing_system_message"] == []


def test_dataset_size_checks() -> None:
    assert [p["code"] for p in validate_examples(many(9)).errors] == ["too_few_examples"]
    assert [p["code"] for p in validate_examples(many(10)).warnings] == ["few_examples"]
    assert validate_examples(many(50)).warnings == []
    assert validate_examples([]).errors[0]["line"] is None


def test_too_long_uses_the_models_limit_from_data() -> None:
    long = ex(user="word " * 17_000)
    assert "too_long" in codes_for(long, "gpt-3.5-turbo-0125")
    assert "too_long" not in codes_for(long, "gpt-4o-mini-2024-07-18")
    report = validate_examples([*many(), long], "gpt-3.5-turbo-0125")
    assert report.token_lengths[-1] > 16_385
    assert report.billing_tokens_per_epoch == sum(report.token_lengths[:-1]) + 16_385


def test_tokens_counted_like_the_notebook() -> None:
    counter = tokens.counter_for("gpt-3.5-turbo")
    example = {"messages": [{"role": "user", "content": "Hello there", "name": "bob"},
                            {"role": "assistant", "content": "Hi"}]}
    expected = 3 + (3 + counter.count("user") + counter.count("Hello there") + counter.count("bob") + 1) + \
        (3 + counter.count("assistant") + counter.count("Hi"))
    assert validate_examples([example], "gpt-3.5-turbo").token_lengths == [expected]
    assert tokens.count_messages(example["messages"], counter) == expected


def test_encoding_per_family_and_approximate_flag() -> None:
    assert validate_examples(many(), "gpt-4o-mini-2024-07-18").encoding == "o200k_base"
    r35 = validate_examples(many(), "gpt-3.5-turbo-0125")
    assert r35.encoding == "cl100k_base" and not r35.tokens_approximate
    assert validate_examples(many(), "SmolLM2-135M-Instruct").tokens_approximate


def test_article_cost_figure() -> None:
    # "a 100,000-token file for 3 epochs is about $2.40" at $0.008 / 1K training tokens.
    assert tokens.training_cost_usd("gpt-3.5-turbo", 100_000, 3) == pytest.approx(2.40)
    assert tokens.training_cost_usd("gpt-3.5-turbo-0125", 100_000, 3) == pytest.approx(2.40)


def test_epochs_default_rule_and_override() -> None:
    assert validate_examples(many(60)).n_epochs == 3
    assert validate_examples(many(20)).n_epochs == 5          # 100 // 20
    assert validate_examples(many(60), n_epochs=7).n_epochs == 7
    report = validate_examples(many(60), "gpt-3.5-turbo", n_epochs=2)
    assert report.estimated_cost_usd == pytest.approx(report.billing_tokens_per_epoch * 2 * 8 / 1e6)
    assert tokens.default_epochs(10_000) == 2 and tokens.default_epochs(3) == 25


def test_unknown_price_gives_none() -> None:
    assert validate_examples(many(), "some-local-model").estimated_cost_usd is None


def test_validate_file_merges_read_problems(tmp_path: Path) -> None:
    import json

    path = tmp_path / "d.jsonl"
    lines = [json.dumps(e) for e in many(12)]
    lines.insert(4, "not json")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = validate_file(path, "gpt-3.5-turbo")
    assert [(p["line"], p["code"]) for p in report.errors] == [(5, "invalid_json")]
    assert report.n_examples == 12 and report.n_unparsed == 1
    assert report.to_json()["examples"] == 12


def test_random_junk_never_crashes() -> None:
    """Seeded fuzz: odd shapes anywhere in an example become problems, never exceptions."""
    import random

    from pipeline.dataset import editing as ed

    rng = random.Random(1)
    atoms = [None, True, 0, 1, 2, -1.5, "", " ", "user", "assistant", "system", "tool", "x" * 50, [], {}]
    keys = ["role", "content", "weight", "name", "tool_calls", "function_call", "messages", "extra"]

    def junk(depth: int = 0):
        r = rng.random()
        if depth > 3 or r < 0.4:
            return rng.choice(atoms)
        if r < 0.7:
            return [junk(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(keys): junk(depth + 1) for _ in range(rng.randint(0, 4))}

    examples = [junk() for _ in range(3000)]
    examples += [{"messages": [junk(1) for _ in range(3)]} for _ in range(3000)]
    report = validate_examples(examples, "gpt-3.5-turbo")
    assert len(report.example_problems) == len(examples) and report.errors
    rows = ed.build_rows(examples, [], report.example_problems)
    assert ed.apply_table(rows, examples, [])[0] == examples
