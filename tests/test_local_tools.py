"""Tool calling on the local backend (tiny model) through the real SDK: `tools` / `tool_choice`,
OpenAI `tool_calls` whose arguments fit the tool's parameters (constrained while decoding), streaming,
the response shapes against OpenAI's schema, and training on tool-call conversations."""

from __future__ import annotations

import json

import openai
import pytest
from backend_openapi import assert_matches

from pipeline.dataset.formats import instance_errors
from pipeline.finetune.session import start_job
from pipeline.local.dataset import parse_line
from pipeline.local.toolcalls import parse_reply, render_messages
from tests.test_finetune_local import base_model, follow

PARAMS = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
          "required": ["city", "unit"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": PARAMS}},
         {"type": "function", "function": {"name": "get_time", "parameters": {
             "type": "object", "properties": {"zone": {"type": "string", "maxLength": 8}}, "required": ["zone"],
             "additionalProperties": False}}}]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def call_example(i: int) -> dict:
    args = json.dumps({"city": f"City{i}", "unit": "celsius"})
    return {"messages": [{"role": "user", "content": f"Weather in City{i}?"},
                         {"role": "assistant", "tool_calls": [{"id": f"c{i}", "type": "function", "function": {
                             "name": "get_weather", "arguments": args}}]},
                         {"role": "tool", "tool_call_id": f"c{i}", "content": '{"temp": 20}'},
                         {"role": "assistant", "content": f"It is 20 degrees in City{i}."}], "tools": TOOLS}


def test_required_tool_call_fits_the_schema_and_openais_shape(tiny_backend) -> None:
    client = tiny_backend.client(max_retries=0)
    model = base_model(client)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=ASK, tools=TOOLS, tool_choice="required", max_tokens=80, seed=1)
    body = json.loads(raw.text)
    assert_matches(body, "CreateChatCompletionResponse")
    choice = body["choices"][0]
    if choice["finish_reason"] == "length":  # random weights may still be inside the JSON at the cap
        pytest.skip("the tiny model did not finish its call within max_tokens")
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"].startswith("call_") and call["type"] == "function"
    name = call["function"]["name"]
    schema = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)
    assert instance_errors(json.loads(call["function"]["arguments"]), schema) == []


def test_a_named_tool_choice_streams_indexed_tool_call_chunks(tiny_backend) -> None:
    client = tiny_backend.client(max_retries=0)
    chunks = list(client.chat.completions.create(
        model=base_model(client), messages=ASK, tools=TOOLS, stream=True, max_tokens=80, seed=2,
        tool_choice={"type": "function", "function": {"name": "get_time"}}))
    for c in chunks:
        assert_matches(json.loads(c.model_dump_json(exclude_unset=True)), "CreateChatCompletionStreamResponse")
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    if finish == ["length"]:
        pytest.skip("the tiny model did not finish its call within max_tokens")
    assert finish == ["tool_calls"]
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].index == 0 and calls[0].function.name == "get_time"
    assert set(json.loads(calls[0].function.arguments)) == {"zone"}


def test_tool_choice_none_and_bad_choices(tiny_backend) -> None:
    client = tiny_backend.client(max_retries=0)
    model = base_model(client)
    reply = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, tool_choice="none", max_tokens=5)
    assert reply.choices[0].message.tool_calls is None and reply.choices[0].finish_reason != "tool_calls"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, max_tokens=5,
                                       tool_choice={"type": "function", "function": {"name": "nope"}})
    assert info.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=ASK, tool_choice="auto", max_tokens=5)
    assert info.value.body["param"] == "tool_choice"


def test_a_conversation_with_earlier_calls_is_accepted(tiny_backend) -> None:
    client = tiny_backend.client(max_retries=0)
    history = call_example(1)["messages"][:3]
    reply = client.chat.completions.create(model=base_model(client), messages=history, tools=TOOLS, max_tokens=8)
    assert reply.choices[0].message is not None


def test_training_renders_tools_and_calls_as_serving_does() -> None:
    ex = call_example(3)
    pair = parse_line(ex, 1)
    assert pair["completion"][0]["content"] == "It is 20 degrees in City3."
    assert '<tool_call>{"name": "get_weather", "arguments": {"city": "City3", "unit": "celsius"}}</tool_call>' \
        in pair["prompt"][2]["content"] and "<tools>" in pair["prompt"][0]["content"]
    assert pair["prompt"] == render_messages(ex["messages"][:-1], TOOLS)
    ends_on_call = {**ex, "messages": ex["messages"][:2]}
    content, calls = parse_reply(parse_line(ends_on_call, 2)["completion"][0]["content"])
    assert content is None and json.loads(calls[0]["function"]["arguments"]) == {"city": "City3", "unit": "celsius"}


def test_fine_tuning_on_tool_call_conversations(tiny_backend) -> None:
    client = tiny_backend.client(max_retries=0)
    data = [call_example(i) for i in range(6)] + [{**call_example(i), "messages": call_example(i)["messages"][:2]}
                                                   for i in range(6, 12)]
    started = start_job(client, data, base_model(client), n_epochs=1, batch_size=4, suffix="tools", seed=1)
    snap = follow(client, started.job.id)
    assert snap.status == "succeeded", snap.error
