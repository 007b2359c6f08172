"""The batch CLI end to end (its main, argv to exit code and output) against the stand-in Batch API over real HTTP:
`generate --batch [--wait]`, `eval --batch [--wait]`, `batches list|show|collect|retry|export|import`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.__main__ import main
from tests.fakes.batch_server import FakeBatches


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """`python -m pipeline ...` in this process (the CLI's own main; a real process per call would
    cost seconds of imports each on this shared machine), with its own workspace."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    def run(home: Path, *args: str, base_url: str | None = None) -> Ran:
        monkeypatch.setenv("DISTILL_HOME", str(home))
        flags = ["--base-url", base_url, "--api-key", "test-key"] if base_url else []
        capsys.readouterr()
        code = main([*args, *flags])
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)
    return run


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture
def fake():
    with FakeBatches() as server:
        yield server


def test_generate_batch_then_collect_later(tmp_path: Path, fake: FakeBatches, cli) -> None:
    home, out = tmp_path / "home", tmp_path / "gen.jsonl"
    made = cli(home, "generate", "--template", "reasoning", "--n", "9", "--out", str(out), "--teacher", "gpt-4o-mini",
               "--batch", "--json", base_url=fake.base_url)
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout)["batch"]
    assert record["state"] == "validating" and record["requests"] == 10
    assert "batches collect " + record["id"] in made.stderr and "at batch prices" in made.stderr
    listed = cli(home, "batches", "list")
    assert record["id"] in listed.stdout
    early = cli(home, "batches", "collect", record["id"], base_url=fake.base_url)
    assert early.returncode == 2 and "has not finished" in early.stderr and not out.exists()
    fake.finish()
    done = cli(home, "batches", "collect", record["id"], "--json", base_url=fake.base_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["collected"]["appended"] == 10
    assert len(lines(out)) == 10
    again = cli(home, "batches", "collect", record["id"], "--json")  # on disk already: no endpoint needed
    assert json.loads(again.stdout)["collected"]["already"] is True and len(lines(out)) == 10
    shown = cli(home, "batches", "show", record["id"], "--no-refresh")
    assert "collected" in shown.stdout and "gpt-4o-mini" in shown.stdout


def test_generate_batch_wait_retry_export_import(tmp_path: Path, fake: FakeBatches, cli) -> None:
    fake.auto_finish, fake.fail_lines = True, (0, 4)
    home, out = tmp_path / "home", tmp_path / "gen.jsonl"
    made = cli(home, "generate", "--template", "reasoning", "--n", "9", "--out", str(out), "--teacher", "gpt-4o-mini",
               "--batch", "--wait", "--poll", "0.05", base_url=fake.base_url)
    assert made.returncode == 1, made.stderr  # 8 kept of the 9 asked for: not done, as a run one by one says
    assert len(lines(out)) == 8 and "8/9 examples in" in made.stdout
    assert "2 request(s) gave nothing" in made.stdout
    batch_id = json.loads(cli(home, "batches", "list", "--json").stdout)["batches"][0]["id"]
    fake.fail_lines = ()
    retried = cli(home, "batches", "retry", batch_id, "--json", base_url=fake.base_url)
    assert retried.returncode == 0, retried.stderr
    retry = json.loads(retried.stdout)["batch"]
    assert retry["requests"] == 2 and retry["retry_of"] == batch_id
    exported = tmp_path / "to-run-elsewhere.jsonl"
    assert cli(home, "batches", "export", retry["id"], "--to", str(exported)).returncode == 0
    ids = [r["custom_id"] for r in lines(exported)]
    assert ids == ["gen-0-0", "gen-0-4"]
    # ran elsewhere (vLLM run-batch writes this shape), imported, collected without an endpoint
    vllm_out = tmp_path / "vllm-results.jsonl"
    vllm_out.write_text("".join(json.dumps(vllm_line(cid, n)) + "\n" for n, cid in enumerate(ids)), encoding="utf-8")
    imported = cli(home, "batches", "import", retry["id"], str(vllm_out))
    assert imported.returncode == 0, imported.stderr
    collected = cli(home, "batches", "collect", retry["id"], "--json")
    assert json.loads(collected.stdout)["collected"]["appended"] == 2, collected.stderr
    assert len(lines(out)) == 10 and len({json.dumps(x, sort_keys=True) for x in lines(out)}) == 10


def vllm_line(custom_id: str, n: int) -> dict:
    question = ["How many walnuts fall from three trees dropping seven each?",
                "A train leaves at noon going 60 km/h; how far is it by 3 pm?"][n]
    answer = {"question": question, "reasoning": "Work it out.",
              "final_answer": str(n + 5)}
    return {"id": f"vllm-{n:032x}", "custom_id": custom_id,
            "response": {"status_code": 200, "request_id": f"vllm-batch-{n:032x}",
                         "body": {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1, "model": "m",
                                  "choices": [{"index": 0, "message": {"role": "assistant",
                                                                       "content": json.dumps(answer),
                                                                       "tool_calls": []},
                                               "logprobs": None, "finish_reason": "stop", "stop_reason": None}],
                                  "usage": {"prompt_tokens": 50, "total_tokens": 70, "completion_tokens": 20}}},
            "error": None}


def test_bad_import_says_which_lines(tmp_path: Path, fake: FakeBatches, cli) -> None:
    home = tmp_path / "home"
    made = cli(home, "generate", "--template", "reasoning", "--n", "2", "--out", str(tmp_path / "g.jsonl"),
               "--teacher", "gpt-4o-mini", "--batch", "--json", base_url=fake.base_url)
    batch_id = json.loads(made.stdout)["batch"]["id"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "gen-0-999", "response": {"status_code": 200, "body": {}}}\nnot json\n',
                   encoding="utf-8")
    out = cli(home, "batches", "import", batch_id, str(bad))
    assert out.returncode == 2
    assert "line 1: custom_id 'gen-0-999' is not a request of this batch" in out.stderr
    assert "line 2: not JSON" in out.stderr


