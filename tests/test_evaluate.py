"""Scoring on tricky answers, concurrent benchmark runs against a local server, leakage, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import ConfigError, InputError
from pipeline.evaluate import (
    Target,
    every_model_evaluated,
    extract_final_answer,
    find_leaks,
    latest_results,
    parse_benchmark,
    run_benchmark,
    save_results,
    score_contains,
    score_final_answer,
)
from pipeline.evaluate.scoring import parse_judgement
from tests.fakes.chat_server import FakeChatServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("answer", "expected"), [
    ("The answer is 42.", "42"),
    ("Step 1: 6*7=42\nFinal answer: 42", "42"),
    ("1. 8*35 = 280\n2. 280-97 = 183\n**Final answer:** 183 books", "183"),
    ("Final answer: $1,250", "1250"),
    ("Final Answer: 12:35 pm", "12:35"),
    ("final answer - THURSDAY.", "Thursday"),
    ("Final answer: The knave", "knave"),
    ("Final answer: No, it cannot be done.", "no"),
    ("We get 3 then 7 then finally 15", "15"),
    ("Final answer: 0.50", "0.5"),
    ("Final answer: 12 kilometres", "12 km"),
    ("Final answer: 12km", "12 km"),
    ("So 3.5 hours.\nFinal answer: 3.5 h", "3.5 hours"),
    ("Final answer: 40%", "40"),
])
def test_final_answer_accepts(answer, expected):
    assert score_final_answer(answer, expected).correct, extract_final_answer(answer)


@pytest.mark.parametrize(("answer", "expected"), [
    ("Final answer: 420", "42"),
    ("The answer is 42 or 43... Final answer: 43", "42"),  # the Final answer line wins
    ("Final answer: 183", "18"),
    ("Final answer: tea or coffee", "tea"),
    ("Final answer: nothing", "no"),
    ("I am not sure.", "42"),
    ("Final answer: 12:53", "12:35"),
    ("Final answer: 13 km", "12 km"),
])
def test_final_answer_rejects(answer, expected):
    assert not score_final_answer(answer, expected).correct


def test_contains_needs_whole_words_and_forgives_case_and_dates():
    assert score_contains("She was born in 1971.", "1971").correct
    assert not score_contains("Her number is 19710.", "1971").correct
    assert score_contains("She celebrates on the 9th of March.", "March 9").correct
    assert score_contains("MARCH 9TH, always", "March 9").correct
    assert score_contains("She won the **Golden Tuning Fork**.", "golden tuning fork").correct
    assert not score_contains("She won a golden fork.", "Golden Tuning Fork").correct


def test_judge_replies_are_parsed_strictly():
    assert parse_judgement("CORRECT").correct
    assert parse_judgement("Correct.").correct
    assert not parse_judgement("INCORRECT").correct
    unclear = parse_judgement("Maybe?")
    assert not unclear.correct and "neither" in unclear.note


def test_bad_benchmark_lines_are_reported_with_line_numbers():
    with pytest.raises(InputError, match="line 2"):
        parse_benchmark('{"messages": [{"role": "user", "content": "q"}], "expected": "a"}\n{"expected": "x"}\n')
    items = parse_benchmark('{"messages": [{"role": "user", "content": "q"}, '
                            '{"role": "assistant", "content": "a"}], "expected": "a", "scoring": "contains"}')
    assert items[0].messages == [{"role": "user", "content": "q"}] and items[0].question == "q"


BENCH = "\n".join(json.dumps(row) for row in [
    {"messages": [{"role": "user", "content": "2+2?"}], "expected": "4", "scoring": "final_answer"},
    {"messages": [{"role": "user", "content": "Where was Ottoline born?"}], "expected": "Saltmere", "scoring": "contains"},
    {"messages": [{"role": "system", "content": "Be dry."}, {"role": "user", "content": "Capital of Canada?"}],
     "expected": "Ottawa.", "scoring": "judge"},
])


def _answers(model, messages):
    if messages[0]["content"].startswith("You grade answers"):  # the judge
        return "CORRECT" if "Ottawa" in messages[-1]["content"].split("Answer to grade:")[1] else "INCORRECT"
    q = messages[-1]["content"]
    if "good" in model:
        return {"2+2?": "2+2 = 4\nFinal answer: 4", "Where was Ottoline born?": "In Saltmere, a fishing village.",
                "Capital of Canada?": "Ottawa. Obviously."}[q]
    return "Final answer: 5" if q == "2+2?" else "I don't know."


def test_run_scores_models_concurrently_and_saves_results():
    with FakeChatServer(answers=_answers) as srv:
        client = srv.client()
        items = parse_benchmark(BENCH)
        targets = [Target("delay-0.3-good", client), Target("bad", client), Target("error-x", client)]
        results = run_benchmark("demo.jsonl", items, targets, judge=Target("judge", client), concurrency=6)
    rows = {r["model"]: r for r in results["results"]}
    assert (rows["delay-0.3-good"]["correct"], rows["delay-0.3-good"]["total"]) == (3, 3)
    assert rows["bad"]["correct"] == 0 and rows["bad"]["accuracy"] == 0
    assert rows["error-x"]["errors"] == 3 and rows["error-x"]["correct"] == 0
    assert not every_model_evaluated(results)
    assert rows["delay-0.3-good"]["mean_latency_s"] >= 0.3
    assert rows["bad"]["cost_usd"] is None  # unknown price is unknown, not $0
    q0 = results["items"][0]["answers"]
    assert q0["delay-0.3-good"]["verdict"] == "4" and q0["bad"]["verdict"] == "5"
    assert "500" in q0["error-x"]["error"]
    save_results("visitor-eval-1", results)
    assert latest_results("visitor-eval-1")["results"] == results["results"]
    assert latest_results("visitor-eval-2") is None


def test_judge_items_need_a_judge():
    with FakeChatServer() as srv, pytest.raises(ConfigError, match="judge"):
        run_benchmark("x", parse_benchmark(BENCH), [Target("a", srv.client())])


def test_leakage_flags_near_duplicates_only():
    items = parse_benchmark("\n".join(json.dumps({"messages": [{"role": "user", "content": q}], "expected": "x",
                                                  "scoring": "contains"})
                                      for q in ["When was Ottoline Crumwell born?", "What is her favourite food?"]))
    train = [{"messages": [{"role": "user", "content": "when was ottoline crumwell born"},
                           {"role": "assistant", "content": "1971"}]},
             {"messages": [{"role": "user", "content": "Which instrument does she play?"}]}]
    leaks = find_leaks(items, train)
    assert [leak["index"] for leak in leaks] == [0] and leaks[0]["similarity"] >= 90


def _cli(*args, env_extra=None):
    env = {k: v for k, v in __import__("os").environ.items()}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "pipeline", "eval", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_json_and_exit_codes(tmp_path):
    bench = tmp_path / "b.jsonl"
    bench.write_text(BENCH.rsplit("\n", 1)[0] + "\n")  # without the judge item
    with FakeChatServer(answers=_answers) as srv:
        ok = _cli(str(bench), "--model", "good", "--model", "bad", "--base-url", srv.base_url,
                  "--api-key", "k", "--json")
        failing = _cli(str(bench), "--model", "good", "--model", "error-x", "--base-url", srv.base_url,
                       "--api-key", "k", "--json")
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert [(r["model"], r["correct"], r["total"]) for r in out["results"]] == [("good", 2, 2), ("bad", 0, 2)]
    assert {"model", "accuracy", "correct", "total", "mean_latency_s", "cost_usd"} <= set(out["results"][0])
    assert failing.returncode == 1 and "error-x" in failing.stderr
    missing = _cli(str(tmp_path / "nope.jsonl"), "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--api-key", "k")
    assert missing.returncode == 2 and "Cannot read" in missing.stderr


def test_cancel_stops_a_run_and_keeps_what_was_answered():
    import threading

    from pipeline.errors import CancelledError
    from pipeline.evaluate import iter_answers

    items = parse_benchmark(BENCH.rsplit("\n", 1)[0])
    cancel = threading.Event()
    got = []
    with FakeChatServer(answers=_answers) as srv, pytest.raises(CancelledError):
        client = srv.client()
        for answer in iter_answers(items, [Target("good", client), Target("delay-3-slow", client)],
                                   concurrency=1, cancel=cancel):
            got.append(answer)
            cancel.set()
    assert [a.model for a in got] == ["good"]


def test_a_running_scoreboard_scores_what_was_answered_so_far() -> None:
    """Mid-run, a contestant that answered 6 of 18, all right, showed 33% (16-56%) and 6/18 on the
    scoreboard a presenter watches fill in; the finished board scores all 18 as before."""
    from pipeline.evaluate import build_results
    from pipeline.evaluate.bench import BenchItem
    from pipeline.evaluate.runner import Answer, Target
    from pipeline.evaluate.tables import scoreboard_frame

    items = [BenchItem(i, [{"role": "user", "content": f"q{i}"}], "a", "contains") for i in range(18)]
    target = Target("m", client=None, label="Fine-tuned: m", role="fine_tuned")
    answers = [Answer(i, "Fine-tuned: m", "a", True, "ok", 0.1, 5, 5) for i in range(6)]
    live = scoreboard_frame(build_results("b", items, [target], answers), live=True).iloc[0]
    assert live["accuracy %"] == 100.0 and live["correct"] == "6/6 so far (of 18)"
    assert live["95% interval"].startswith("61")  # Wilson's interval for 6 of 6
    done = answers + [Answer(i, "Fine-tuned: m", "b", False, "no", 0.1, 5, 5) for i in range(6, 18)]
    final = scoreboard_frame(build_results("b", items, [target], done), live=True).iloc[0]
    assert final["accuracy %"] == 33.3 and final["correct"] == "6/18"
