"""Dataset tab: what a cell edit and a running generation cost on a 5,000-example draft, before and after.

    .venv/bin/python benchmarks/dataset_edits.py [--baseline REV] [--rows 5000] [--edits 100] [--generate 500]

Both sides run in this one invocation, one after the other, on the same machine state: the baseline is
the code at REV (default: main just before the Dataset tab cached its work), extracted with
`git archive` into a temporary folder; the current side is this working tree. Each side runs in its
own process against a fresh workspace and calls the tab's own handlers the way gradio does (one
session: the same per-session state between calls):

- a draft of `--rows` examples (the reasoning sample, each question made unique) is loaded and drawn;
- `--edits` cell edits, each in a random shown row (seeded), each answered by `save_edits`; the time
  is the handler's, and separately gradio's conversion of the returned table for the page;
- a generation of `--generate` examples arriving in batches of 10 every 0.5 s (simulated clock): the
  baseline redraws the Dataset tab for every batch (dataset_rev bumped each time), the current code at
  most once a second (components.generate_run.Throttle) and once at the end. Reported: redraws, time
  per redraw, and redraw time per second of generation.

Prints one JSON object (sides, medians, ratios, machine facts); the figures go to docs/bench/dataset.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: main just before the Dataset tab cached its work (its tab re-read, re-tokenized and re-checked the
#: whole draft on every edit and every generation batch).
BASELINE = "6b0ba7cd825573e1d863dac15a6b84c97d2cdfd1"
MODEL = "gpt-4o-mini-2024-07-18"
VISITOR = "bench_dataset_edits_01"


def _examples(n: int) -> list[dict]:
    sample = [json.loads(line) for line in (ROOT / "data/samples/reasoning_train.jsonl").read_text().splitlines()
              if line.strip()]
    out = []
    for i in range(n):
        msgs = [dict(m, content=f"{m['content']} (variant {i})") if m["role"] == "user" else m
                for m in sample[i % len(sample)]["messages"]]
        out.append({"messages": msgs})
    return out


def side(rows: int, edits: int, generate: int, seed: int) -> dict:
    """One side, run inside the process whose sys.path holds that side's code."""
    import gradio as gr

    from components import dataset as tab
    from pipeline import drafts
    from pipeline.dataset import editing

    params = inspect.signature(tab.save_edits).parameters
    session: list = []
    if "draft_cache" in params:  # the current code keeps its per-example work in the session's state
        from pipeline.dataset.draft_view import DraftCache

        session.append(DraftCache())

    def as_rows(table) -> list[list]:
        return table.values.tolist() if hasattr(table, "values") else [list(r) for r in table]

    widget = gr.Dataframe(headers=editing.HEADERS, type="array", interactive=True, wrap=True)
    drafts.save_draft(VISITOR, _examples(rows))
    started = time.perf_counter()
    shown = tab.validate_dataset(VISITOR, MODEL, 0, *session)
    first = time.perf_counter() - started
    table, rendered = as_rows(shown["table_df"]), shown["rendered"]

    rng = random.Random(seed)
    handler, convert = [], []
    for k in range(edits):
        row = rng.randrange(len(table))
        table[row][3] = f"{table[row][3]} (edit {k})"
        t0 = time.perf_counter()
        out = tab.save_edits(table, rendered, VISITOR, MODEL, 0, *session)
        t1 = time.perf_counter()
        widget.postprocess(out["table_df"])
        t2 = time.perf_counter()
        handler.append(t1 - t0)
        convert.append(t2 - t1)
        table, rendered = as_rows(out["table_df"]), out["rendered"]
    assert len(drafts.load_draft(VISITOR)) == rows

    # A generation: batches of 10 every 0.5 s of simulated time, appended as the Generate tab does.
    throttle = None
    if "draft_cache" in params:
        from components.generate_run import Throttle

        clock = [0.0]
        throttle = Throttle(1.0, clock=lambda: clock[0])
    extra = _examples(rows + generate)[rows:]
    redraws, rev = [], 0
    for b in range(0, generate, 10):
        drafts.append_to_draft(VISITOR, extra[b:b + 10])
        if throttle is not None:
            clock[0] = (b // 10) * 0.5
            throttle.pending()
            if not throttle.due():
                continue
        rev += 1
        t0 = time.perf_counter()
        tab.show_draft(VISITOR, rev, MODEL, 0, *session)
        redraws.append(time.perf_counter() - t0)
    if throttle is not None and throttle.flush():
        t0 = time.perf_counter()
        tab.show_draft(VISITOR, rev + 1, MODEL, 0, *session)
        redraws.append(time.perf_counter() - t0)
    assert len(drafts.load_draft(VISITOR)) == rows + generate
    generation_s = generate / 10 * 0.5
    return {"first_draw_s": round(first, 3),
            "edit_ms": [round(x * 1000, 1) for x in handler], "table_conversion_ms": [round(x * 1000, 1) for x in convert],
            "edit_median_ms": round(statistics.median(handler) * 1000, 1),
            "edit_p90_ms": round(sorted(handler)[int(0.9 * len(handler))] * 1000, 1),
            "table_conversion_median_ms": round(statistics.median(convert) * 1000, 1),
            "generation_redraws": len(redraws), "generation_seconds_simulated": generation_s,
            "redraw_median_ms": round(statistics.median(redraws) * 1000, 1),
            "redraw_s_per_generation_s": round(sum(redraws) / generation_s, 3)}


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
            "python": platform.python_version()}


def run_side(code: Path, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-dataset-home-") as home:
        env = {**os.environ, "DISTILL_HOME": home, "PYTHONPATH": str(code)}
        cmd = [sys.executable, str(ROOT / "benchmarks/dataset_edits.py"), "--side", "--rows", str(args.rows),
               "--edits", str(args.edits), "--generate", str(args.generate), "--seed", str(args.seed)]
        done = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"side in {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the code to compare with")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--generate", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        sys.path.insert(0, os.getcwd())
        print(json.dumps(side(args.rows, args.edits, args.generate, args.seed)))
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-dataset-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True, check=True)
        with tarfile.open(fileobj=__import__("io").BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        before = run_side(Path(tmp), args)
    after = run_side(ROOT, args)
    keys = ("edit_median_ms", "edit_p90_ms", "table_conversion_median_ms", "redraw_median_ms",
            "redraw_s_per_generation_s", "first_draw_s")
    summary = {k: {"before": before[k], "after": after[k],
                   "ratio": round(before[k] / after[k], 1) if after[k] else None} for k in keys}
    summary["generation_redraws"] = {"before": before["generation_redraws"], "after": after["generation_redraws"]}
    print(json.dumps({"command": " ".join(sys.argv), "baseline": args.baseline, "rows": args.rows,
                      "edits": args.edits, "generate": args.generate, "summary": summary,
                      "machine": {**machine(), "load_before": [round(x, 2) for x in load_before],
                                  "load_after": [round(x, 2) for x in os.getloadavg()]},
                      "before": before, "after": after}, indent=1))


if __name__ == "__main__":
    main()