def test_eval_batch_without_wait_prints_its_id_and_collects_later(tmp_path: Path, fake: FakeBatches, cli) -> None:
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"What is 40 + {i}?"}],
                                         "expected": str(40 + i), "scoring": "final_answer"}) + "\n" for i in (1, 2)),
                     encoding="utf-8")
    home = tmp_path / "home"
    made = cli(home, "eval", str(bench), "--model", "gpt-4o-mini", "--batch", base_url=fake.base_url)
    assert made.returncode == 0, made.stderr
    batch_id = made.stdout.strip()
    assert batch_id.startswith("eval-") and f"batches show {batch_id}" in made.stderr
    assert "Batch cost:" in made.stderr and len(fake.batches) == 1
    fake.finish()
    done = cli(home, "batches", "collect", batch_id, "--json", base_url=fake.base_url)
    board = json.loads(done.stdout)["results"]["results"]
    assert [(r["label"], r["correct"], r["total"]) for r in board] == [("gpt-4o-mini", 1, 2)]  # it always says 42


def test_eval_batch_wait_prints_the_scoreboard(tmp_path: Path, fake: FakeBatches, cli) -> None:
    fake.auto_finish, fake.fail_lines = True, (1,)
    bench = tmp_path / "bench.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"What is 40 + {i}?"}], "expected": "42" if i == 2 else str(40 + i),
             "scoring": "final_answer"} for i in range(4)]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    home = tmp_path / "home"
    out = cli(home, "eval", str(bench), "--model", "gpt-4o-mini", "--model", "gpt-4.1-nano", "--batch", "--wait",
              "--poll", "0.05", "--json", base_url=fake.base_url)
    assert out.returncode == 1, out.stderr  # one request failed: reported, as an interactive failed call is
    results = json.loads(out.stdout)
    board = {r["label"]: r for r in results["results"]}
    # the fake always answers 42: right on item 2 only; gpt-4o-mini's item 1 failed (line 1 of its part)
    assert (board["gpt-4o-mini"]["correct"], board["gpt-4o-mini"]["errors"]) == (1, 1)
    assert (board["gpt-4.1-nano"]["correct"], board["gpt-4.1-nano"]["errors"]) == (1, 1)
    assert results["settings"]["batch"].startswith("eval-")
    assert len(fake.batches) == 2  # one batch per model, as OpenAI requires
    assert {b["metadata"]["kind"] for b in fake.batches.values()} == {"eval"}


