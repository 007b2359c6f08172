"""Reading a fine-tuning file into prompt/completion pairs, with errors that name the line.

Loss on the completion only: each chat example becomes `prompt` = the messages before the last
assistant turn and `completion` = that turn (a tool call included: tools, calls and tool results are
rendered as text by pipeline.local.toolcalls, as serving renders them); TRL's SFTTrainer then masks the prompt tokens (SmolLM2's
chat template has no `{% generation %}` markers, so `assistant_only_loss` is not available). Old
`{"prompt", "completion"}` string data is accepted and converted to one user turn + one answer.
"""

from __future__ import annotations

import json
import math

from pipeline import config
from pipeline.local.toolcalls import render_messages

MIN_EXAMPLES = 10  # OpenAI's minimum; fewer examples rarely teach anything
#: The message roles the local backend trains on (not the app's model roles, pipeline.endpoints.ROLES).
MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool")


class DataError(ValueError):
    """The file cannot be used; the message names the line and what to fix."""


def _content(value: object, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "".join(str(p.get("text", "")) for p in value)
    raise DataError(f"{where}: 'content' must be a string.")


def parse_line(obj: object, lineno: int) -> dict:
    """One JSONL object -> {"prompt": [messages], "completion": [assistant message]}."""
    where = f"Line {lineno}"
    if not isinstance(obj, dict):
        raise DataError(f"{where} is not a JSON object; each line must be {{\"messages\": [...]}}.")
    if "messages" not in obj and isinstance(obj.get("prompt"), str) and isinstance(obj.get("completion"), str):
        obj = {"messages": [{"role": "user", "content": obj["prompt"]},
                            {"role": "assistant", "content": obj["completion"]}]}
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where} has no 'messages' list (chat format: {{\"messages\": [{{\"role\", \"content\"}}, ...]}}).")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in MESSAGE_ROLES:
            raise DataError(f"{where}, message {i + 1}: 'role' must be one of {', '.join(MESSAGE_ROLES)}.")
        calls = message.get("tool_calls") if message["role"] == "assistant" else None
        if calls is not None and not (isinstance(calls, list) and all(isinstance(c, dict) for c in calls)):
            raise DataError(f"{where}, message {i + 1}: 'tool_calls' must be a list of calls.")
        if not (calls and message.get("content") is None):
            _content(message.get("content"), f"{where}, message {i + 1}")
    tools = obj.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(
            isinstance(t, dict) and isinstance(t.get("function"), dict) for t in tools)):
        raise DataError(f"{where}: 'tools' must be a list of {{\"type\": \"function\", \"function\": {{...}}}}.")
    # Tool definitions, calls and results become text the way serving renders them (toolcalls.py).
    clean = render_messages(messages, tools)
    last = max((i for i, m in enumerate(clean) if m["role"] == "assistant"), default=-1)
    if last < 0:
        raise DataError(f"{where} has no assistant message to learn from.")
    if last == 0:
        raise DataError(f"{where}: the assistant message needs a user (or system) message before it.")
    if not clean[last]["content"].strip():
        raise DataError(f"{where}: the last assistant message is empty.")
    return {"prompt": clean[:last], "completion": [clean[last]]}


def read_examples(data: bytes, *, minimum: int = MIN_EXAMPLES) -> list[dict]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError("The file is not UTF-8 text; save it as UTF-8 JSONL.") from exc
    examples = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise DataError(f"Line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}).") from None
        examples.append(parse_line(obj, lineno))
    if len(examples) < minimum:
        raise DataError(f"The file has {len(examples)} examples; fine-tuning needs at least {minimum}.")
    return examples


def count_lines(data: bytes) -> int:
    return sum(1 for line in data.splitlines() if line.strip())


def auto_epochs(n_examples: int) -> int:
    """Few examples need more passes. Half the passes of the first rule (batch 4, 3-8 epochs, 180/n),
    at batch 2: about as many optimizer updates (5/6 to 4/3 of them) for half the compute. On the fictional-person
    sample (53 examples) 2 epochs at batch 2 answered 16/18 held-out questions against 17/18 for
    4 at batch 4; 1 epoch at batch 1 only 14/18 (docs/bench/backend.md)."""
    return min(4, max(2, math.ceil(90 / max(1, n_examples))))


def resolved_auto_epochs(n_examples: int) -> int:
    """What n_epochs "auto" becomes on this server: the rule above, within DISTILL_MAX_EPOCHS."""
    return min(auto_epochs(n_examples), config.MAX_EPOCHS.get() or 10**6)


def auto_batch_size(n_examples: int) -> int:
    return max(1, min(2, n_examples))  # see auto_epochs
