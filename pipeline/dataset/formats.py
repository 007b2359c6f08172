"""Checks for the task formats beyond free text: tool calls, structured (JSON schema) answers, labels.

Tool calling (OpenAI's function-calling fine-tuning format): `tools` is a list of
{"type": "function", "function": {"name", "description", "parameters": JSON schema}}; an assistant
message may carry `tool_calls` [{"id", "type": "function", "function": {"name", "arguments": "<JSON>"}}],
answered by `tool` messages whose `tool_call_id` names the call. The final assistant message may be a
call with no answer yet: that is how an example teaches "call this tool now".

Checked here, per example: tool definitions well formed (their parameters a valid JSON schema); every
call names a defined tool, its arguments are a JSON object fitting the tool's parameters; every call
followed by more conversation is answered by a tool message; every tool message answers a call.
Dataset-wide: a structured answer (the last assistant message) fits the attached schema; a
classification dataset's label distribution, with a warning when it is unbalanced.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jsonschema_rs

from pipeline.dataset.problems import Problem, problem

#: A label dataset is unbalanced when its most common label is this many times its rarest.
IMBALANCE_RATIO = 3.0
#: Answers this short (characters, words) that repeat look like labels.
LABEL_MAX_CHARS, LABEL_MAX_WORDS = 40, 4


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    return jsonschema_rs.validator_for(json.loads(schema_json))


def schema_error(schema: Any) -> str | None:
    """Why `schema` is not a usable JSON schema, or None when it is."""
    if not isinstance(schema, dict):
        return f"it is a JSON {type(schema).__name__}, not an object"
    try:
        _validator(json.dumps(schema, sort_keys=True))
    except (jsonschema_rs.ValidationError, ValueError) as exc:
        return str(exc).splitlines()[0]
    return None


def instance_errors(value: Any, schema: dict, limit: int = 3) -> list[str]:
    """How `value` breaks `schema` ("at $.city: 5 is not of type "string""), at most `limit`; [] if it fits."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    out = []
    for err in validator.iter_errors(value):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.instance_path)
        out.append(f"at ${where}: {err.message}" if where else err.message)
        if len(out) >= limit:
            break
    return out


