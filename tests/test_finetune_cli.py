"""`python -m pipeline finetune ...` against the OpenAI stand-in: JSON keys, exit codes, stderr progress."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.__main__ import main
from tests.fakes.openai_ft_stub import OpenAIFineTuneStub
from tests.test_finetune_openai import MODEL, examples

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"job_id", "status", "fine_tuned_model", "trained_tokens", "error"}


@pytest.fixture
def stub():
    server = OpenAIFineTuneStub()
    yield server
    server.close()


def write(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cli(stub, capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["finetune", *args, "--base-url", stub.base_url, "--api-key", stub.api_key, "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # exactly one JSON object on stdout
    return code, json.loads(lines[0]), err


def test_without_wait_prints_the_job_and_exits_0(stub, capsys, tmp_path) -> None:
    path = write(tmp_path / "train.jsonl", examples(12))
    code, out, err = cli(stub, capsys, str(path), "--model", MODEL, "--suffix", "cli", "--epochs", "2")
    assert code == 0 and set(out) >= KEYS
    assert out["job_id"].startswith("ftjob-") and out["status"] == "validating_files"
    assert out["fine_tuned_model"] is None and out["error"] is None and out["n_epochs"] == 2
    assert "billing tokens per epoch" in err and "Created job" in err
    body = stub.bodies("POST", "/v1/fine_tuning/jobs")[0]
    assert body["suffix"] == "cli" and body["method"]["supervised"]["hyperparameters"]["n_epochs"] == 2
    assert [u["filename"] for u in stub.bodies("POST", "/v1/files")] == ["train-train.jsonl"]


def test_wait_follows_the_job_to_success(stub, capsys, tmp_path) -> None:
    path = write(tmp_path / "train.jsonl", examples(12))
    valid = write(tmp_path / "valid.jsonl", examples(3, "v"))
    code, out, err = cli(stub, capsys, str(path), "--model", MODEL, "--validation", str(valid),
                         "--wait", "--poll", "0.01")
    assert code == 0 and out["status"] == "succeeded"
    assert out["fine_tuned_model"].startswith(f"ft:{MODEL}:") and out["trained_tokens"] > 0
    assert out["error"] is None and out["final_metrics"]["valid_loss"] is not None
    assert "Step 36/36: training loss=0.60" in err and "succeeded" in err


def test_wait_on_a_failing_job_exits_1_with_the_providers_error(stub, capsys, tmp_path) -> None:
    stub.fail_next_job = ("server_error", "The GPU caught fire", None)
    path = write(tmp_path / "train.jsonl", examples(12))
    code, out, err = cli(stub, capsys, str(path), "--model", MODEL, "--wait", "--poll", "0.01")
    assert code == 1 and out["status"] == "failed" and out["fine_tuned_model"] is None
    assert "The GPU caught fire" in out["error"] and "The GPU caught fire" in err


def test_bad_input_exits_2_without_uploading(stub, capsys, tmp_path) -> None:
    too_few = write(tmp_path / "few.jsonl", examples(3))
    code, out, _ = cli(stub, capsys, str(too_few), "--model", MODEL)
    assert code == 2 and out["job_id"] is None and "at least 10" in out["error"]
    code, out, _ = cli(stub, capsys, str(tmp_path / "missing.jsonl"), "--model", MODEL)
    assert code == 2 and "No such file" in out["error"]
    code, out, _ = cli(stub, capsys, str(write(tmp_path / "ok.jsonl", examples(10))), "--model", "nope-1")
    assert code == 2 and "does not serve a model named 'nope-1'" in out["error"]
    code, out, _ = cli(stub, capsys, str(tmp_path / "ok.jsonl"), "--model", MODEL, "--epochs", "0")
    assert code == 2 and "n_epochs" in out["error"]
    assert stub.bodies("POST", "/v1/files") == []


def test_provider_refusals_exit_1_with_a_readable_message(stub, capsys, tmp_path) -> None:
    path = write(tmp_path / "train.jsonl", examples(10))
    code, out, _ = cli(stub, capsys, str(path), "--model", "gpt-4")  # listed by the endpoint, not tunable
    assert code == 1 and "not available for fine-tuning" in out["error"]
    stub.insufficient_quota("POST", "/v1/fine_tuning/jobs")
    code, out, _ = cli(stub, capsys, str(path), "--model", MODEL)
    assert code == 1 and "quota" in out["error"] and "Traceback" not in out["error"]


def test_cost_threshold_needs_yes(stub, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_FINETUNE_CONFIRM_USD", "0.0000001")
    path = write(tmp_path / "train.jsonl", examples(10))
    code, out, _ = cli(stub, capsys, str(path), "--model", MODEL)
    assert code == 2 and "Confirm" in out["error"]
    code, out, _ = cli(stub, capsys, str(path), "--model", MODEL, "--yes")
    assert code == 0 and out["job_id"]


def test_real_process_bad_key_has_no_traceback(stub, tmp_path) -> None:
    path = write(tmp_path / "train.jsonl", examples(10))
    proc = subprocess.run([sys.executable, "-m", "pipeline", "finetune", str(path), "--model", MODEL,
                           "--base-url", stub.base_url, "--api-key", "sk-not-the-key-4321"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "401" in proc.stderr and "Traceback" not in proc.stderr and "4321" not in proc.stderr
    assert proc.stdout == ""


def test_auto_epochs_on_the_embedded_backend_follow_its_own_rule(tiny_backend, capsys, tmp_path) -> None:
    from pipeline import tokens
    from pipeline.endpoints import LOCAL_MODEL
    from pipeline.local.dataset import resolved_auto_epochs

    data = write(tmp_path / "t.jsonl", examples(20))  # OpenAI's rule: 5 epochs; the backend's: 4
    assert tokens.default_epochs(20) != resolved_auto_epochs(20)
    code = main(["finetune", str(data), "--model", LOCAL_MODEL, "--base-url", tiny_backend.base_url,
                 f"--api-key={tiny_backend.api_key}", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["n_epochs"] == resolved_auto_epochs(20)  # what the server will run
