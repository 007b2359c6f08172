"""benchmarks/speed_targets.py judges each speed target from its benchmark's own output (canned here: the
benchmarks themselves take minutes and their figures are the machine's, never a test's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import speed_targets

SCOREBOARD = ("Scoreboard (held-out questions)\n\nmodel\n\t\naccuracy %\n\t\n95% interval\n\t\ncorrect\n\n\n"
              "base\n0\n0–18%\n0/18\nfine-tuned\n72.2\n49–88%\n13/18")


def _outputs(demo_s: float, one_stream: float, base_correct: int, ours_correct: int) -> dict[str, object]:
    train = {"rounds": [{"baseline": {"wall_s": 100.0, "correct": base_correct, "of": 18},
                         "ours": {"wall_s": 45.0, "correct": ours_correct, "of": 18}}]}
    return {
        "local_train.py": train,
        "local_decode.py": "progress\n" + json.dumps({
            "tok_s_median": {"new_autothr_1streams": one_stream, "new_autothr_3streams": 160.0},
            "greedy": {"identical_answers": 9, "prompts": 12, "top1_agreement": 0.991}}),
        "cold_start.py": json.dumps({"median": {"page_s": 2.0, "first_text_s": 8.0, "page_ok": True,
                                                "first_text_ok": True}}),
        "demo_browser.py": "screenshots in /tmp/x\n" + json.dumps({"click_to_scoreboard_s": demo_s,
                                                                   "scoreboard": SCOREBOARD}),
    }


@pytest.fixture
def benchmarks(monkeypatch):
    """Replaces running a benchmark by its canned output (local_train.py writes its --json file)."""
    canned: dict[str, object] = {}

    def run(args: list[str], env: dict[str, str]) -> str:
        output = canned[Path(args[0]).name]
        if isinstance(output, dict):
            Path(args[args.index("--json") + 1]).write_text(json.dumps(output))
            return ""
        return str(output)

    monkeypatch.setattr(speed_targets, "run", run)
    return canned


def test_met_targets_are_reported_with_their_figures(benchmarks) -> None:
    benchmarks.update(_outputs(demo_s=61.0, one_stream=120.0, base_correct=17, ours_correct=16))
    train = speed_targets.fine_tune({})
    assert train["met"] and "0.45x" in train["figure"] and "16/18 vs 17/18" in train["figure"]
    assert speed_targets.decode({})["met"]
    assert speed_targets.cold_start({})["met"]
    demo = speed_targets.demo({})
    assert demo["met"] and demo["figure"] == "61 s click -> scoreboard; base 0/18, fine-tuned 13/18"


def test_a_target_missed_by_a_little_is_not_met(benchmarks) -> None:
    benchmarks.update(_outputs(demo_s=91.0, one_stream=99.0, base_correct=17, ours_correct=15))
    assert not speed_targets.fine_tune({})["met"]  # two questions fewer than plain TRL
    assert not speed_targets.decode({})["met"]
    assert not speed_targets.demo({})["met"]


def test_a_benchmark_that_fails_is_reported_and_the_others_still_run(benchmarks, monkeypatch, capsys, tmp_path) -> None:
    benchmarks.update(_outputs(demo_s=61.0, one_stream=120.0, base_correct=17, ours_correct=17))
    del benchmarks["cold_start.py"]

    def fails(env: dict[str, str]) -> dict:
        raise RuntimeError("cold_start.py exited with 1")

    monkeypatch.setitem(speed_targets.TARGETS, "cold start", ("page <= 5 s", fails))
    monkeypatch.setattr("sys.argv", ["speed_targets.py", "--kinds", "native", "--json", str(tmp_path / "r.json")])
    assert speed_targets.main() == 1  # not every target met
    out = capsys.readouterr().out
    assert "NOT met  failed: cold_start.py exited with 1" in out and "| demo (<= 90 s in Chromium) | met: 61 s" in out
    assert json.loads((tmp_path / "r.json").read_text())["results"]["native"]["demo"]["met"] is True
