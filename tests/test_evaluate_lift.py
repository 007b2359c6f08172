"""The scoreboard proves (or not) the lift: few-shot contestant, intervals, McNemar comparisons, verdict
words, costs, runs kept and compared; the `eval` CLI's JSON keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.evaluate import Target, build_results, parse_benchmark, run_benchmark, verdict_changes
from pipeline.evaluate.chart import cost_chart
from pipeline.evaluate.costs import break_even, break_even_words, cost_gaps
from pipeline.evaluate.fewshot import pick_shots, with_shots
from pipeline.evaluate.stats import mcnemar_exact
from tests.fakes.chat_server import FakeChatServer

ROOT = Path(__file__).resolve().parent.parent
QA = [(f"What is the secret code of vault {name}?", f"{code}") for name, code in
      [("Alder", "K7"), ("Birch", "M2"), ("Cedar", "Q9"), ("Daphne", "R4"), ("Elm", "T1"), ("Fir", "W5"),
       ("Gorse", "X8"), ("Hazel", "Z3"), ("Ivy", "B6"), ("Juniper", "C2")]]
BENCH = "".join(json.dumps({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}],
                            "expected": a, "scoring": "contains"}) + "\n" for q, a in QA)
# Training data: other facts, plus one example that IS a benchmark question (must never be a shot).
TRAIN = [{"messages": [{"role": "user", "content": f"Which colour is the door of house {n}?"},
                       {"role": "assistant", "content": f"The door of house {n} is painted {c}."}]}
         for n, c in [("Oak", "red"), ("Pine", "blue"), ("Yew", "green"), ("Ash", "amber")]]
LEAKY = {"messages": [{"role": "user", "content": QA[0][0]}, {"role": "assistant", "content": "It is K7."}]}


def answers(model: str, messages: list[dict]) -> str:
    q = messages[-1]["content"]
    i = next(k for k, (qq, _) in enumerate(QA) if qq == q)
    shots = sum(m["role"] == "user" for m in messages) - 1
    if model.startswith("ft:"):
        right = True
    elif shots:
        right = i < 5  # the few-shot prompt helps on half
    else:
        right = i == 0  # the base model knows one
    return f"The code is {QA[i][1]}." if right else "I do not know."


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "eval", *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)


def test_eval_cli_few_shot_intervals_comparisons_and_words(tmp_path):
    bench = tmp_path / "vaults.jsonl"
    bench.write_text(BENCH)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in [LEAKY, *TRAIN]))
    with FakeChatServer(answers=answers, models=["small", "ft:small:me:v1"]) as srv:
        proc = _cli(str(bench), "--model", "small", "--model", "ft:small:me:v1", "--few-shot", "small",
                    "--shots", "2", "--few-shot-from", str(train), "--base-url", srv.base_url, "--api-key", "k",
                    "--json")
        sent = list(srv.requests)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    labels = [r["label"] for r in out["results"]]
    assert labels == ["small", "ft:small:me:v1", "small + 2-shot"]
    for r in out["results"]:
        assert {"ci95", "cost_per_100_usd", "label"} <= set(r)
        lo, hi = r["ci95"]
        assert 0 <= lo <= r["accuracy"] <= hi <= 1
    board = {r["label"]: r["correct"] for r in out["results"]}
    assert board == {"small": 1, "ft:small:me:v1": 10, "small + 2-shot": 5}
    cmps = {(c["a"], c["b"]): c for c in out["comparisons"]}
    assert set(cmps) == {("small", "ft:small:me:v1"), ("small", "small + 2-shot"), ("ft:small:me:v1", "small + 2-shot")}
    c = cmps[("small", "ft:small:me:v1")]
    assert set(c) == {"a", "b", "a_only", "b_only", "p_value"}
    assert (c["a_only"], c["b_only"]) == (0, 9) and c["p_value"] == round(mcnemar_exact(0, 9), 6)
    c = cmps[("ft:small:me:v1", "small + 2-shot")]
    assert (c["a_only"], c["b_only"]) == (5, 0) and c["p_value"] == 0.0625
    words = " ".join(out["verdicts"])
    assert "ft:small:me:v1 beats small at 95%" in words.replace("**", "")
    assert "Cannot tell ft:small:me:v1 from small + 2-shot yet" in words.replace("**", "")
    assert "more like these" in words
    # The shots: two training examples before each question, never the one that leaks a benchmark answer.
    few = [b for b in sent if sum(m["role"] == "user" for m in b["messages"]) > 1]
    assert len(few) == 10
    for body in few:
        assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
        shown = [m["content"] for m in body["messages"][1:-1]]
        assert QA[0][0] not in shown and "It is K7." not in shown
    assert len({json.dumps(b["messages"][1:-1]) for b in few}) == 1  # chosen once per run
    plain = _cli(str(bench), "--model", "small", "--base-url", "http://127.0.0.1:9/v1", "--api-key", "k",
                 "--few-shot", "small")
    assert plain.returncode == 2 and "--few-shot-from" in plain.stderr


def test_shots_come_from_other_groups_and_go_after_the_system_prompt():
    items = parse_benchmark(BENCH)
    shots = pick_shots([LEAKY, *TRAIN], items, 3, seed=1)
    assert len(shots) == 6 and LEAKY["messages"][0]["content"] not in [m["content"] for m in shots]
    assert pick_shots([LEAKY, *TRAIN], items, 3, seed=1) == shots
    msgs = with_shots([{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], shots[:2])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]


def test_local_models_show_openai_equivalent_cost_and_break_even():
    items = parse_benchmark(BENCH)
    with FakeChatServer(answers=answers) as srv:
        client = srv.client()
        results = run_benchmark("v", items, [
            Target("ft:HuggingFaceTB/SmolLM2-135M-Instruct:local:x:1", client, label="tuned", role="fine_tuned"),
            Target("gpt-4.1", client, label="teacher", role="teacher")], max_tokens=16)
    tuned, teacher = results["results"]
    assert tuned["cost_per_100_usd"] == 0.0 and tuned["equivalent_cost_per_100_usd"] > 0
    assert tuned["equivalent_model"].startswith("ft:gpt-4o-mini")
    assert teacher["equivalent_cost_per_100_usd"] is None and teacher["cost_per_100_usd"] > 0
    be = break_even(tuned, teacher, 0.05)
    per_t, per_f = teacher["cost_per_100_usd"] / 100, tuned["equivalent_cost_per_100_usd"] / 100
    assert be["questions"] == -(-0.05 // (per_t - per_f))
    assert "after" in break_even_words(be) and break_even(tuned, teacher, None) is None
    assert break_even({**tuned, "equivalent_cost_per_100_usd": 99.0}, teacher, 1.0)["questions"] is None


def test_the_cost_panel_says_which_models_have_no_price():
    items = parse_benchmark(BENCH)
    with FakeChatServer(answers=answers, models=["my-own-model", "error-x"]) as srv:
        client = srv.client()
        results = run_benchmark("v", items, [
            Target("my-own-model", client, label="tuned", role="fine_tuned"),
            Target("gpt-4.1", client, label="teacher", role="teacher")], max_tokens=16)
    gaps = cost_gaps(results)
    assert gaps == ["no prices known for my-own-model: cost not shown"]
    panel = [a.text for a in cost_chart(results).layout.annotations if a.xref == "x domain"]
    assert panel == ["no prices known for my-own-model: cost not shown"]  # not a blank panel
    tuned, teacher = results["results"]
    assert break_even(tuned, teacher, 0.05) is None
    assert "no prices known for my-own-model" in break_even_words(None, gaps)
    # A priced model that gave no answer is not "unpriced": the panel says it has nothing to price.
    failed = {**teacher, "cost_per_100_usd": None, "answered": 0}
    assert cost_gaps({"results": [failed]}) == ["teacher: no answers to price, cost not shown"]


def test_runs_record_hash_and_settings_and_show_verdict_changes():
    items = parse_benchmark(BENCH)
    with FakeChatServer(answers=answers) as srv:
        client = srv.client()
        old = run_benchmark("v", items, [Target("small", client, label="m")], max_tokens=16)
        new = run_benchmark("renamed", items, [Target("ft:small:x", client, label="m")], max_tokens=16)
    assert old["benchmark_sha256"] == new["benchmark_sha256"] and old["settings"]["max_tokens"] == 16
    changes = verdict_changes(old, new)
    assert len(changes) == 9 and {(c["before"], c["after"]) for c in changes} == {("✗", "✓")}
    edited = parse_benchmark(BENCH.replace('"K7"', '"K8"'))
    assert build_results("v", edited, [], [])["benchmark_sha256"] != old["benchmark_sha256"]


def test_the_card_carries_the_latest_scoreboard_with_intervals_and_verdicts():
    from pipeline.evaluate import save_results
    from pipeline.hub.card import build_card
    from pipeline.hub.provenance import card_info_for

    items = parse_benchmark(BENCH)
    with FakeChatServer(answers=answers) as srv:
        client = srv.client()
        results = run_benchmark("vaults.jsonl", items, [Target("small", client, role="base"),
                                                        Target("ft:small:x", client, role="fine_tuned")], max_tokens=16)
    visitor = "visitor-lift-card-1"
    save_results(visitor, results)
    info = card_info_for(visitor, {"train": TRAIN})
    card = str(build_card(repo_id="me/vaults", splits={"train": len(TRAIN)}, **info))
    assert "| small | vaults.jsonl | 10.0% | 2%–40% | 10 |" in card
    assert "| ft:small:x | vaults.jsonl | 100.0% | 72%–100% | 10 |" in card
    assert "ft:small:x beats small at 95% confidence" in card.replace("**", "") and "McNemar" in card


def test_the_tab_compares_two_saved_runs():
    from components.evaluate_run import compare_runs
    from pipeline.evaluate import list_runs, save_results

    items = parse_benchmark(BENCH)
    visitor = "visitor-lift-compare-1"
    with FakeChatServer(answers=answers) as srv:
        client = srv.client()
        save_results(visitor, run_benchmark("v.jsonl", items, [Target("small", client, label="m")], max_tokens=16))
        save_results(visitor, run_benchmark("v.jsonl", items, [Target("ft:s", client, label="m")], max_tokens=16))
    runs = list_runs(visitor, build_results("v", items, [], [])["benchmark_sha256"])
    assert len(runs) == 2
    out = compare_runs(visitor, runs[0]["name"], runs[1]["name"])
    assert out["compare_md"].startswith("9 verdicts changed")
    assert out["changes_df"].visible and len(out["changes_df"].value["data"]) == 9
