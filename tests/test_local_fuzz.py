"""Schemathesis fuzzes every operation of the local backend's own OpenAPI document (tiny model):
no 5xx for any input, and every answer matches the documented schema (OpenAI's shapes).

A fixed example budget per operation and a fixed seed keep it CI-sized and repeatable.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_local_batches import request_line, start, wait

EXAMPLES = 25  # per operation; ~15 operations


@pytest.fixture(scope="module")
def fuzz_backend(tmp_path_factory):
    from pipeline.local.runtime import start_server

    handle = start_server(root=tmp_path_factory.mktemp("fuzz-backend"), tiny=True)
    handle.wait_ready(timeout=600)
    # A finished batch (with output and error files), so the lists the fuzzer reads hold real ones.
    client = handle.client()
    wait(client, start(client, [request_line("ok"), request_line("bad", temperature=9)]).id)
    yield handle
    handle.stop()


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations(backend) -> list:
    schema = schemathesis.openapi.from_url(backend.base_url.removesuffix("/v1") + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_reaches_a_5xx_and_answers_match_the_document(fuzz_backend, mode):
    """Every operation, valid and invalid inputs. (schemathesis's pytest plugin does not run on this
    pytest, so each operation's strategy is driven by hypothesis here.)"""
    root, auth = fuzz_backend.base_url.removesuffix("/v1"), {"Authorization": f"Bearer {fuzz_backend.api_key}"}
    failures: dict[str, str] = {}
    operations = _operations(fuzz_backend)
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def fuzz(case):
            case.call_and_validate(base_url=root, headers=auth, checks=CHECKS, timeout=120)

        try:
            fuzz()
        except Unsatisfiable:  # nothing to make invalid (GET /health takes no input)
            assert mode == GenerationMode.NEGATIVE
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = str(exc)[:2000]
    assert len(operations) >= 15
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_every_operation_documents_its_answer(fuzz_backend):
    from pipeline.local.openapi import RESPONSES

    doc = httpx.get(fuzz_backend.base_url.removesuffix("/v1") + "/openapi.json", timeout=30).json()
    operations = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert operations - {("get", "/health")} == set(RESPONSES)
