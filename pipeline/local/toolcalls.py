"""Tool calling on the local model: one text format for training and serving, and its grammar.

SmolLM2's chat template has no tool support, so tools and calls become text the model can learn, in
the widely used Hermes style: the tool definitions go into the system prompt inside <tools></tools>;
an assistant call is `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`; a tool's result is a
`tool` turn. Training (pipeline.local.dataset) and serving (routes_chat) both render through
`render_messages`, so the fine-tuned model sees at serving time exactly what it was trained on.

While decoding, a grammar makes a call well formed: its name is one of the tools and its arguments fit
that tool's parameter schema. With tool_choice "auto" the reply is either such a call or text that does
not start with "<"; "required" or a named function allows only the call.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from typing import Any

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_CALL = re.compile(re.escape(CALL_OPEN) + r"\s*(.*?)\s*" + re.escape(CALL_CLOSE), re.DOTALL)
#: The same separators as response_format's grammar: the text reads like json.dumps.
_JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def tools_prompt(tools: list[dict]) -> str:
    return ("You can call these tools (OpenAI function definitions):\n<tools>\n"
            + "\n".join(json.dumps(t.get("function", t), ensure_ascii=False) for t in tools)
            + "\n</tools>\nTo call one, reply with only " + CALL_OPEN
            + '{"name": <tool name>, "arguments": <JSON object>}' + CALL_CLOSE
            + ". Otherwise answer the user directly.")


def call_text(tool_calls: list[Any]) -> str:
    """An assistant message's tool_calls as the text the model writes."""
    out = []
    for call in tool_calls:
        fn = call.get("function") or {}
        args = fn.get("arguments")
        with contextlib.suppress(json.JSONDecodeError):  # kept as written; validation reports it
            args = json.loads(args) if isinstance(args, str) else (args or {})
        out.append(CALL_OPEN + json.dumps({"name": fn.get("name"), "arguments": args}, ensure_ascii=False)
                   + CALL_CLOSE)
    return "\n".join(out)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def render_messages(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """Chat messages ({role, content} strings only) for the chat template, tools and calls as text."""
    out: list[dict] = []
    for m in messages:
        role = "system" if m.get("role") == "developer" else m.get("role")
        content = _text(m.get("content"))
        if role == "assistant" and m.get("tool_calls"):
            content = "\n".join(x for x in (content.strip(), call_text(m["tool_calls"])) if x)
        out.append({"role": role, "content": content})
    if tools:
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"].rstrip() + "\n\n" + tools_prompt(tools)}
        else:
            out.insert(0, {"role": "system", "content": tools_prompt(tools)})
    return out


def allowed_tools(tools: list[dict], tool_choice: Any) -> tuple[list[dict], bool]:
    """(the tools a reply may call, whether it must call one) for OpenAI's tool_choice."""
    if tool_choice == "none":
        return [], False
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        return [t for t in tools if t["function"]["name"] == name], True
    return tools, tool_choice == "required"


def call_grammar(tools: list[dict], required: bool) -> str:
    """A lark grammar (llguidance) for a call to one of `tools`, or (not required) plain text."""
    options = [{"type": "object", "properties": {
        "name": {"const": t["function"]["name"]},
        "arguments": t["function"].get("parameters") or {"type": "object"}},
        "required": ["name", "arguments"], "additionalProperties": False} for t in tools]
    schema = {"anyOf": options, "x-guidance": _JSON_STYLE} if len(options) > 1 else {**options[0],
                                                                                      "x-guidance": _JSON_STYLE}
    lines = [f'call: "{CALL_OPEN}" body "{CALL_CLOSE}"', f"body: %json {json.dumps(schema)}"]
    if required:
        return "\n".join(["start: call", *lines])
    return "\n".join(["start: call | text", "text: /[^<](.|\\n)*/", *lines])


def parse_reply(text: str) -> tuple[str | None, list[dict]]:
    """(content, OpenAI tool_calls) from what the model wrote; calls that are not JSON stay text."""
    calls = []
    for match in _CALL.finditer(text):
        try:
            obj = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            continue
        args = obj.get("arguments")
        calls.append({"id": "call_" + secrets.token_hex(12), "type": "function",
                      "function": {"name": obj["name"],
                                   "arguments": json.dumps(args if args is not None else {}, ensure_ascii=False)}})
    if not calls:
        return text, []
    rest = _CALL.sub("", text).strip()
    return rest or None, calls
