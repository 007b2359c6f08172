"""Tools in the Chat panes: the visitor's `tools` and `tool_choice`, tool calls and results shown as
readable lines, which calls still wait for a result, and the messages a model is sent.

A pane's history keeps OpenAI's own shapes (an assistant message with `tool_calls`, a `tool` message
with the `tool_call_id` it answers), so exports and re-sends carry them unchanged; only what a
Chatbot shows is turned into words: `🔧 Calls get_weather(city="Paris")`, then `↩️ get_weather returned …`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pipeline.errors import InputError
from pipeline.generate.tasks import parse_tools, sample_tools

TOOL_CHOICES = ("auto", "none", "required")
#: A call or result longer than this on one line is shown one argument (or JSON line) per line.
ONE_LINE_CHARS = 70


def chat_tools(text: str | None) -> list[dict] | None:
    """The visitor's tools box as OpenAI `tools` (JSON, or a sample's name); None when it is empty."""
    if not (text or "").strip():
        return None
    return parse_tools(text or "")


def check_tool_choice(choice: str | None) -> str:
    if choice not in TOOL_CHOICES:
        raise InputError(f"Tool choice must be one of {', '.join(TOOL_CHOICES)}.")
    return choice


def sample_tools_json(name: str) -> str:
    """A sample's tools as the pretty JSON the tools box shows (the visitor can edit it)."""
    if name not in sample_tools():
        raise InputError(f"Pick one of the sample tools: {', '.join(sample_tools())}.")
    return json.dumps(parse_tools(name), indent=2, ensure_ascii=False)


def tools_summary(tools: list[dict] | None) -> str:
    if not tools:
        return "No tools: the models answer in text."
    names = [t.get("function", {}).get("name", "?") for t in tools]
    return f"{len(names)} tool{'s' if len(names) != 1 else ''}: " + ", ".join(f"`{n}`" for n in names)


# ---- readable lines -------------------------------------------------------------------------
def _value(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def call_text(call: dict) -> str:
    """One call as `🔧 Calls name(arg=value, ...)`; long calls one argument a line; arguments that are not (yet)
    JSON (a stream still arriving, a model's broken output) are shown as they are."""
    fn = call.get("function") or {}
    name, raw = fn.get("name") or "?", fn.get("arguments") or ""
    try:
        args = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        return f"🔧 Calls `{name}({raw}…)`" if args is None and "`" not in raw else f"🔧 Calls {name}: {raw}"
    parts = [f"{k}={_value(v)}" for k, v in args.items()]
    line = f"{name}({', '.join(parts)})"
    if len(line) <= ONE_LINE_CHARS and "`" not in line:
        return f"🔧 Calls `{line}`"
    body = "".join(f"    {p},\n" for p in parts)
    return f"🔧 Calls\n```python\n{name}(\n{body})\n```"


def result_text(name: str, content: str) -> str:
    """A tool result as `↩️ name returned …`; JSON results pretty-printed when they are long."""
    try:
        value = json.loads(content)
    except (json.JSONDecodeError, TypeError):
        value = None
    if isinstance(value, dict | list):
        compact = _value(value)
        if len(compact) <= ONE_LINE_CHARS and "`" not in compact:
            return f"↩️ **{name}** returned `{compact}`"
        return f"↩️ **{name}** returned\n```json\n{json.dumps(value, indent=2, ensure_ascii=False)}\n```"
    return f"↩️ **{name}** returned: {content}"


def readable(message: dict) -> str:
    """What a message says, in words: its text, then its calls; a tool result with its tool's name."""
    if message.get("role") == "tool":
        return result_text(message.get("name") or "tool", str(message.get("content") or ""))
    text = str(message.get("content") or "")
    calls = [call_text(c) for c in message.get("tool_calls") or []]
    return "\n\n".join(x for x in (text, *calls) if x.strip())


def shown(message: dict) -> dict:
    """The Chatbot bubble of a message: tool results sit on the visitor's side (the visitor played the tool)."""
    return {"role": "user" if message["role"] == "tool" else message["role"], "content": readable(message)}


# ---- calls waiting for a result ---------------------------------------------------------------
def pending_calls(history: Sequence[dict]) -> list[dict]:
    """The last assistant message's calls with no tool result yet, in order (empty if none wait).
    Only the latest turn counts: a call the visitor never answered before moving on stays unanswered."""
    answered: set[str] = set()
    for m in reversed(history):
        if m.get("role") == "tool":
            answered.add(str(m.get("tool_call_id")))
            continue
        if m.get("role") == "assistant" and m.get("tool_calls") and not m.get("error"):
            return [c for c in m["tool_calls"] if str(c.get("id")) not in answered]
        return []
    return []


def tool_message(call: dict, result: str) -> dict:
    return {"role": "tool", "tool_call_id": call.get("id"), "name": (call.get("function") or {}).get("name"),
            "content": result}


def request_messages(history: Sequence[dict]) -> list[dict]:
    """A pane's real turns as a model is sent them. Calls the visitor never answered are left out (OpenAI
    refuses an assistant call without its tool message), and a tool message carries only the id it answers."""
    answered = {str(m.get("tool_call_id")) for m in history if m.get("role") == "tool"}
    out: list[dict] = []
    for m in history:
        if m.get("error"):
            continue
        if m["role"] == "tool":
            out.append({"role": "tool", "tool_call_id": m.get("tool_call_id"), "content": str(m.get("content") or "")})
            continue
        msg: dict = {"role": m["role"], "content": m.get("content")}
        calls = [c for c in m.get("tool_calls") or [] if str(c.get("id")) in answered]
        if calls:
            msg["tool_calls"] = calls
        elif m.get("tool_calls") and not (m.get("content") or "").strip():
            continue  # only unanswered calls: nothing to send
        if msg["content"] is None:
            msg["content"] = None if calls else ""
        out.append(msg)
    return out