def test_generate_batch_with_answer_checks_waits_for_both_batches(tmp_path: Path, fake: FakeBatches, cli) -> None:
    fake.auto_finish = True
    home, out = tmp_path / "home", tmp_path / "gen.jsonl"
    made = cli(home, "generate", "--template", "reasoning", "--n", "4", "--out", str(out), "--teacher", "gpt-4o-mini",
               "--check", "--batch", "--wait", "--poll", "0.05", "--json", base_url=fake.base_url)
    assert made.returncode == 0, made.stderr
    assert "answer checks as a second batch" in made.stderr
    result = json.loads(made.stdout)
    assert result["collected"]["appended"] == 5 and result["collected"]["check_dropped"] == 0
    assert len(fake.batches) == 2 and len(lines(out)) == 5


def test_eval_batch_with_a_judge_scores_as_the_interactive_judge(tmp_path: Path, fake: FakeBatches, cli) -> None:
    fake.auto_finish = True
    bench = tmp_path / "bench.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"}], "expected": exp, "scoring": scoring}
            for i, (exp, scoring) in enumerate([("42", "judge"), ("7", "judge"), ("42", "judge"), ("5", "final_answer")])]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    flags = ["eval", str(bench), "--model", "gpt-4o-mini", "--judge", "gpt-4.1-nano", "--json"]
    interactive = cli(tmp_path / "home1", *flags, base_url=fake.base_url)
    assert interactive.returncode == 0, interactive.stderr
    batched = cli(tmp_path / "home2", *flags, "--batch", "--wait", "--poll", "0.05", base_url=fake.base_url)
    assert batched.returncode == 0, batched.stderr
    assert "answers to the judge" in batched.stderr
    one, two = json.loads(interactive.stdout), json.loads(batched.stdout)

    def verdicts(results: dict) -> list[tuple]:
        return [(it["index"], a["correct"], a["verdict"]) for it in results["items"] for a in it["answers"].values()]
    assert verdicts(two) == verdicts(one)
    assert [r["correct"] for r in two["results"]] == [r["correct"] for r in one["results"]] == [2]
    assert two["judge"] == one["judge"] == "gpt-4.1-nano"
    assert len(fake.batches) == 2  # the answers, then the judge


def test_collecting_a_downloaded_judged_batch_sends_the_judge(tmp_path: Path, fake: FakeBatches, cli) -> None:
    """`batches show` downloaded the answers; `batches collect` (no --wait) must still reach the endpoint:
    the judge goes out as a second batch (it used to stop at "collect it with its endpoint")."""
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Question {i}?"}],
                                         "expected": "42", "scoring": "judge"}) + "\n" for i in range(2)),
                     encoding="utf-8")
    home = tmp_path / "home"
    batch_id = cli(home, "eval", str(bench), "--model", "gpt-4o-mini", "--judge", "gpt-4.1-nano", "--batch",
                   base_url=fake.base_url).stdout.strip()
    fake.finish()
    shown = cli(home, "batches", "show", batch_id, "--json", base_url=fake.base_url)
    assert all(p["downloaded"] for p in json.loads(shown.stdout)["batch"]["parts"])
    sent = cli(home, "batches", "collect", batch_id, "--json", base_url=fake.base_url)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["collected"]["waiting"] is True and len(fake.batches) == 2
    fake.finish()
    done = cli(home, "batches", "collect", batch_id, "--json", base_url=fake.base_url)
    board = json.loads(done.stdout)["results"]["results"]
    assert [(r["label"], r["correct"], r["total"]) for r in board] == [("gpt-4o-mini", 2, 2)]  # the fake says 42

