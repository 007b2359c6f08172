"""`python -m pipeline validate`: exit codes 0/1/2 and the --json contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.__main__ import main
from pipeline.dataset import to_jsonl

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"examples", "errors", "warnings", "billing_tokens_per_epoch", "n_epochs", "estimated_cost_usd",
        "tokens_approximate"}


def good(n: int) -> list[dict]:
    return [{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(n)]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clean_file_exits_0_with_json(tmp_path: Path, capsys) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(to_jsonl(good(60)), encoding="utf-8")
    code, out, _ = run(capsys, str(path), "--model", "gpt-3.5-turbo-0125", "--epochs", "3", "--json")
    data = json.loads(out)
    assert code == 0 and set(data) >= KEYS
    assert data["examples"] == 60 and data["errors"] == [] and data["n_epochs"] == 3
    assert data["estimated_cost_usd"] == pytest.approx(data["billing_tokens_per_epoch"] * 3 * 8 / 1e6)
    assert data["tokens_approximate"] is False


def test_errors_exit_1_and_list_lines(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(to_jsonl(good(12)) + "{nope\n", encoding="utf-8")
    code, out, _ = run(capsys, str(path), "--json")
    data = json.loads(out)
    assert code == 1
    assert {k: data["errors"][0][k] for k in ("line", "code")} == {"line": 13, "code": "invalid_json"}
    assert all(set(p) >= {"line", "code", "message"} for p in data["errors"] + data["warnings"])


def test_human_output(tmp_path: Path, capsys) -> None:
    path = tmp_path / "few.jsonl"
    path.write_text(to_jsonl(good(3)), encoding="utf-8")
    code, out, _ = run(capsys, str(path))
    assert code == 1 and "too_few_examples" in out and "estimated training cost" in out


@pytest.mark.parametrize("content", [b"\x00\x01binary\x00" * 20, None])
def test_unreadable_exits_2(tmp_path: Path, capsys, content: bytes | None) -> None:
    path = tmp_path / "x.jsonl"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(capsys, str(path), "--json")
    assert code == 2 and json.loads(out)["readable"] is False  # one JSON object, even for a missing file
    if content is not None:
        assert json.loads(out)["errors"][-1]["code"] == "binary_file"
    else:
        assert json.loads(out)["errors"][0]["code"] == "unreadable_file"
        assert "No such file" in json.loads(out)["errors"][0]["message"]
        code, out, err = run(capsys, str(path))
        assert code == 2 and "No such file" in err and out == ""


def test_real_subprocess_stdout_is_one_json_object(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(to_jsonl(good(10)), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(path), "--model",
                           "SmolLM2-135M-Instruct", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["tokens_approximate"] is True and data["warnings"][0]["code"] == "few_examples"
