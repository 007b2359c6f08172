"""Dataset tab and draft files at 1,000 and 50,000 rows, side by side: what grows with the draft.

    .venv/bin/python benchmarks/dataset_scale.py [--rows 1000,50000] [--baseline REV] [--no-baseline]

Each (code, rows) side runs in its own process against a fresh workspace, and calls the Dataset tab's
own handlers the way gradio does (one session: the same per-session state between calls):

- first paint: `show_draft` on a fresh session (what page load runs), its seconds (and where it sends
  the page first and the validated draft after, the seconds to its first update), the process's peak
  RSS during the call, and the bytes of what goes to the browser (each returned value through its
  component's `postprocess`, as JSON, every update counted; gr.State values stay on the server);
- a cell edit (`save_edits`) on the first page, and where the code pages, a jump to the row at 3/4 of
  the draft (row 37,500 of 50,000) and an edit there, checked to land on that stored line;
- validation: the Validate button (`validate_dataset`) and `validate_file` on the draft file (the CLI's
  path, nothing cached); export (`export_dataset`); removing duplicates (`dedupe_rows`) and its undo.

The baseline (default: main before the tab paged, `git archive`d into a temporary folder) runs the
same steps where its handlers have them. Rows are the shipped samples made unique, with what a real
draft has: about 2% without a system prompt, 0.2% with a blank answer, 0.1% exact repeats.

Peak memory is the process's VmHWM, reset before each step (/proc/self/clear_refs), so each step's
figure is the most the process held during that step. Prints one JSON object; figures go to
docs/bench/dataset.md and docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: main just before the Dataset tab paged (it drew the first 2,000 rows and the whole report).
BASELINE = "e9ca0eb"
MODEL = "gpt-4o-mini-2024-07-18"
VISITOR = "bench_dataset_scale_01"
SAMPLES = ("reasoning_train.jsonl", "tickets_train.jsonl", "tone_train.jsonl", "person_train.jsonl")


def realistic(n: int) -> list[dict]:
    """n examples from the shipped samples, each made unique, with a real draft's share of problems."""
    pool = [json.loads(line) for name in SAMPLES
            for line in (ROOT / "data/samples" / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    out: list[dict] = []
    for i in range(n):
        if i % 1000 == 999:  # an exact repeat
            out.append(out[i // 2])
            continue
        msgs = [dict(m, content=f"{m['content']} (variant {i})") if m["role"] == "user" else dict(m)
                for m in pool[i % len(pool)]["messages"]]
        if i % 50 == 7:
            msgs = [m for m in msgs if m["role"] != "system"]
        if i % 500 == 123:
            msgs[-1]["content"] = " "
        out.append({"messages": msgs})
    return out


def is_skip(value: Any) -> bool:
    """gr.skip() is an update dict (`{"__type__": "update"}`), not a type of its own."""
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def _rss() -> tuple[int, int]:
    """(current RSS, peak RSS since the last reset) in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def _reset_peak() -> None:
    with contextlib.suppress(OSError):  # not Linux: the peak is then the process's whole-life peak
        Path("/proc/self/clear_refs").write_text("5")


def side(rows: int) -> dict:
    """One side, run inside the process whose sys.path holds that side's code."""
    import gradio as gr

    from components import dataset as tab
    from components.context import AppContext
    from pipeline import drafts
    from pipeline.dataset.draft_view import DraftCache

    with gr.Blocks():
        ctx = AppContext(settings=gr.State(None), visitor=gr.BrowserState(""), dataset_rev=gr.State(0),
                         recent_jobs=gr.BrowserState([]), remembered=gr.BrowserState(None))
        comps = tab.build_dataset_tab(ctx)

    def sent(out: dict) -> int:
        """Bytes of what gradio sends to the browser for these outputs."""
        total = 0
        for name, value in out.items():
            comp = comps[name]
            if isinstance(comp, gr.State) or is_skip(value):
                continue
            data = comp.postprocess(value)
            data = data.model_dump() if hasattr(data, "model_dump") else data
            total += len(json.dumps(data, default=str, ensure_ascii=False).encode())
        return total

    state: dict[str, Any] = {"visitor": VISITOR, "dataset_rev": 1, "model_dd": MODEL, "epochs_num": 0,
                             "draft_cache": DraftCache(), "page_start": 0, "filter_dd": None, "search_box": "",
                             "rendered": None, "jump_box": ""}

    def call(fn, **given: Any) -> tuple[dict, dict]:
        params = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in {**state, **given}.items() if k in params}
        _reset_peak()
        t0 = time.perf_counter()
        out = fn(**kwargs)
        extra: dict[str, Any] = {}
        if inspect.isgenerator(out):  # updates the browser gets one after the other: the first, the last
            updates = []
            for update in out:
                updates.append(update)
                extra.setdefault("first_update_s", round(time.perf_counter() - t0, 3))
            extra["updates"], extra["bytes_sent"] = len(updates), sum(sent(u) for u in updates)
            out = updates[-1]
        seconds = time.perf_counter() - t0
        rss, peak = _rss()
        for key in ("rendered", "page_start", "draft_cache"):
            if key in out and not is_skip(out[key]):
                state[key] = out[key]
        return out, {"s": round(seconds, 3), "peak_mb": peak, "rss_mb": rss, **extra}

    # The tokenizer is loaded before the clock starts (the first count loads it: ~3 s here, the same at
    # any size), so the figures grow with the draft and not with start-up.
    from pipeline import tokens

    tokens.counter_for(MODEL).count_batch(["warm up"])
    examples = realistic(rows)
    drafts.save_draft(VISITOR, examples)
    size = drafts.draft_path(VISITOR).stat().st_size
    del examples
    result: dict[str, Any] = {"rows": rows, "draft_mb": round(size / 1e6, 1)}
    _reset_peak()
    result["idle_rss_mb"] = _rss()[0]

    out, m = call(tab.show_draft)
    result["first_paint"] = {"bytes_sent": sent(out), **m, "table_rows": len(out["table_df"])}

    table = [list(r) for r in out["table_df"]]
    table[10][3] = "an edited answer"
    out, m = call(tab.save_edits, table_df=table)
    assert drafts.load_draft(VISITOR)[10]["messages"][-1]["content"] == "an edited answer"
    result["cell_edit"] = {**m, "bytes_sent": sent(out), "table_rows": len(out["table_df"])}

    pages = sys.modules.get("components.dataset_render")
    if pages is not None:  # the paged tab: reach a row far down and edit it
        target = rows * 3 // 4
        out, m = call(pages.jump_to_row, jump_box=target)
        result["jump"] = {**m, "bytes_sent": sent(out), "table_rows": len(out["table_df"])}
        table = [list(r) for r in out["table_df"]]
        at = next(i for i, r in enumerate(table) if r[0] == str(target))
        table[at][3] = "edited far down"
        out, m = call(tab.save_edits, table_df=table)
        assert drafts.load_draft(VISITOR)[target - 1]["messages"][-1]["content"] == "edited far down"
        result["far_edit"] = {**m, "bytes_sent": sent(out)}

    out, m = call(tab.validate_dataset)
    result["validate_button"] = {**m, "bytes_sent": sent(out)}
    from pipeline.dataset import validate_file

    _reset_peak()
    t0 = time.perf_counter()
    report = validate_file(drafts.draft_path(VISITOR), MODEL)
    rss, peak = _rss()
    result["validate_file"] = {"s": round(time.perf_counter() - t0, 3), "peak_mb": peak, "rss_mb": rss,
                               "examples": report.n_examples}
    del report

    out, m = call(tab.export_dataset)
    result["export"] = {**m, "files": [Path(f).name for f in out["files"]]}
    out, m = call(tab.dedupe_rows)
    result["dedupe"] = {**m, "status": out["status_md"].strip()[:80]}
    out, m = call(tab.undo_change)
    result["undo"] = m
    assert len(drafts.load_draft(VISITOR)) == rows
    return result


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
            "python": platform.python_version(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def run_side(code: Path, rows: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-scale-home-") as home:
        env = {**os.environ, "DISTILL_HOME": home, "PYTHONPATH": str(code)}
        cmd = [sys.executable, str(ROOT / "benchmarks/dataset_scale.py"), "--side", str(rows)]
        done = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"side {rows} in {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratios(small: dict, big: dict) -> dict:
    out = {}
    for step, fig in big.items():
        if isinstance(fig, dict) and isinstance(small.get(step), dict):
            out[step] = {k: round(v / small[step][k], 2) for k, v in fig.items()
                         if isinstance(v, (int, float)) and small[step].get(k)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rows", default="1000,50000", help="two draft sizes, small first (default 1000,50000)")
    ap.add_argument("--baseline", default=BASELINE, help="git revision of the code before paging")
    ap.add_argument("--no-baseline", action="store_true", help="measure only this working tree")
    args = ap.parse_args()
    if args.side:
        print(json.dumps(side(args.side)))
        return
    small, big = (int(x) for x in args.rows.split(","))
    started = machine()
    result: dict[str, Any] = {"command": " ".join(["benchmarks/dataset_scale.py", *sys.argv[1:]]),
                              "machine": started, "started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    sides = [("current", ROOT)]
    with tempfile.TemporaryDirectory(prefix="bench-scale-base-") as tmp:
        if not args.no_baseline:
            archive = Path(tmp) / "base.tar"
            subprocess.run(["git", "archive", "-o", str(archive), args.baseline], cwd=ROOT, check=True)
            with tarfile.open(archive) as tar:
                tar.extractall(Path(tmp) / "code", filter="data")
            sides.insert(0, (f"baseline {args.baseline}", Path(tmp) / "code"))
        # Interleaved (each size: baseline then current), so a change in the machine's load between the
        # first and the last side weighs on both.
        runs: dict[tuple[str, int], dict] = {}
        for rows in (small, big):
            for name, code in sides:
                runs[name, rows] = run_side(code, rows)
                print(f"{name} at {rows:,} rows: done", file=sys.stderr)
        for name, _code in sides:
            a, b = runs[name, small], runs[name, big]
            result[name] = {str(small): a, str(big): b, f"ratio {big}/{small}": ratios(a, b)}
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