def tool_definitions(tools: Any, line: int, index: int) -> tuple[dict[str, dict | None], list[Problem]]:
    """({tool name: parameters schema or None}, problems) from an example's `tools` list."""
    found: list[Problem] = []
    defined: dict[str, dict | None] = {}
    if tools is None:
        return defined, found
    if not isinstance(tools, list):
        return defined, [problem("invalid_tool_definition", f'Line {line}: "tools" must be a list of '
                                 '{"type": "function", "function": {...}} objects.', line, index)]
    for k, tool in enumerate(tools, start=1):
        fn = tool.get("function") if isinstance(tool, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(name, str) or not name:
            found.append(problem("invalid_tool_definition", f"Line {line}, tool {k} is not "
                                 '{"type": "function", "function": {"name": ..., "parameters": {...}}}. '
                                 "Fix its shape.", line, index))
            continue
        params = fn.get("parameters")
        if params is not None:
            why = schema_error(params)
            if why:
                found.append(problem("invalid_tool_definition", f"Line {line}, tool '{name}': its parameters "
                                     f"are not a valid JSON schema ({why}). Fix the schema.", line, index))
                params = None
        defined[name] = params
    return defined, found


def check_tool_calls(ex: Any, line: int, index: int) -> list[Problem]:
    """The tool-calling checks of one example (see the module docstring); [] for plain chat."""
    if not isinstance(ex, dict) or not isinstance(ex.get("messages"), list):
        return []
    messages = [m for m in ex["messages"] if isinstance(m, dict)]
    calls_present = any(m.get("tool_calls") for m in messages) or any(m.get("role") == "tool" for m in messages)
    if "tools" not in ex and not calls_present:
        return []
    defined, found = tool_definitions(ex.get("tools"), line, index)
    pending: dict[str, tuple[int, str]] = {}  # call id -> (message number, tool name), not yet answered
    answered: set[str] = set()
    last = len(messages)
    for j, m in enumerate(messages, start=1):
        role = m.get("role")
        if role == "tool":
            cid = m.get("tool_call_id")
            if not isinstance(cid, str) or not cid:
                found.append(problem("tool_message_without_call", f"Line {line}, message {j} (tool) has no "
                                     "tool_call_id. Set it to the id of the call it answers.", line, index))
            elif cid not in pending:
                again = " (already answered)" if cid in answered else ""
                found.append(problem("tool_message_without_call", f"Line {line}, message {j} (tool) answers "
                                     f"call {cid!r}, which no earlier assistant message made{again}. Fix the "
                                     "tool_call_id or add the call.", line, index))
            else:
                pending.pop(cid)
                answered.add(cid)
            continue
        if pending and role in ("user", "assistant"):
            found += _unanswered(pending, line, index, j)
            pending.clear()
        calls = m.get("tool_calls")
        if role != "assistant" or calls is None:
            continue
        if not isinstance(calls, list) or not calls:
            found.append(problem("invalid_tool_call", f"Line {line}, message {j}: tool_calls must be a "
                                 "non-empty list of calls.", line, index))
            continue
        for k, call in enumerate(calls, start=1):
            found += _check_call(call, defined, "tools" in ex, f"Line {line}, message {j}, call {k}", line, index)
            cid = call.get("id") if isinstance(call, dict) else None
            if isinstance(cid, str) and cid and j < last:
                fn = call.get("function")
                pending[cid] = (j, str(fn.get("name") if isinstance(fn, dict) else None))
    if pending:
        found += _unanswered(pending, line, index, None)
    return found


def _unanswered(pending: dict[str, tuple[int, str]], line: int, index: int, at: int | None) -> list[Problem]:
    where = f"before message {at}" if at else "by the end of the conversation"
    return [problem("unanswered_tool_call", f"Line {line}, message {j}: the call {cid!r} to '{name}' gets no "
                    f"tool message {where}. Add {{\"role\": \"tool\", \"tool_call_id\": \"{cid}\", \"content\": "
                    "...}} with the tool's result right after the call.", line, index)
            for cid, (j, name) in pending.items()]


def _check_call(call: Any, defined: dict[str, dict | None], has_tools: bool, where: str, line: int,
                index: int) -> list[Problem]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(fn, dict) or not isinstance(fn.get("name"), str) \
            or not isinstance(call.get("id"), str) or not call.get("id"):
        return [problem("invalid_tool_call", f'{where} is not {{"id": ..., "type": "function", "function": '
                        '{"name": ..., "arguments": "{...}"}}. Fix its shape.', line, index)]
    name, args = fn["name"], fn.get("arguments")
    found = []
    if name not in defined:
        hint = (f"Defined: {', '.join(defined) or 'none'}." if has_tools
                else 'The example has no "tools" list: add the tool\'s definition.')
        found.append(problem("undefined_tool", f"{where} calls '{name}', which is not defined. {hint}", line, index))
    if not isinstance(args, str):
        return [*found, problem("tool_arguments_not_json", f"{where} ('{name}'): arguments must be a string "
                                "holding a JSON object, e.g. \"{\\\"city\\\": \\\"Paris\\\"}\".", line, index)]
    try:
        value = json.loads(args)
    except json.JSONDecodeError as exc:
        return [*found, problem("tool_arguments_not_json", f"{where} ('{name}'): arguments are not valid JSON "
                                f"({exc.msg} at column {exc.colno}). Write them as a JSON object.", line, index)]
    if not isinstance(value, dict):
        return [*found, problem("tool_arguments_not_json", f"{where} ('{name}'): arguments must be a JSON "
                                f"object, not a {type(value).__name__}.", line, index)]
    params = defined.get(name)
    if params:
        errors = instance_errors(value, params)
        if errors:
            found.append(problem("tool_arguments_mismatch", f"{where}: the arguments do not fit '{name}''s "
                                 f"parameters: {'; '.join(errors)}. Fix them.", line, index))
    return found


def final_answer(ex: Any) -> str | None:
    """The text of the example's last message when it is an assistant answer (not a tool call)."""
    msgs = ex.get("messages") if isinstance(ex, dict) else None
    if not isinstance(msgs, list) or not msgs or not isinstance(msgs[-1], dict):
        return None
    last = msgs[-1]
    if last.get("role") != "assistant" or last.get("tool_calls") or not isinstance(last.get("content"), str):
        return None
    return last["content"]


def check_structured_answers(examples: Sequence[Any], lines: Sequence[int], schema: dict) -> list[list[Problem]]:
    """Per example: the last assistant message must be JSON fitting `schema` (the dataset's attached one)."""
    out: list[list[Problem]] = []
    for i, ex in enumerate(examples):
        answer, line = final_answer(ex), lines[i]
        if answer is None:
            out.append([])
            continue
        try:
            value = json.loads(answer)
        except json.JSONDecodeError as exc:
            out.append([problem("answer_not_json", f"Line {line}: the answer is not JSON ({exc.msg} at column "
                                f"{exc.colno}), but this dataset's schema expects a JSON answer. Fix it.",
                                line, i)])
            continue
        errors = instance_errors(value, schema)
        out.append([problem("answer_schema_mismatch", f"Line {line}: the answer does not fit the dataset's "
                            f"schema: {'; '.join(errors)}. Fix it or delete the example.", line, i)]
                   if errors else [])
    return out


def label_counts(examples: Sequence[Any], answers: Sequence[str | None] | None = None) -> dict[str, int] | None:
    """{label: examples} when the dataset looks like classification (every answer a short label, labels
    repeating, 2+ of them), else None. `answers`: their `final_answer`s, when the caller has them."""
    answers = list(answers) if answers is not None else [final_answer(ex) for ex in examples]
    if len(answers) < 4 or any(a is None for a in answers):
        return None
    labels = [a.strip() for a in answers if a is not None]
    if any(not a or len(a) > LABEL_MAX_CHARS or len(a.split()) > LABEL_MAX_WORDS for a in labels):
        return None
    counts = Counter(labels)
    if not 2 <= len(counts) <= max(2, len(labels) // 2):
        return None
    return dict(counts.most_common())


def imbalance_problem(counts: dict[str, int]) -> Problem | None:
    """A warning when the most common label has IMBALANCE_RATIO times the examples of the rarest."""
    (top, most), (rare, least) = next(iter(counts.items())), list(counts.items())[-1]
    if most < IMBALANCE_RATIO * least:
        return None
    shares = ", ".join(f"{label}: {n}" for label, n in counts.items())
    return problem("label_imbalance", f"The labels are unbalanced ({shares}): '{top}' has {most / least:.1f}x "
                   f"the examples of '{rare}', so the model learns to favour it. Add examples of the rare "
                   "labels (the classification template balances them), or remove some of the common one.")
