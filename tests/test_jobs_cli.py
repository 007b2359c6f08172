"""`python -m pipeline jobs list|show|cancel|wait` against the OpenAI stand-in: JSON keys, exit codes."""

from __future__ import annotations

import json

import pytest

from pipeline.__main__ import main
from tests.fakes.openai_ft_stub import OpenAIFineTuneStub
from tests.test_finetune_cli import write
from tests.test_finetune_openai import MODEL, examples

KEYS = {"job_id", "status", "model", "fine_tuned_model", "trained_tokens", "error"}


@pytest.fixture
def stub():
    server = OpenAIFineTuneStub()
    yield server
    server.close()


def cli(stub, capsys, *args: str) -> tuple[int, dict, str]:
    code = main([*args, "--base-url", stub.base_url, "--api-key", stub.api_key, "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # exactly one JSON object on stdout
    return code, json.loads(lines[0]), err


def start(stub, capsys, tmp_path) -> str:
    path = write(tmp_path / "train.jsonl", examples(12))
    code, out, _ = cli(stub, capsys, "finetune", str(path), "--model", MODEL)
    assert code == 0
    return out["job_id"]


def test_list_show_and_wait(stub, capsys, tmp_path) -> None:
    code, out, _ = cli(stub, capsys, "jobs", "list")
    assert code == 0 and out == {"jobs": []}
    job_id = start(stub, capsys, tmp_path)
    code, out, _ = cli(stub, capsys, "jobs", "list", "--limit", "5")
    assert code == 0 and [j["job_id"] for j in out["jobs"]] == [job_id] and set(out["jobs"][0]) >= KEYS
    code, out, _ = cli(stub, capsys, "jobs", "show", job_id)
    assert code == 0 and out["job_id"] == job_id and set(out) >= KEYS | {"events", "metrics"}
    code, out, err = cli(stub, capsys, "jobs", "wait", job_id, "--poll", "0.01")
    assert code == 0 and out["status"] == "succeeded" and out["fine_tuned_model"].startswith(f"ft:{MODEL}:")
    assert "succeeded" in err


def test_cancel_then_wait_exits_1_and_cancelling_again_is_refused(stub, capsys, tmp_path) -> None:
    job_id = start(stub, capsys, tmp_path)
    code, out, _ = cli(stub, capsys, "jobs", "cancel", job_id)
    assert code == 0 and out["status"] == "cancelled"
    code, out, _ = cli(stub, capsys, "jobs", "wait", job_id, "--poll", "0.01")
    assert code == 1 and out["status"] == "cancelled"
    code, out, err = cli(stub, capsys, "jobs", "cancel", job_id)
    assert code == 1 and "already completed" in out["error"] and "already completed" in err


def test_unknown_job_exits_2_with_a_hint(stub, capsys) -> None:
    for action in ("show", "cancel", "wait"):
        code, out, err = cli(stub, capsys, "jobs", action, "ftjob-nope")
        assert code == 2 and "jobs list" in out["error"] and "ftjob-nope" in err


def test_human_list_says_how_to_start(stub, capsys) -> None:
    code = main(["jobs", "list", "--base-url", stub.base_url, "--api-key", stub.api_key])
    assert code == 0 and "python -m pipeline finetune" in capsys.readouterr().out
