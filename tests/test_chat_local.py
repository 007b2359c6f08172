"""Chat and evaluation end to end against the embedded local backend (tiny random model, real HTTP)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.chat import ChatSession, PaneConfig, Params
from pipeline.evaluate import Target, load_benchmark, run_benchmark

ROOT = Path(__file__).resolve().parent.parent


def test_three_panes_stream_from_the_local_backend(tiny_backend):
    client = tiny_backend.client()
    model = client.models.list().data[0].id
    session = ChatSession()
    configs = [PaneConfig(r, "local", model) for r in ("base", "fine_tuned", "teacher")]
    turns = list(session.send("Who is Ottoline Crumwell?", configs, Params(system="Be brief.", max_tokens=8),
                              lambda _: client))
    assert [s.status for s in turns[-1].states] == ["done"] * 3
    for i in range(3):
        reply = session.histories[i][-1]
        assert reply["role"] == "assistant" and reply["content"] and not reply.get("error")
        m = session.metrics[i]
        assert m["exact_tokens"] and 0 < m["output_tokens"] <= 8 and m["ttft_s"] is not None
        assert m["cost_usd"] == 0.0  # the local model is free, and priced as such


def test_eval_cli_against_the_local_backend(tiny_backend, tmp_path):
    model = tiny_backend.client().models.list().data[0].id
    bench = tmp_path / "few.jsonl"
    lines = (ROOT / "data" / "benchmarks" / "person_bench.jsonl").read_text().splitlines()[:3]
    bench.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "eval", str(bench), "--model", model,
                           "--base-url", tiny_backend.base_url, f"--api-key={tiny_backend.api_key}",
                           "--max-tokens", "8", "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)["results"][0]
    assert (row["model"], row["total"], row["errors"]) == (model, 3, 0)
    assert row["cost_usd"] == 0.0 and row["mean_latency_s"] > 0


def test_eval_in_process_with_an_unknown_model_counts_errors(tiny_backend):
    client = tiny_backend.client()
    items = load_benchmark(ROOT / "data" / "benchmarks" / "person_bench.jsonl")[:2]
    model = client.models.list().data[0].id
    results = run_benchmark("person", items, [Target(model, client), Target("no-such-model", client)],
                            max_tokens=4)
    rows = {r["model"]: r for r in results["results"]}
    assert rows[model]["errors"] == 0 and rows[model]["answered"] == 2
    assert rows["no-such-model"]["errors"] == 2
    assert "404" in results["items"][0]["answers"]["no-such-model"]["error"]
