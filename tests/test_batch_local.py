"""Batch mode offline: `generate --batch --wait` against the embedded local backend's /v1/batches
(tiny random model), the real openai SDK over real HTTP, collected exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import batch
from pipeline.__main__ import main


def test_generate_batch_against_the_local_backend(tiny_backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    out = tmp_path / "gen.jsonl"
    code = main(["generate", "--template", "reasoning", "--n", "2", "--out", str(out), "--max-tokens", "160",
                 "--batch", "--wait", "--poll", "0.5", "--json",
                 "--base-url", tiny_backend.base_url, f"--api-key={tiny_backend.api_key}"])  # = form: a random key may start with "-"
    result = json.loads(capsys.readouterr().out)
    record = batch.load_batch(None, result["batch"]["id"])
    assert record.state == "collected" and record.parts[0].batch_id
    assert record.counts()["total"] == 3 == record.requests
    # Every request is accounted for: an example, or a listed reason (a tiny random model may ramble).
    report = result["collected"]
    failures = batch.failed_requests(record)
    kept_ids = {f["custom_id"] for f in failures if f["kind"] != "duplicate"}
    assert report["appended"] + len(kept_ids) >= 3
    written = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []
    assert len(written) == report["appended"] == result["written"]
    assert code == (0 if len(written) >= 2 else 1)
    again = batch.collect(record)
    assert again.already and len(out.read_text(encoding="utf-8").splitlines() if out.exists() else []) == len(written)
