"""What the Start tab's demo sends the page while its steps run (the steps are stand-ins: no model).

On a 2-core machine every update the page gets costs CPU the steps need (the browser redraws what it
is sent, the server serializes it), so a running step sends its log line and nothing else."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
import pytest

from components import start
from pipeline.demo import load_scenario
from pipeline.demo.context import DemoRun, Progress, StepResult
from pipeline.endpoints import SessionSettings
from pipeline.generate.templates import load_template

LINES = 3
#: What the Start tab reads from the results of the steps that fill its panes and scoreboard.
DETAILS = {"compare": {"question": "Where?", "expected": "Here", "panes": []}, "benchmark": {"results": []}}


def _stand_in(run: DemoRun, step: str, _settings: Any, _control: Any, _confirm: bool, say: Any) -> StepResult:
    for i in range(LINES):
        say(Progress(f"{step} {i + 1}/{LINES}"))
        time.sleep(0.05)  # not a timing check: lets the page's loop see the lines apart (or together)
    run.results[step] = result = StepResult(step, f"{step} done", 0.0, details=DETAILS.get(step, {}))
    return result


@pytest.fixture
def updates(monkeypatch) -> list[dict[str, Any]]:
    monkeypatch.setattr(start, "_run_one", _stand_in)
    return list(start.run_demo("person", "all", False, None, None, SessionSettings(), "visitor-updates-1", 0, []))


def test_a_running_step_sends_only_its_log(updates) -> None:
    steps = load_scenario("person").steps
    starts = [i for i, u in enumerate(updates) if set(u) == {"log_md", "steps_df"}]
    assert len(starts) == len(steps)  # each step starts by showing itself running in the table
    during = [u for a, b in zip(starts, [*starts[1:], len(updates)], strict=True) for u in updates[a + 1:b]
              if "run_state" not in u and "stop_btn" not in u]
    assert during, "the stand-in steps reported progress"
    assert all(set(u) == {"log_md"} for u in during), [sorted(u) for u in during if set(u) != {"log_md"}]
    assert any(f"{steps[-1]} {LINES}/{LINES}" in u["log_md"] for u in during)


def test_each_finished_step_redraws_the_table_and_results(updates) -> None:
    ended = [u for u in updates if "run_state" in u]
    assert len(ended) >= len(load_scenario("person").steps)
    assert all({"steps_df", "scoreboard_df", "pane_a_md", "totals_md"} <= set(u) for u in ended)
    assert "done" in ended[-1]["steps_df"].iloc[-1, 1]
    assert updates[-1]["stop_btn"]["interactive"] is False  # and the buttons come back



def test_the_augment_step_seeds_each_request_to_the_built_in_teacher(tiny_backend, monkeypatch) -> None:
    """Unseeded, the built-in teacher's replies differed from run to run, and with them how many failed
    and were asked again (0-2 per run, each another round of decoding: the step took 3-37 s). Each
    request now carries its own seed (the run's seed + its number); the engine samples it with its own
    generator, so the real model's rewordings and failures repeat (docs/bench/demo.md: 3 runs alike)."""
    from pipeline.demo import run_step
    from pipeline.local import routes_chat, runtime

    monkeypatch.setattr(runtime, "_handle", tiny_backend)
    seeds: list[int | None] = []
    budgets: set[int] = set()
    made = routes_chat.GenRequest

    def spy(*args: Any, **kwargs: Any) -> Any:
        request = made(*args, **kwargs)
        seeds.append(request.seed)
        budgets.add(request.max_tokens)
        return request

    monkeypatch.setattr(routes_chat, "GenRequest", spy)
    run = DemoRun("person", "visitor_augment_seed_01")
    run_step(run, "load", SessionSettings())
    run_step(run, "augment", SessionSettings())
    assert seeds and None not in seeds, seeds
    assert sorted(seeds) == list(range(len(seeds)))  # type: ignore[type-var]
    # A looping reply stops at the scenario's bound, not the template's 600 tokens (~10 s of decoding).
    assert budgets == {load_scenario("person").augment["max_tokens"]} != {load_template("paraphrase").max_tokens}


def test_the_dataset_tab_is_told_once_when_the_run_is_over(updates) -> None:
    """The load and augment steps change the draft; the Dataset tab's redraw (token counts, chart,
    table) ran while the next step did. The run now tells it once, at its end."""
    told = [i for i, u in enumerate(updates) if "dataset_rev" in u]
    assert told == [len(updates) - 1] and updates[-1]["dataset_rev"] == 1


def test_the_steps_table_shows_a_finished_demo_without_its_own_scrollbar() -> None:
    """At gradio's default 500 px the person demo's last step (the scoreboard's, with its time) was
    below the table's scroll edge in chromium."""
    import app

    built = app.build_app()
    steps = next(c["props"] for c in built.config["components"] if c["props"].get("elem_id") == "demo-steps")
    assert steps["max_height"] == start.STEPS_MAX_HEIGHT >= 1000


def test_opening_the_dataset_tab_redraws_only_a_changed_draft() -> None:
    """Mid-run, a visitor who opens the Dataset tab sees the rows as they are (the demo changed the
    draft without redrawing the tab); opening it again with nothing changed sends nothing."""
    import app
    from components.dataset_render import CHANGED_ELSEWHERE, render, show_draft_if_changed
    from pipeline import drafts

    built = app.build_app()
    tab = next(b._id for b in built.blocks.values() if getattr(b, "id", None) == "dataset")
    assert [fn.name for fn in built.fns.values() if (tab, "select") in fn.targets] == ["show_draft_if_changed"]
    # So is a revision bump from another tab (the demo's end bumps it, the tab redrew under a stale
    # "Loaded 2 examples from broken.jsonl" above the demo's 40 rows: seen in a CI run's screenshot).
    states = {b._id for b in built.blocks.values() if isinstance(b, gr.State)}
    on_rev = {fn.name for fn in built.fns.values() for target, event in fn.targets if target in states and event == "change"}
    assert "show_draft_if_changed" in on_rev and "show_draft" not in on_rev

    visitor, row = "visitor_dataset_look_1", {"messages": [{"role": "user", "content": "Hi?"},
                                                            {"role": "assistant", "content": "Hello."}]}
    drafts.replace_draft(visitor, [row] * 3)
    stamp = render(visitor, "gpt-4o-mini-2024-07-18", 0, None)["drawn_stamp"]
    assert list(show_draft_if_changed(visitor, stamp, 0, "gpt-4o-mini-2024-07-18", 0)) == [{}]
    drafts.append_to_draft(visitor, [row])  # what the augment step does
    shown = list(show_draft_if_changed(visitor, stamp, 0, "gpt-4o-mini-2024-07-18", 0))
    assert len(shown[-1]["table_df"]) == 4 and shown[-1]["drawn_stamp"] != stamp
    # The line about the tab's own last action ("Loaded 2 examples from a.jsonl") no longer stands above them.
    assert all(s["status_md"] == CHANGED_ELSEWHERE for s in shown)
