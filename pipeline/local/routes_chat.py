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
from pipeline.local.toolcalls import allowed_tools, call_grammar, parse_reply, render_messages

router = APIRouter()
DEFAULT_MAX_TOKENS = 1024  # a 135M model can loop; OpenAI's "until the context is full" would take minutes
MIN_TEMPERATURE = 1e-4  # below this, sampling is greedy (the same tokens, without float overflow)
DISCONNECT_POLL_S = 0.25  # how often a non-streaming request checks that its client is still there


def _messages(body: ChatCompletionRequest) -> list[dict]:
    # The chat template knows no 'developer' role (render_messages makes it the system prompt), nor
    # tools: their definitions, earlier calls and results become text as in training (toolcalls.py).
    raw = [{"role": m.role, "content": m.text(), "tool_calls": (m.model_extra or {}).get("tool_calls")}
           for m in body.messages]
    return render_messages(raw, _tool_dicts(body) if body.tool_choice != "none" else None)


def _tool_dicts(body: ChatCompletionRequest) -> list[dict]:
    return [t.model_dump(exclude_none=True) for t in body.tools or []]


def _tool_grammar(body: ChatCompletionRequest, engine: Any) -> str | None:
    """The grammar for a reply that may (or must) call one of the request's tools; None without tools."""
    if body.tool_choice is not None and not body.tools:
        raise bad_request("'tool_choice' is only allowed when 'tools' are specified.", "tool_choice")
    if not body.tools:
        return None
    choice = body.tool_choice.model_dump() if hasattr(body.tool_choice, "model_dump") else body.tool_choice
    allowed, required = allowed_tools(_tool_dicts(body), choice or "auto")
    if isinstance(choice, dict) and not allowed:
        raise bad_request(f"tool_choice names '{choice['function']['name']}', which is not in 'tools'.", "tool_choice")
    if not allowed or engine.grammar_tokenizer is None:
        return None
    grammar = call_grammar(allowed, required)
    try:
        check_grammar(grammar, engine.grammar_tokenizer)
    except ConstraintError as exc:
        raise bad_request(f"A tool's parameters cannot be followed by this local backend: {exc}", "tools") from None
    return grammar


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
    grammar = _tool_grammar(body, backend.engine) or _grammar(body, backend.engine)
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
    try:
        requests = [GenRequest(body.model, prompt, max_tokens, temperature, top_p,
                               None if body.seed is None else body.seed + i, body.stop_list(),
                               OutputConstraint(backend.engine.grammar_tokenizer, grammar) if grammar else None)
                    for i in range(n)]
    except ConstraintError as exc:  # a schema the grammar check let through but the matcher refuses
        raise bad_request(f"This local backend cannot follow that schema: {exc}",
                          "tools" if body.tools and body.tool_choice != "none" else "response_format") from None
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


async def _submit(body: ChatCompletionRequest, backend: Any, low_priority: bool = False
                  ) -> tuple[list[GenRequest], str | None, dict]:
    """Hand a validated body's requests to the engine: (requests, JSON hint, the answer's common fields)."""
    await backend.wait_model_ready()
    requests, json_hint = await asyncio.to_thread(_build_requests, body, backend)
    loop = asyncio.get_running_loop()
    for gen in requests:
        gen.loop, gen.out, gen.low_priority = loop, asyncio.Queue(), low_priority
        backend.engine.submit(gen)
    base = {"id": f"chatcmpl-{secrets.token_hex(12)}", "created": int(time.time()), "model": body.model,
            "system_fingerprint": "local"}
    return requests, json_hint, base


def _completion(body: ChatCompletionRequest, base: dict, requests: list[GenRequest], texts: list[str],
                json_hint: str | None) -> dict:
    tools_on = bool(body.tools) and body.tool_choice != "none"
    choices = [_choice(i, gen, text, json_hint, tools_on) for i, (gen, text) in enumerate(zip(requests, texts, strict=True))]
    return {**base, "object": "chat.completion", "choices": choices, "usage": _usage(requests)}


