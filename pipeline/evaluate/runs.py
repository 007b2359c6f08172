"""Runs kept and compared: every evaluation is saved in the visitor's workspace with its benchmark
hash, models, settings and answers; earlier runs on the same benchmark can be listed and two put
side by side (which questions changed verdict)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline import workspace
from pipeline.errors import InputError


def save_results(visitor_id: str, results: dict) -> Path:
    folder = workspace.visitor_dir(visitor_id, "evals")
    stem = Path(results["benchmark"]).stem
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{time.perf_counter_ns() % 10**6:06d}-{stem}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def list_results(visitor_id: str) -> list[Path]:
    return sorted(workspace.visitor_dir(visitor_id, "evals").glob("*.json"))


def latest_results(visitor_id: str) -> dict | None:
    """The visitor's most recent evaluation (what the dataset card reports), or None."""
    paths = list_results(visitor_id)
    return json.loads(paths[-1].read_text(encoding="utf-8")) if paths else None


def run_title(results: dict, name: str = "") -> str:
    board = ", ".join(f"{r['label']} {r['correct']}/{r['total']}" for r in results.get("results", []))
    return f"{results.get('created_at', '?')} · {results.get('benchmark', '?')} · {board}" + (f"  [{name}]" if name else "")


def list_runs(visitor_id: str, benchmark_sha256: str | None = None) -> list[dict]:
    """Saved runs, newest first: {name, title, benchmark_sha256}; only one benchmark's when a hash is given."""
    out = []
    for path in reversed(list_results(visitor_id)):
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a half-written or hand-edited file must not hide the others
        sha = results.get("benchmark_sha256")
        if benchmark_sha256 and sha != benchmark_sha256:
            continue
        out.append({"name": path.name, "title": run_title(results, path.name), "benchmark_sha256": sha})
    return out


def load_run(visitor_id: str, name: str) -> dict:
    """One saved run by file name (a name from list_runs, never a path)."""
    names = {p.name: p for p in list_results(visitor_id)}
    if name not in names:
        raise InputError("That run is not among your saved runs; pick one from the list.")
    return json.loads(names[name].read_text(encoding="utf-8"))


def verdict_changes(old: dict, new: dict) -> list[dict]:
    """Questions whose verdict changed between two runs, per contestant label both runs have:
    {question, expected, label, before, after} with before/after "✓", "✗" or "error"."""
    def marks(results: dict) -> dict[tuple[str, str], str]:
        out = {}
        for it in results.get("items", []):
            for label, a in it.get("answers", {}).items():
                out[(it["question"], label)] = "error" if a.get("error") else ("✓" if a.get("correct") else "✗")
        return out

    before, after = marks(old), marks(new)
    expected = {it["question"]: it["expected"] for it in new.get("items", [])}
    changes = [{"question": q, "expected": expected.get(q, ""), "label": label, "before": before[(q, label)],
                "after": after[(q, label)]}
               for (q, label) in after if (q, label) in before and before[(q, label)] != after[(q, label)]]
    return changes
