"""Batch mode: the request file, the lifecycle against a stand-in Batch API over real HTTP with the
real openai SDK (complete, expire, fail, cancel), collecting exactly once (twice, concurrently, after
a restart, after a crash mid-collect), retry of failed requests, export/import, and cost."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from pipeline import batch
from pipeline.generate import GenerationConfig, load_template
from pipeline.generate.teacher import chat_body
from tests.fakes.batch_server import FakeBatches

VISITOR = "visitor-batch-01"


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake():
    with FakeBatches() as server:
        yield server


def client_for(fake: FakeBatches) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)


def gen_config(tmp_path: Path, n: int = 20, template: str = "reasoning", **kw) -> GenerationConfig:
    kw.setdefault("model", "gpt-4o-mini")
    return GenerationConfig(template=load_template(template), n=n, out=tmp_path / "run.jsonl", **kw)


# -- the request file ------------------------------------------------------------------------------
def test_request_file_lines_are_the_interactive_bodies(tmp_path: Path) -> None:
    config = gen_config(tmp_path, n=20)
    record = batch.build_generation(config, visitor=VISITOR, endpoint="OpenAI")
    rows = lines(record.requests_path)
    assert len(rows) == record.requests == 22  # 20 examples + 10% for parse/duplicate losses
    assert {r["method"] for r in rows} == {"POST"} and {r["url"] for r in rows} == {"/v1/chat/completions"}
    assert len({r["custom_id"] for r in rows}) == 22
    first = rows[0]
    assert first["custom_id"] == "gen-0-0"
    # Exactly what the interactive teacher sends for request 0 (same messages, schema, max_tokens).
    from pipeline.generate import steps
    from pipeline.generate.templates import request_schema, resolve_variables
    t = config.template
    variables = resolve_variables(t, {})
    messages = steps.request_messages(t, variables, seed=0, index=0, recent=[], sources=None, sample_size=3)
    assert first["body"] == chat_body("gpt-4o-mini", messages, temperature=0.9, max_tokens=t.max_tokens,
                                      schema=request_schema(t, 1), name=t.name)
    assert first["body"]["response_format"]["type"] == "json_schema"
    assert batch.load_batch(VISITOR, record.id).state == "built"


def test_lifecycle_submit_follow_download(tmp_path: Path, fake: FakeBatches) -> None:
    client = client_for(fake)
    record = batch.build_generation(gen_config(tmp_path, n=9), visitor=VISITOR, endpoint="fake")
    record = batch.submit(record, client)
    part = record.parts[0]
    assert part.batch_id and part.input_file_id and record.state == "validating"
    assert fake.files[part.input_file_id]["purpose"] == "batch"
    assert fake.batches[part.batch_id]["metadata"] == {"app": "distill-studio", "record": record.id, "kind": "generate"}
    assert record.expected_by() == part.created_at + 24 * 3600 or record.expected_by() == part.expires_at
    record = batch.refresh(record, client)
    assert record.state == "in_progress" and not record.finished()
    fake.finish(part.batch_id)
    record = batch.refresh(batch.load_batch(VISITOR, record.id), client)  # as after a restart
    assert record.state == "completed" and record.finished()
    assert record.counts() == {"total": 10, "completed": 10, "failed": 0} and record.progress() == 1.0
    assert len(lines(record.output_path(0))) == 10