async def complete(body: ChatCompletionRequest, backend: Any, *, low_priority: bool = False) -> dict:
    """The non-streaming answer to a validated body, as the route answers it: what a batch request
    gets (at low priority), so a batch line's body equals the interactive endpoint's answer."""
    if body.stream:
        raise bad_request("A request in a batch cannot stream; leave 'stream' out of its body.", "stream")
    requests, json_hint, base = await _submit(body, backend, low_priority)
    try:
        texts = await asyncio.gather(*(_collect(gen) for gen in requests))
    finally:
        for gen in requests:
            gen.cancelled = True  # a cancelled batch stops using the CPU
    return _completion(body, base, requests, texts, json_hint)


@router.post("/v1/chat/completions", openapi_extra=request_body(ChatCompletionRequest))
async def chat_completions(request: Request) -> Any:
    backend = request.app.state.backend
    body = await parse(request, ChatCompletionRequest)
    requests, json_hint, base = await _submit(body, backend)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        tools_on = bool(body.tools) and body.tool_choice != "none"
        return _DecodingStream(requests, _stream(requests[0], base, include_usage, tools_on))
    try:
        texts = await _collect_while_connected(requests, request)
    finally:
        for gen in requests:
            gen.cancelled = True  # a client that went away stops using the CPU
    if texts is None:
        return Response(status_code=499)  # nobody is listening; the status only shows in logs
    return JSONResponse(_completion(body, base, requests, texts, json_hint))


def _choice(i: int, gen: GenRequest, text: str, json_hint: str | None, tools_on: bool) -> dict:
    # Only unconstrained text is searched for its JSON: a constrained reply is JSON as decoded, and cut off
    # at max_tokens it must come back as it is (the search found a "{}" inside its last string).
    unconstrained = json_hint and gen.constraint is None
    message: dict[str, Any] = {"role": "assistant", "content": _extract_json(text) if unconstrained else text,
                               "refusal": None, "annotations": []}
    finish = gen.finish_reason
    if tools_on:
        content, calls = parse_reply(text)
        if calls:
            message |= {"content": content, "tool_calls": calls}
            finish = "tool_calls"
    return {"index": i, "finish_reason": finish, "logprobs": None, "message": message}


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


def _tool_chunks(text: str, finish: str) -> list[tuple[dict, str | None]]:
    """The deltas of a reply decoded with tools: the calls (OpenAI's indexed tool_calls chunks), or the text."""
    content, calls = parse_reply(text)
    if not calls:
        return [({"content": text}, None), ({}, finish)]
    out: list[tuple[dict, str | None]] = [({"content": content}, None)] if content else []
    out += [({"tool_calls": [{"index": i, **call}]}, None) for i, call in enumerate(calls)]
    return [*out, ({}, "tool_calls")]


async def _stream(gen: GenRequest, base: dict, include_usage: bool, tools_on: bool = False):
    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> str:
        obj = {**base, "object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}] if choices else []}
        if include_usage:
            obj["usage"] = usage
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        held: list[str] = []  # with tools, the reply is read whole: a call or text (see _tool_chunks)
        while True:
            kind, value = await gen.out.get()
            if kind == "delta" and tools_on:
                held.append(value)
            elif kind == "delta":
                yield chunk({"content": value})
            elif kind == "error":
                err = {"error": {"message": f"Generation failed: {value}", "type": "server_error",
                                 "param": None, "code": None}}
                yield f"data: {json.dumps(err)}\n\n"
                return
            else:
                for delta, finish in _tool_chunks("".join(held), value) if tools_on else [({}, value)]:
                    yield chunk(delta, finish)
                break
        if include_usage:
            yield chunk({}, usage=_usage([gen]), choices=False)
        yield "data: [DONE]\n\n"
    finally:
        gen.cancelled = True
