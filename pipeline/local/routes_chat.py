"""POST /v1/chat/completions: non-streaming and SSE streaming, OpenAI's shapes."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pipeline.local.constrain import ConstraintError, OutputConstraint, check_grammar, grammar_for
from pipeline.local.engine import GenRequest
from pipeline.local.errors import APIError, bad_request

router = APIRouter()
DEFAULT_MAX_TOKENS = 1024  # a 135M model can loop; OpenAI's "until the context is full" would take minutes
DISCONNECT_POLL_S = 0.25  # how often a non-streaming request checks that its client is still there
ROLES = {"system", "developer", "user", "assistant", "tool"}


def _text(content: Any, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "input_text"):
                raise bad_request("This local model reads text only; send text content parts.",
                                  f"messages[{index}].content")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise bad_request("A message's content must be a string or a list of text parts.", f"messages[{index}].content")


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of {role, content} objects.", "messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise bad_request(f"messages[{i}] needs a role among {', '.join(sorted(ROLES))}.", f"messages[{i}].role")
        role = "system" if message["role"] == "developer" else message["role"]
        out.append({"role": role, "content": _text(message.get("content"), i)})
    return out


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise bad_request(f"'{name}' must be a number from {low} to {high}.", name)
    return float(value)


def _json_hint(body: dict) -> str | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return "Reply with one JSON object only, matching this JSON schema: " + json.dumps(schema)
    if fmt.get("type") == "json_object":
        return "Reply with one JSON object only."
    raise bad_request("response_format.type must be text, json_object or json_schema.", "response_format")


def _grammar(body: dict, engine: Any) -> str | None:
    """The grammar that constrains decoding to the requested JSON, or None (text, or no llguidance)."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or engine.grammar_tokenizer is None:
        return None
    try:
        grammar = grammar_for(fmt)
        if grammar is not None:
            check_grammar(grammar, engine.grammar_tokenizer)
    except ConstraintError as exc:
        raise bad_request(str(exc), "response_format") from None
    return grammar


def _extract_json(text: str) -> str:
    """For a reply decoded without a grammar: the first balanced {...} that parses, else the text."""
    start = text.find("{")
    while start >= 0:
        depth = 0
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                try:
                    json.loads(text[start: end + 1])
                    return text[start: end + 1]
                except ValueError:
                    break
        start = text.find("{", start + 1)
    return text


def _build_requests(body: dict, backend: Any) -> tuple[list[GenRequest], str | None]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required.", "model")
    if not backend.has_model(model):
        raise APIError(404, f"The model '{model}' does not exist on this local backend. "
                       "GET /v1/models lists the base and the fine-tuned models.",
                       param="model", code="model_not_found")
    messages = _messages(body)
    hint = _json_hint(body)
    grammar = _grammar(body, backend.engine)
    if hint:
        messages = [{"role": "system", "content": hint}, *messages] if messages[0]["role"] != "system" else \
            [{"role": "system", "content": messages[0]["content"] + "\n" + hint}, *messages[1:]]
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise bad_request("'stop' must be a string or a list of up to 4 strings.", "stop")
    max_tokens = next((body[k] for k in ("max_completion_tokens", "max_tokens") if body.get(k) is not None),
                      DEFAULT_MAX_TOKENS)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise bad_request("'max_tokens' must be a positive integer.", "max_tokens")
    n = body.get("n") or 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 8:
        raise bad_request("'n' must be an integer from 1 to 8.", "n")
    if n > 1 and body.get("stream"):
        raise bad_request("Streaming with n > 1 is not supported by the local backend; use n=1.", "n")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad_request("'seed' must be an integer.", "seed")
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    prompt = backend.engine.encode_chat(messages)
    window = backend.engine.max_positions
    if len(prompt) >= window:
        raise bad_request(f"The messages take {len(prompt)} tokens; this model's context is {window} tokens.",
                          "messages", "context_length_exceeded")
    max_tokens = min(max_tokens, window - len(prompt))
    requests = [GenRequest(model, prompt, max_tokens, temperature, top_p,
                           None if seed is None else seed + i, stop,
                           OutputConstraint(backend.engine.grammar_tokenizer, grammar) if grammar else None)
                for i in range(n)]
    return requests, hint


def _usage(requests: list[GenRequest]) -> dict:
    prompt = len(requests[0].prompt_ids)
    completion = sum(len(r.generated) for r in requests)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _collect(request: GenRequest) -> str:
    parts = []
    while True:
        kind, value = await request.out.get()
        if kind == "delta":
            parts.append(value)
        elif kind == "error":
            raise APIError(500, f"Generation failed: {value}")
        else:
            return "".join(parts)


async def _collect_while_connected(requests: list[GenRequest], http: Request) -> list[str] | None:
    """Every choice's text, or None as soon as the client hangs up (a timed-out or cancelled SDK call)
    so its decoding stops instead of holding the CPU the other requests share."""
    texts = asyncio.ensure_future(asyncio.gather(*(_collect(gen) for gen in requests)))
    while True:
        done, _ = await asyncio.wait({texts}, timeout=DISCONNECT_POLL_S)
        if done:
            return texts.result()
        if await http.is_disconnected():
            texts.cancel()
            return None


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Any:
    backend = request.app.state.backend
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    await backend.wait_model_ready()
    requests, json_hint = _build_requests(body, backend)
    loop = asyncio.get_running_loop()
    for gen in requests:
        gen.loop, gen.out = loop, asyncio.Queue()
        backend.engine.submit(gen)
    completion_id, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
    base = {"id": completion_id, "created": created, "model": body["model"], "system_fingerprint": "local"}
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_stream(requests[0], base, include_usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    try:
        texts = await _collect_while_connected(requests, request)
    finally:
        for gen in requests:
            gen.cancelled = True  # a client that went away stops using the CPU
    if texts is None:
        return Response(status_code=499)  # nobody is listening; the status only shows in logs
    choices = [{"index": i, "finish_reason": gen.finish_reason, "logprobs": None,
                "message": {"role": "assistant", "content": _extract_json(text) if json_hint else text,
                            "refusal": None, "annotations": []}}
               for i, (gen, text) in enumerate(zip(requests, texts, strict=True))]
    return JSONResponse({**base, "object": "chat.completion", "choices": choices, "usage": _usage(requests)})


async def _stream(gen: GenRequest, base: dict, include_usage: bool):
    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> str:
        obj = {**base, "object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}] if choices else []}
        if include_usage:
            obj["usage"] = usage
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        while True:
            kind, value = await gen.out.get()
            if kind == "delta":
                yield chunk({"content": value})
            elif kind == "error":
                err = {"error": {"message": f"Generation failed: {value}", "type": "server_error",
                                 "param": None, "code": None}}
                yield f"data: {json.dumps(err)}\n\n"
                return
            else:
                yield chunk({}, value)
                break
        if include_usage:
            yield chunk({}, usage=_usage([gen]), choices=False)
        yield "data: [DONE]\n\n"
    finally:
        gen.cancelled = True
