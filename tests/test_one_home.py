"""One home per idea: the Retry-After parser, the provider-error translation, the atomic writer."""

from __future__ import annotations

import json
import multiprocessing
import time
from email.utils import formatdate
from pathlib import Path

import httpx
import openai
import pytest

from pipeline import atomic
from pipeline.errors import explain, retry_after_seconds


def _rate_limited(headers: dict[str, str]) -> openai.RateLimitError:
    request = httpx.Request("POST", "https://api.example.test/v1/chat/completions")
    response = httpx.Response(429, headers=headers, request=request, json={"error": {"message": "slow down"}})
    return openai.RateLimitError("slow down", response=response, body={"message": "slow down"})


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"retry-after": "7"}, 7.0),
    ({"retry-after": "0.25"}, 0.25),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # the precise one wins
    ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
    ({"retry-after": "-3"}, 0.0),
    ({"retry-after": "inf"}, None),
    ({"retry-after": "whenever"}, None),
    ({}, None),
])
def test_retry_after_in_seconds_milliseconds_or_garbage(headers: dict, seconds: float | None) -> None:
    assert retry_after_seconds(_rate_limited(headers)) == seconds
    assert retry_after_seconds(headers) == seconds  # a response's headers as they are


def test_retry_after_as_an_http_date() -> None:
    later = retry_after_seconds({"retry-after": formatdate(time.time() + 60, usegmt=True)})
    assert later is not None and 50 <= later <= 61
    assert retry_after_seconds({"retry-after": formatdate(time.time() - 60, usegmt=True)}) == 0.0
    assert retry_after_seconds(ValueError("no response")) is None


def test_every_user_of_retry_after_reads_the_same_parser() -> None:
    from pipeline.finetune import watch
    from pipeline.generate import teacher

    assert watch.retry_after_seconds is teacher.retry_after_seconds is retry_after_seconds
    assert "wait 2 s" in explain(_rate_limited({"retry-after-ms": "1500"}))


def test_one_translation_with_the_calls_context() -> None:
    request = httpx.Request("GET", "https://api.example.test/v1/models")
    missing = openai.NotFoundError("nope", response=httpx.Response(404, request=request), body=None)
    assert explain(missing, model="gpt-x", host="api.example.test").startswith("No access to model 'gpt-x'")
    assert "base URL" in explain(missing, host="api.example.test", listing=True)
    down = openai.APIConnectionError(request=request)
    assert explain(down).startswith("Network unreachable") and "Settings" in explain(down)
    assert "api.example.test" in explain(down, host="api.example.test")
    refused = openai.AuthenticationError("sk-abc123 is wrong", response=httpx.Response(401, request=request),
                                         body={"message": "sk-abc123 is wrong"})
    assert "sk-abc" not in explain(refused) and "Invalid key" in explain(refused)


def _bump(path: str, times: int) -> None:
    for _ in range(times):
        with atomic.locked(path):
            count = atomic.read_json(path, {"n": 0})["n"]
            atomic.write_json(path, {"n": count + 1})


def test_atomic_writes_under_the_lock_lose_nothing_across_processes(tmp_path: Path) -> None:
    """Two processes doing read-modify-write on one file: every increment survives."""
    path = str(tmp_path / "counter.json")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_bump, args=(path, 40)) for _ in range(2)]
    for w in workers:
        w.start()
    _bump(path, 40)
    for w in workers:
        w.join(120)
    assert json.loads(Path(path).read_text())["n"] == 120
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no half files left


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    atomic.write_json(path, {"kept": True})

    def fail(tmp: str) -> None:
        Path(tmp).write_text("{half", encoding="utf-8")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic.write_with(path, fail)
    assert atomic.read_json(path) == {"kept": True} and len(list(tmp_path.iterdir())) == 1


class _RecordingStop:
    """A stop event that records the waits asked of it instead of sleeping (no timing in tests)."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.waits: list[float] = []
        self.stop_after = stop_after

    def wait(self, delay: float) -> bool:
        self.waits.append(delay)
        return self.stop_after is not None and len(self.waits) >= self.stop_after


def test_one_way_to_follow_a_job_backs_off_and_honours_retry_after() -> None:
    from pipeline.finetune.session import start_job
    from pipeline.finetune.watch import BASE_POLL_S, follow_job
    from tests.fakes.openai_ft_stub import OpenAIFineTuneStub
    from tests.test_finetune_openai import MODEL, examples

    stub = OpenAIFineTuneStub()
    try:
        client = stub.client(max_retries=0)
        job = start_job(client, examples(12), MODEL).job
        stub.rate_limit("GET", f"/v1/fine_tuning/jobs/{job.id}", retry_after="30")
        seen, stop = [], _RecordingStop()
        final = follow_job(client, job.id, poll_s=1.0, on_snapshot=seen.append, stop=stop)  # type: ignore[arg-type]
        assert final.finished and final.status == "succeeded"
        assert seen[0].failures == 1 and stop.waits[0] >= 30  # the provider's Retry-After, not 1 s
        assert stop.waits[1:] == [1.0] * (len(stop.waits) - 1)  # back to the base beat once answered
        # Stopped (the demo's Stop): it returns the unfinished snapshot and the caller cancels.
        job2 = start_job(client, examples(12), MODEL).job
        stopped = follow_job(client, job2.id, stop=_RecordingStop(stop_after=1))  # type: ignore[arg-type]
        assert not stopped.finished
    finally:
        stub.close()
    from pipeline.commands import finetune as cli
    from pipeline.demo import actions as demo

    assert cli.follow_job is demo.follow_job is follow_job and BASE_POLL_S > 0
