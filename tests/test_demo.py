"""The guided demo's steps against the embedded backend (tiny random model: plumbing, not quality)."""

from __future__ import annotations

import pytest

from pipeline import drafts
from pipeline.demo import DemoRun, add_to_log, list_scenarios, load_scenario, run_step
from pipeline.demo.context import Progress, restore_draft
from pipeline.endpoints import SessionSettings
from pipeline.errors import InputError
from pipeline.local import runtime


@pytest.fixture
def local(tiny_backend, monkeypatch):
    monkeypatch.setattr(runtime, "_handle", tiny_backend)
    return tiny_backend


def test_scenarios_name_existing_files_and_known_steps() -> None:
    names = {s.name for s in list_scenarios()}
    assert {"person", "reasoning"} <= names
    for s in list_scenarios():
        assert s.sample.exists() and s.benchmark.exists()
        assert s.steps[0] == "load" and "finetune" in s.steps and s.steps[-1] == "benchmark"
    with pytest.raises(InputError):
        load_scenario("nope")


def test_load_keeps_the_previous_draft_and_undo_restores_it() -> None:
    visitor = "visitor_demo_undo_01"
    drafts.save_draft(visitor, [{"messages": [{"role": "user", "content": "mine"},
                                              {"role": "assistant", "content": "kept"}]}])
    run = DemoRun("person", visitor)
    result = run_step(run, "load", SessionSettings())
    assert "53 examples" in result.summary and result.cost_usd == 0.0
    assert len(drafts.load_draft(visitor)) == 53
    assert restore_draft(run) == 1
    assert drafts.load_draft(visitor)[0]["messages"][0]["content"] == "mine"


def test_the_previous_tables_unreadable_lines_leave_with_it_and_come_back_with_undo() -> None:
    """A broken file's `raw` row stayed in the table after the demo loaded its sample (and was not in
    the table Undo brought back): seen in a CI run's screenshot, "40 examples + 1 unreadable row"."""
    from pipeline.dataset import draft_ops
    from pipeline.dataset.readers import read_dataset

    visitor = "visitor_demo_undo_raw_01"
    broken = drafts.draft_path(visitor).parent / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                      '{"messages": [oops\n', encoding="utf-8")
    draft_ops.import_read(visitor, read_dataset(broken), append=False, label="broken.jsonl")
    assert [u.raw for u in draft_ops.load_unparsed(visitor)] == ['{"messages": [oops']

    run = DemoRun("person", visitor)
    run_step(run, "load", SessionSettings())
    assert len(drafts.load_draft(visitor)) == 53 and draft_ops.load_unparsed(visitor) == []
    assert restore_draft(run) == 1
    assert [u.raw for u in draft_ops.load_unparsed(visitor)] == ['{"messages": [oops']

    # A table that held only unreadable lines is a table too: kept, and brought back.
    draft_ops.save_all(visitor, [], draft_ops.load_unparsed(visitor))
    run = DemoRun("person", visitor)
    assert "Undo load" in run_step(run, "load", SessionSettings()).summary
    assert restore_draft(run) == 0 and len(draft_ops.load_unparsed(visitor)) == 1


def test_steps_before_their_inputs_say_what_to_do(local) -> None:
    run = DemoRun("person", "visitor_demo_order_01")
    with pytest.raises(InputError, match="Load the sample data"):
        run_step(run, "finetune", SessionSettings())
    with pytest.raises(InputError, match="no step"):
        run_step(DemoRun("reasoning", "visitor_demo_order_01"), "augment", SessionSettings())


def test_reasoning_scenario_end_to_end_on_the_local_backend(local, monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_DEMO_MAX_TOKENS", "12")  # random weights never stop on their own
    settings, visitor = SessionSettings(), "visitor_demo_e2e_001"
    run = DemoRun("reasoning", visitor)
    said: list[str] = []
    for step in load_scenario("reasoning").steps:
        run_step(run, step, settings, say=said.append)
    assert run.fine_tuned_model and run.fine_tuned_model.startswith("ft:")
    tune = run.results["finetune"]
    assert tune.cost_usd == 0.0 and tune.equivalent_usd and tune.equivalent_usd > 0
    assert tune.details["metrics"], "the loss curve has points"
    panes = run.results["compare"].details["panes"]
    assert [p["label"] for p in panes] == ["base", "fine-tuned", "teacher"]
    assert all(p["status"] == "done" for p in panes)
    held = run.results["holdout"].details["held_out"]
    assert held == 10 and len(drafts.load_draft(visitor)) == 40  # the benchmark left the training data
    board = run.results["benchmark"].details["results"]
    assert [r["label"] for r in board] == ["base", "fine-tuned"]
    assert all(r["total"] == held and r["answered"] == held and len(r["ci95"]) == 2 for r in board)
    summary = run.results["benchmark"].summary
    assert "95% interval" in summary and "held out of this demo's own data" in summary
    assert "p = " in summary or "p < " in summary
    assert any("Step" in line or "step" in line for line in said)
    log: list[str] = []
    for line in said:
        add_to_log(log, line)
    scored = [line for line in log if "answers scored" in line]
    assert scored == ["20/20 answers scored"], log  # one live line, ending at the final count


def test_person_keeps_its_shipped_benchmark_and_says_why() -> None:
    from pipeline.demo.actions import about_benchmark

    person = load_scenario("person")
    assert "holdout" not in person.steps and "shipped" in person.benchmark_note
    said = about_benchmark("person_bench.jsonl", held_out=False, note=person.benchmark_note)
    assert said == person.benchmark_note and said.count("The benchmark") == 1  # once, not "The benchmark: The benchmark is"
    reasoning = load_scenario("reasoning")
    assert reasoning.steps.index("holdout") < reasoning.steps.index("finetune") and reasoning.holdout == 10


def test_a_progress_line_replaces_the_one_before_it_only() -> None:
    log: list[str] = []
    for line in ("**Fine-tune**", Progress("epoch 1/3"), Progress("epoch 2/3"), "Fine-tuned: ft:x",
                 "**Score**", Progress("5/52 answers scored"), Progress("52/52 answers scored")):
        add_to_log(log, line)
    assert log == ["**Fine-tune**", "epoch 2/3", "Fine-tuned: ft:x", "**Score**", "52/52 answers scored"]


def test_the_local_backend_gets_a_whole_step_at_once_a_provider_a_few() -> None:
    """The one rule both the augment and the benchmark step send with (their engine-side effect:
    tests/test_demo_speed.py): a provider's rate limits cap it, the local engine batches them all."""
    from pipeline.demo.actions import PROVIDER_CONCURRENCY, step_concurrency

    assert step_concurrency(True, 36) == 36
    assert step_concurrency(False, 36) == PROVIDER_CONCURRENCY < 36
