"""The one results-line parser on realistic lines from OpenAI's Batch API, Azure OpenAI's global batch
and vLLM's `run-batch` (good lines, and each one's ways of saying a request failed)."""

from __future__ import annotations

import json

import pytest

from pipeline.batch import parse_result_line
from pipeline.generate.teacher import reply_of

ANSWER = '{"question": "What is 6 x 7?", "reasoning": "Six sevens.", "final_answer": "42"}'

OPENAI_OK = {
    "id": "batch_req_6745b8a5a0b081908ebd4e5a3f4d8f1c", "custom_id": "gen-0-3",
    "response": {"status_code": 200, "request_id": "a3b1e8c2d9f04e7d8b6a5c4d3e2f1a0b", "body": {
        "id": "chatcmpl-AXd4Qz8ZlSvh3zE5KqB2n9yQ0Yx1W", "object": "chat.completion", "created": 1732624261,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 412, "completion_tokens": 31, "total_tokens": 443,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "system_fingerprint": "fp_0705bf87c0"}},
    "error": None}

AZURE_OK = {
    "custom_id": "gen-0-4",
    "response": {"body": {
        "choices": [{"content_filter_results": {"hate": {"filtered": False, "severity": "safe"},
                                                "self_harm": {"filtered": False, "severity": "safe"},
                                                "sexual": {"filtered": False, "severity": "safe"},
                                                "violence": {"filtered": False, "severity": "safe"}},
                     "finish_reason": "stop", "index": 0, "logprobs": None,
                     "message": {"content": ANSWER, "role": "assistant"}}],
        "created": 1724796473, "id": "chatcmpl-A10yPiYAgGDAvRhNIBLiKoaS4YIDa", "model": "gpt-4o-2024-05-13",
        "object": "chat.completion",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
            "hate": {"filtered": False, "severity": "safe"}, "jailbreak": {"filtered": False, "detected": False}}}],
        "system_fingerprint": "fp_a9bfe9d51d",
        "usage": {"completion_tokens": 30, "prompt_tokens": 400, "total_tokens": 430}},
        "request_id": "6a2b9e4c-7d1f-4a3b-9c8e-5f6a7b8c9d0e", "status_code": 200},
    "error": None}

VLLM_OK = {
    "id": "vllm-4a1c0e5f8b8d4f0ba7c0c3e4e0d6b1a2", "custom_id": "gen-0-5",
    "response": {"status_code": 200, "request_id": "vllm-batch-2f9c4a7e8e1b4b9d9f2b6c1e0a3d5f7c", "body": {
        "id": "chatcmpl-8c5d3e1f2a4b4c6d9e0f1a2b3c4d5e6f", "object": "chat.completion", "created": 1732000000,
        "model": "meta-llama/Meta-Llama-3-8B-Instruct",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER, "tool_calls": []},
                     "logprobs": None, "finish_reason": "stop", "stop_reason": None}],
        "usage": {"prompt_tokens": 405, "total_tokens": 437, "completion_tokens": 32, "prompt_tokens_details": None},
        "prompt_logprobs": None}},
    "error": None}


@pytest.mark.parametrize("row", [OPENAI_OK, AZURE_OK, VLLM_OK], ids=["openai", "azure", "vllm"])
def test_good_lines_give_the_completion_the_interactive_path_reads(row: dict) -> None:
    line = parse_result_line(json.dumps(row))
    assert line.ok and line.custom_id == row["custom_id"] and line.reason is None
    reply = reply_of(line.completion)  # the interactive path's own reader of a completion
    assert reply.text == ANSWER and reply.finish_reason == "stop" and reply.input_tokens >= 400


def test_azure_body_sent_as_a_json_string() -> None:
    row = json.loads(json.dumps(AZURE_OK))
    row["response"]["body"] = json.dumps(row["response"]["body"])
    line = parse_result_line(json.dumps(row))
    assert line.ok and reply_of(line.completion).text == ANSWER


@pytest.mark.parametrize(("row", "reason"), [
    # OpenAI error file: the request ran and was refused
    ({"id": "batch_req_1", "custom_id": "a", "response": {"status_code": 400, "request_id": "r", "body": {
        "error": {"message": "Invalid 'messages': empty array.", "type": "invalid_request_error",
                  "param": "messages", "code": "empty_array"}}}, "error": None},
     "HTTP 400: Invalid 'messages': empty array. (empty_array)"),
    # OpenAI: expired before it ran
    ({"id": "batch_req_2", "custom_id": "b", "response": None, "error": {
        "code": "batch_expired", "message": "This request could not be executed before the completion window expired."}},
     "This request could not be executed before the completion window expired. (batch_expired)"),
    # Azure: content filter
    ({"custom_id": "c", "response": {"status_code": 400, "request_id": "x", "body": {"error": {
        "code": "content_filter", "message": "The response was filtered due to the prompt triggering "
        "Azure OpenAI's content management policy.", "param": "prompt", "type": None,
        "innererror": {"code": "ResponsibleAIPolicyViolation"}}}}, "error": None},
     "HTTP 400: The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
     "(content_filter)"),
    # vLLM: an error response body
    ({"id": "vllm-1", "custom_id": "d", "response": {"status_code": 400, "request_id": "vllm-batch-1", "body": {
        "object": "error", "message": "This model's maximum context length is 8192 tokens.",
        "type": "BadRequestError", "param": None, "code": 400}}, "error": None},
     "HTTP 400: This model's maximum context length is 8192 tokens. (BadRequestError)"),
    # vLLM: an error string with no body
    ({"id": "vllm-2", "custom_id": "e", "response": {"status_code": 500, "request_id": "vllm-batch-2", "body": None},
      "error": "Request failed: engine dead"}, "Request failed: engine dead"),
])
def test_failed_lines_say_why(row: dict, reason: str) -> None:
    line = parse_result_line(json.dumps(row))
    assert not line.ok and line.completion is None
    assert line.custom_id == row["custom_id"] and line.reason == reason


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"custom_id": "x", "response": {"status_code": 200, "body": {"id": "c", "object": "chat.completion"}}}',
     "the body is not a chat completion"),
    ('{"custom_id": "x", "response": {"status_code": 200, "body": null}, "error": null}', "no response body"),
])
def test_unparsable_lines_are_failures_not_crashes(text: str, reason: str) -> None:
    line = parse_result_line(text)
    assert not line.ok and reason in (line.reason or "")
