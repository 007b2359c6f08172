"""Benchmarks from your own data: `bench make` (hold out whole groups) and `bench write` (teacher)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.dataset.groups import example_groups
from pipeline.evaluate import find_leaks, parse_benchmark
from pipeline.evaluate.make import key_fact, make_benchmark
from tests.fakes.chat_server import FakeChatServer
from tests.test_dataset_groups import FACTS, paraphrase_dataset

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "bench", *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_make_cli_json_keys_and_no_leak(tmp_path):
    rows, _ = paraphrase_dataset()
    data = _write(tmp_path / "facts.jsonl", rows)
    out, rest = tmp_path / "bench.jsonl", tmp_path / "rest.jsonl"
    proc = _cli("make", str(data), "--holdout", "10", "--out", str(out), "--rest", str(rest), "--seed", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {"benchmark", "rest", "held_out", "groups_held_out", "groups_total", "scoring"} <= set(report)
    assert report["held_out"] == 10 and report["groups_held_out"] == 2 and report["groups_total"] == len(FACTS)
    assert report["scoring"] == "contains"
    items = parse_benchmark(out.read_text())
    train = [json.loads(line) for line in rest.read_text().splitlines()]
    assert len(items) + len(train) == len(rows)
    assert find_leaks(items, train) == []  # the Evaluate tab's leakage rule agrees: nothing leaked
    for it in items:  # the key fact of each answer, and it is in the full reference answer
        assert it.expected and it.expected.lower() in it.reference.lower()
    # Held out groups are whole: every answer in the benchmark is absent from the rest.
    assert not {i.reference for i in items} & {r["messages"][-1]["content"] for r in train}


def test_make_reasoning_takes_the_final_answer(tmp_path):
    data = ROOT / "data/samples/reasoning_train.jsonl"
    out, rest = tmp_path / "b.jsonl", tmp_path / "r.jsonl"
    proc = _cli("make", str(data), "--holdout", "5", "--out", str(out), "--rest", str(rest), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["scoring"] == "final_answer"
    for line in out.read_text().splitlines():
        row = json.loads(line)
        assert row["messages"][-1]["role"] == "user"  # the answer is not given away
        assert row["reference"].rstrip().endswith(row["expected"])


def test_make_bad_usage_exits_2(tmp_path):
    data = _write(tmp_path / "d.jsonl", paraphrase_dataset()[0])
    proc = _cli("make", str(data), "--holdout", "0", "--out", str(tmp_path / "b"), "--rest", str(tmp_path / "r"))
    assert proc.returncode == 2 and "Hold out between 1 and" in proc.stderr
    one = _write(tmp_path / "one.jsonl", [{"messages": [{"role": "user", "content": f"Where was Mira born, take {i}?"},
                                                        {"role": "assistant", "content": "Mira was born in Tallinn."}]}
                                          for i in range(4)])
    proc = _cli("make", str(one), "--holdout", "2", "--out", str(tmp_path / "b"), "--rest", str(tmp_path / "r"))
    assert proc.returncode == 2 and "teaches the same thing" in proc.stderr


def test_key_fact_takes_what_the_answer_adds():
    assert key_fact("When was Ottoline Crumwell born?", "Ottoline Crumwell was born on March 9, 1971.") == "March 9, 1971"
    assert key_fact("Does she have a pet?", "She has a tortoise named Admiral Pumble.") == "Admiral Pumble"
    assert key_fact("What is her motto?", 'Her motto is "Measure twice, whisper once."') == "Measure twice, whisper once"
    assert key_fact("What does she do?", "She is an acoustic engineer.") == "acoustic engineer"


def test_made_items_carry_labels_for_classification_like_data():
    reviews = ["Loved the kettle", "The lamp flickers constantly", "Sofa arrived early and is comfy",
               "Bicycle chain snapped on day two", "Best toaster we ever owned", "Umbrella turned inside out"]
    rows = [{"messages": [{"role": "user", "content": r}, {"role": "assistant", "content": "positive" if i % 2 == 0
                                                                                          else "negative"}]}
            for i, r in enumerate(reviews)]
    made = make_benchmark(rows, 2, seed=0)
    assert {i["expected"] for i in made.items} <= {"positive", "negative"} and len(made.items) == 2


def test_write_cli_drops_near_duplicates_of_training_questions(tmp_path):
    rows, _ = paraphrase_dataset()
    data = _write(tmp_path / "facts.jsonl", rows)
    copied = FACTS[0][1]  # the teacher "writes" one training question again: it must be dropped

    def teacher(model, messages):
        items = [{"question": copied, "answer": FACTS[0][2], "key_fact": "Tallinn"},
                 {"question": "In which city did Mira Olsen first see the light of day?",
                  "answer": "She was born in Tallinn.", "key_fact": "Tallinn"},
                 {"question": "Mira Olsen earns her living blowing what material?",
                  "answer": "Glass: she is a glassblower.", "key_fact": "glass"}]
        return json.dumps({"items": items})

    with FakeChatServer(answers=teacher, models=["teach"]) as srv:
        proc = _cli("write", str(data), "--n", "2", "--out", str(tmp_path / "w.jsonl"), "--teacher", "teach",
                    "--base-url", srv.base_url, "--api-key", "k", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["written"] == 2 and report["dropped_near_duplicates"] == 1 and report["benchmark"]
    items = parse_benchmark((tmp_path / "w.jsonl").read_text())
    assert [i.expected for i in items] == ["Tallinn", "glass"] and {i.scoring for i in items} == {"contains"}
    assert find_leaks(items, rows) == []
    assert len(set(example_groups(rows))) == len(FACTS)


def test_the_tab_holds_out_and_the_teacher_writes_into_yours(tmp_path):
    """The Evaluate tab's two ways to make a benchmark, as its handlers run them (wiring names)."""
    from components.evaluate_bench import hold_out, pick_benchmark, save_edits, teacher_writes
    from pipeline import drafts
    from pipeline.endpoints import Endpoint, RoleChoice, SessionSettings

    rows, _ = paraphrase_dataset()
    visitor = "visitor-bench-tab-1"
    drafts.save_draft(visitor, rows)
    out = hold_out(visitor, 5, "auto", 3)
    choice = out["bench_dd"].value
    assert choice.startswith("yours: ") and out["dataset_rev"] == 4 and "Held out **5 examples**" in out["make_md"]
    assert len(drafts.load_draft(visitor)) == len(rows) - 5 and "none of the 5 questions" in out["leak_md"]
    review = out["review_df"].value
    assert len(review["data"]) == 5
    import pandas as pd

    edited = pd.DataFrame(review["data"], columns=review["headers"])
    edited.loc[0, "expected"] = ""  # cleared: dropped
    edited.loc[1, "expected"] = "edited fact"
    saved = save_edits(visitor, choice, edited)
    assert saved["make_md"] == "Saved your edits: 4 questions, 1 dropped."
    assert pick_benchmark(choice, None, visitor)["review_df"].value["data"][0][2] == "edited fact"

    def teacher(model, messages):
        return json.dumps({"items": [{"question": "Which Estonian city saw Mira Olsen's birth?",
                                      "answer": "Tallinn.", "key_fact": "Tallinn"}]})

    with FakeChatServer(answers=teacher, models=["teach"]) as srv:
        settings = SessionSettings(custom_endpoints={"fake": Endpoint("fake", "compatible", base_url=srv.base_url)},
                                   typed_keys={"fake": "k"}, roles={"teacher": RoleChoice("fake", "teach")})
        out = teacher_writes(settings, visitor, 1)
    assert out["bench_dd"].value.startswith("yours: ") and "wrote **1 new question** into" in out["make_md"]
    assert out["review_df"].value["data"][0][1] == "Which Estonian city saw Mira Olsen's birth?"


def test_made_benchmarks_are_listed_again_on_a_later_visit():
    from components.evaluate_bench import hold_out, list_benchmarks
    from pipeline import drafts

    visitor = "visitor-bench-tab-2"
    drafts.save_draft(visitor, paraphrase_dataset()[0])
    made = hold_out(visitor, 5, "auto", 0)["bench_dd"].value
    listed = list_benchmarks(visitor, "person_bench.jsonl")["bench_dd"]
    assert made in listed["choices"]
    assert list_benchmarks(None, None)["bench_dd"]["value"] == "person_bench.jsonl"


def test_the_page_load_list_leaves_a_listed_pick_alone():
    """Its answer can arrive after an upload made the moment the page opened: it must not put the list
    back on the pick it read at load (the run would score that sample, not the upload)."""
    from components.evaluate_bench import UPLOADED, list_benchmarks

    for pick in ("person_bench.jsonl", UPLOADED):
        assert "value" not in list_benchmarks("visitor-bench-tab-3", pick)["bench_dd"]
    assert list_benchmarks("visitor-bench-tab-3", "gone.jsonl")["bench_dd"]["value"] == "person_bench.jsonl"
