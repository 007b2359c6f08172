"""Issue 18's speed targets on this machine, natively and as an AVX2-only CPU, in one command.

    DISTILL_MODEL_DIR=/tmp/distill-studio-models .venv/bin/python benchmarks/speed_targets.py [--kinds native,avx2] [--json OUT]

Runs the project's own benchmarks one after another, each in its own processes (let nothing else run
meanwhile: they time wall clocks), once per kind of CPU: "native" as the machine is, "avx2" with torch,
oneDNN and MKL capped to AVX2 (the three knobs below), which is how a CPU without AVX512 and native bf16
runs their kernels. For each kind it prints each figure against its target:
- fine-tune (`local_train.py --task person --recipes baseline,ours`): ours in at most half the wall time
  of a plain TRL SFTTrainer fp32 LoRA run, held-out within one question of it;
- decode (`local_decode.py --steps`, the engine's own thread choice): one stream >= 100 tokens/s, three
  streams together >= 150, with the share of greedy answers identical to an earlier decoder's;
- cold start (`cold_start.py`): the first page <= 5 s after launch, the first answer's text <= 15 s;
- the demo in Chromium (`demo_browser.py`): "Run all steps" to the scoreboard <= 90 s, and its result.
Then one table and, with --json, everything each benchmark reported. About 4-5 minutes per kind on a
2-core machine. Item 2 of the issue (the dtype each path takes on each kind) is the test suite's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine_facts import machine  # noqa: E402
from tests.cpu_support import AVX2_ONLY  # noqa: E402  (the tests' one spelling of an AVX2-only CPU)

BENCH = ROOT / "benchmarks"
KINDS = {"native": {}, "avx2": AVX2_ONLY}


def run(args: list[str], env: dict[str, str]) -> str:
    """A benchmark's stdout; its stderr is passed through, so its progress shows."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {proc.returncode}: {proc.stdout[-1500:]}")
    return proc.stdout


def last_json(stdout: str) -> dict:
    return json.loads(next(line for line in reversed(stdout.splitlines()) if line.startswith("{")))


def fine_tune(env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="distill-targets-") as tmp:
        out = Path(tmp) / "train.json"
        run([str(BENCH / "local_train.py"), "--task", "person", "--recipes", "baseline,ours", "--json", str(out)], env)
        row = json.loads(out.read_text())["rounds"][0]
    base, ours = row["baseline"], row["ours"]
    ratio = ours["wall_s"] / base["wall_s"]
    return {"figure": f"{ours['wall_s']:.0f} s vs TRL fp32 {base['wall_s']:.0f} s = {ratio:.2f}x; held-out "
                      f"{ours['correct']}/{ours['of']} vs {base['correct']}/{base['of']}",
            "met": ratio <= 0.5 and ours["correct"] >= base["correct"] - 1, "raw": row}


def decode(env: dict[str, str]) -> dict:
    result = last_json(run([str(BENCH / "local_decode.py"), "--steps", "--rounds", "2", "--json"], env))
    rates, greedy = result["tok_s_median"], result["greedy"]
    one, three = rates["new_autothr_1streams"], rates["new_autothr_3streams"]
    return {"figure": f"one stream {one} tok/s, three {three}; greedy identical {greedy['identical_answers']}/"
                      f"{greedy['prompts']} (top-1 agreement {greedy['top1_agreement']:.1%})",
            "met": one >= 100 and three >= 150, "raw": result}


def cold_start(env: dict[str, str]) -> dict:
    result = last_json(run([str(BENCH / "cold_start.py"), "--runs", "2", "--json"], env))
    median = result["median"]
    return {"figure": f"page {median.get('page_s', float('nan')):.1f} s, first answer text "
                      f"{median.get('first_text_s', float('nan')):.1f} s after launch (median of 2)",
            "met": bool(median["page_ok"] and median["first_text_ok"]), "raw": result}


def demo(env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="distill-targets-shots-") as shots:
        result = last_json(run([str(BENCH / "demo_browser.py"), "--out", shots], env))
    seconds = result["click_to_scoreboard_s"]
    board = dict(re.findall(r"(base|fine-tuned)\n[\d.]+\n[^\n]+\n(\d+/\d+)", result.get("scoreboard", "")))
    return {"figure": f"{seconds:.0f} s click -> scoreboard; base {board.get('base', '?')}, fine-tuned "
                      f"{board.get('fine-tuned', '?')}",
            "met": seconds <= 90 and "fine-tuned" in board, "raw": result}


TARGETS: dict[str, tuple[str, Callable[[dict[str, str]], dict]]] = {
    "fine-tune": ("<= 0.5x plain TRL fp32, held-out within 1", fine_tune),
    "decode": (">= 100 tok/s one stream, >= 150 three", decode),
    "cold start": ("page <= 5 s, first answer <= 15 s", cold_start),
    "demo": ("<= 90 s in Chromium", demo),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="native,avx2", help="which of: " + ", ".join(KINDS))
    parser.add_argument("--targets", default=",".join(TARGETS), help="which of: " + ", ".join(TARGETS))
    parser.add_argument("--json", type=Path, help="also write every benchmark's own result here")
    args = parser.parse_args()
    kinds, targets = args.kinds.split(","), args.targets.split(",")
    unknown = [k for k in kinds if k not in KINDS] + [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")
    report: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "results": {}}
    print(json.dumps(report["machine"]), flush=True)
    for kind in kinds:
        for target in targets:
            started = time.monotonic()
            try:
                outcome = TARGETS[target][1](KINDS[kind])
            except (RuntimeError, KeyError, StopIteration, ValueError) as exc:  # one benchmark failing: say so, go on
                outcome = {"figure": f"failed: {exc}"[:300], "met": False, "raw": None}
            outcome["seconds"] = round(time.monotonic() - started)
            outcome["load_average_after"] = os.getloadavg()
            report["results"].setdefault(kind, {})[target] = outcome
            print(f"{kind:7} {target:11} {'met' if outcome['met'] else 'NOT met':8} {outcome['figure']}", flush=True)
    print(f"\n{report['machine']['cpu']}, {report['machine']['nproc']} cores, {report['machine']['cpu_capability']}; "
          f"avx2 = {' '.join(f'{k}={v}' for k, v in AVX2_ONLY.items())}")
    print("| target | " + " | ".join(kinds) + " |\n|---|" + "---|" * len(kinds))
    for target in targets:
        cells = [f"{'met' if report['results'][k][target]['met'] else '**not met**'}: "
                 f"{report['results'][k][target]['figure']}" for k in kinds]
        print(f"| {target} ({TARGETS[target][0]}) | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0 if all(o["met"] for r in report["results"].values() for o in r.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
