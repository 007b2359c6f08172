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
from pipeline.local.openapi import request_body
from pipeline.local.schemas import ChatCompletionRequest, parse

router = APIRouter()
DEFAULT_MAX_TOKENS = 1024  # a 135M model can loop; OpenAI's "until the context is full" would take minutes
MIN_TEMPERATURE = 1e-4  # below this, sampling is greedy (the same tokens, without float overflow)
DISCONNECT_POLL_S = 0.25  # how often a non-streaming request checks that its client is still there


def _messages(body: ChatCompletionRequest) -> list[dict]:
    # The chat template knows no 'developer' role; it is the system prompt by another name.
    return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]


def _json_hint(body: ChatCompletionRequest) -> str | None:
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_schema":
        return "Reply with one JSON object only, matching this JSON schema: " + json.dumps(fmt.json_schema.schema_)
    return "Reply with one JSON object only."


def _grammar(body: ChatCompletionRequest, engine: Any) -> str | None:
    """The grammar that constrains decoding to the requested JSON, or None (text, or no llguidance)."""
    if body.response_format is None or engine.grammar_tokenizer is None:
        return None
    try:
        grammar = grammar_for(body.response_format.model_dump(by_alias=True))
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


def _build_requests(body: ChatCompletionRequest, backend: Any) -> tuple[list[GenRequest], str | None]:
    """The engine requests for a validated body. CPU-heavy (chat template, tokenizer, grammar check):
    the route runs it in a worker thread, so one huge prompt does not stall every other request."""
    if not backend.has_model(body.model):
        raise APIError(404, f"The model '{body.model}' does not exist on this local backend. "
                       "GET /v1/models lists the base and the fine-tuned models.",
                       param="model", code="model_not_found")
    n = body.n or 1
    if n > 1 and body.stream:
        raise bad_request("Streaming with n > 1 is not supported by the local backend; use n=1.", "n")
    messages = _messages(body)
    hint = _json_hint(body)
    grammar = _grammar(body, backend.engine)
    if hint:
        messages = [{"role": "system", "content": hint}, *messages] if messages[0]["role"] != "system" else \
            [{"role": "system", "content": messages[0]["content"] + "\n" + hint}, *messages[1:]]
    prompt = backend.engine.encode_chat(messages)
    window = backend.engine.max_positions
    if len(prompt) >= window:
        raise bad_request(f"The messages take {len(prompt)} tokens; this model's context is {window} tokens.",
                          "messages", "context_length_exceeded")
    max_tokens = min(body.token_limit() or DEFAULT_MAX_TOKENS, window - len(prompt))
    temperature = 1.0 if body.temperature is None else body.temperature
    if temperature < MIN_TEMPERATURE:
        temperature = 0.0  # logits / 1e-300 overflow to inf and sampling failed (it took decoding down)
    top_p = 1.0 if body.top_p is None else body.top_p
    requests = [GenRequest(body.model, prompt, max_tokens, temperature, top_p,
                           None if body.seed is None else body.seed + i, body.stop_list(),
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


@router.post("/v1/chat/completions", openapi_extra=request_body(ChatCompletionRequest))
async def chat_completions(request: Request) -> Any:
    backend = request.app.state.backend
    body = await parse(request, ChatCompletionRequest)
    await backend.wait_model_ready()
    requests, json_hint = await asyncio.to_thread(_build_requests, body, backend)
    loop = asyncio.get_running_loop()
    for gen in requests:
        gen.loop, gen.out = loop, asyncio.Queue()
        backend.engine.submit(gen)
    completion_id, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
    base = {"id": completion_id, "created": created, "model": body.model, "system_fingerprint": "local"}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return _DecodingStream(requests, _stream(requests[0], base, include_usage))
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


class _DecodingStream(StreamingResponse):
    """An SSE response that cancels its decoding however it ends. The generator's own `finally` does
    not run when the client leaves before the first chunk (an unstarted generator has no frame)."""

    def __init__(self, requests: list[GenRequest], content: Any):
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.requests = requests

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            for gen in self.requests:
                gen.cancelled = True


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
