"""Task templates: classification, structured output and tool calling (a template's `"task"` key).

A plain template's answer schema is fixed in its JSON. A task template's depends on what the user
typed: the labels (an enum), their JSON schema (the teacher's `output` must fit it), their tools (the
tool names, and arguments that fit each tool's parameters). So:
- `derived_values` adds values computed from the user's (label names, tools as JSON...) to the
  variables, for prompts and defaults to use;
- `effective` gives the template with its answer schema made from them;
- `build_task_example` turns a parsed answer into the chat example and checks it first: an output
  that does not fit the user's schema, or tool arguments that do not fit the tool, raise TaskReject
  (the run keeps the reply in OUT.failed.jsonl, never in the data).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.dataset.formats import instance_errors, schema_error, tool_definitions
from pipeline.dataset.hints import json_paste_hint
from pipeline.errors import InputError
from pipeline.models import DATA_DIR

#: A pipeline.generate.templates.Template (not imported: templates.py calls into this module).
Template = Any

TASKS = ("classification", "structured", "tool_calling")
SAMPLE_TOOLS_DIR = DATA_DIR / "templates" / "tools"
NO_TOOL = "none"


class TaskReject(ValueError):
    """The teacher's answer parsed but is not a usable example (the message says why)."""


def sample_tools() -> list[str]:
    return sorted(p.stem for p in SAMPLE_TOOLS_DIR.glob("*.json"))


def _json_value(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"The {what} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
                         + json_paste_hint(text)) from None


def parse_labels(text: str) -> list[tuple[str, str]]:
    """[(label, description)] from lines "label: one-line description" (the description is optional)."""
    out: list[tuple[str, str]] = []
    for line in str(text).splitlines():
        name, _, desc = line.strip().lstrip("-* ").partition(":")
        if name.strip():
            out.append((name.strip(), desc.strip()))
    names = [n for n, _ in out]
    if len(set(names)) < 2 or len(set(names)) != len(names):
        raise InputError("Give at least two different labels, one a line, as 'label: what it means' "
                         "(e.g. 'billing: questions about charges and invoices').")
    return out


def parse_tools(text: str) -> list[dict]:
    """OpenAI `tools` from JSON text, or a sample's name (weather, calendar)."""
    text = str(text).strip()
    if text in sample_tools():
        return json.loads((SAMPLE_TOOLS_DIR / f"{text}.json").read_text(encoding="utf-8"))
    value = _json_value(text, "tools definition")
    if isinstance(value, dict):
        value = [value]
    names, problems = tool_definitions(value, 0, 0)
    if problems or not names:
        why = problems[0].message.replace("Line 0, ", "").replace("Line 0: ", "") if problems else "it is empty"
        raise InputError(f"The tools are not OpenAI tool definitions: {why} Or type a sample's name: "
                         f"{', '.join(sample_tools())}.")
    return value


def parse_output_schema(text: str) -> dict:
    schema = _json_value(str(text), "output JSON schema")
    why = schema_error(schema)
    if why:
        raise InputError(f"The output JSON schema is not a valid JSON schema: {why}.")
    return schema


def derived_values(task: str | None, values: dict[str, str]) -> dict[str, str]:
    """Values computed from the user's, for prompts and defaults ({label_names}, {tools_json}, ...)."""
    if task == "classification":
        labels = parse_labels(values.get("labels", ""))
        return {"label_names": ", ".join(n for n, _ in labels),
                "label_lines": "\n".join(f"- {n}: {d}" if d else f"- {n}" for n, d in labels)}
    if task == "tool_calling":
        tools = parse_tools(values.get("tools", ""))
        return {"tools_json": json.dumps(tools, ensure_ascii=False),
                "tool_names": ", ".join(t["function"]["name"] for t in tools)}
    if task == "structured":
        return {"output_schema_json": json.dumps(parse_output_schema(values.get("output_schema", "")),
                                                 ensure_ascii=False)}
    return {}


def effective(template: Template, variables: dict[str, str]) -> Template:
    """The template with its answer schema and seeds made from the user's labels / schema / tools."""
    if template.task is None:
        return template
    if template.task not in TASKS:
        raise InputError(f"Template '{template.name}' has task '{template.task}'; known: {', '.join(TASKS)}.")
    schema = copy.deepcopy(template.schema)
    props = schema.setdefault("properties", {})
    seeds = dict(template.seeds)
    if template.task == "classification":
        labels = parse_labels(variables.get("labels", ""))
        props["label"] = {"type": "string", "enum": [n for n, _ in labels]}
        seeds["target_label"] = [f"{n} ({d})" if d else n for n, d in labels]
    elif template.task == "structured":
        props["output"] = parse_output_schema(variables.get("output_schema", ""))
    else:
        tools = parse_tools(variables.get("tools", ""))
        props["tool"] = {"type": "string", "enum": [t["function"]["name"] for t in tools] + [NO_TOOL]}
    return replace(template, schema=schema, seeds=seeds)


def _call_id(user: str, name: str, args: str) -> str:
    return "call_" + hashlib.sha256(f"{user}\0{name}\0{args}".encode()).hexdigest()[:16]


def build_task_example(template: Template, variables: dict[str, str], answer: dict[str, Any]) -> dict:
    """The chat example for one parsed answer of a task template (TaskReject when it is unusable)."""
    system = str(variables.get("student_system", "")).strip()
    head = [{"role": "system", "content": system}] if system else []
    if template.task == "classification":
        return {"messages": [*head, {"role": "user", "content": str(answer["text"]).strip()},
                             {"role": "assistant", "content": str(answer["label"]).strip()}]}
    if template.task == "structured":
        output = answer["output"]
        errors = instance_errors(output, parse_output_schema(variables.get("output_schema", "")))
        if errors:
            raise TaskReject(f"the output does not fit the schema: {'; '.join(errors)}")
        return {"messages": [*head, {"role": "user", "content": str(answer["input"]).strip()},
                             {"role": "assistant", "content": json.dumps(output, ensure_ascii=False)}]}
    tools = parse_tools(variables.get("tools", ""))
    user = str(answer["user"]).strip()
    final = {"role": "assistant", "content": str(answer["answer"]).strip()}
    if answer["tool"] == NO_TOOL:
        return {"messages": [*head, {"role": "user", "content": user}, final], "tools": tools}
    params = {t["function"]["name"]: t["function"].get("parameters") for t in tools}
    if answer["tool"] not in params:
        raise TaskReject(f"called '{answer['tool']}', which is not one of the tools")
    try:
        args = json.loads(answer["arguments"]) if isinstance(answer["arguments"], str) else answer["arguments"]
    except json.JSONDecodeError as exc:
        raise TaskReject(f"the arguments are not JSON ({exc.msg})") from None
    errors = instance_errors(args, params[answer["tool"]]) if params[answer["tool"]] else []
    if not isinstance(args, dict) or errors:
        raise TaskReject(f"the arguments do not fit {answer['tool']}'s parameters: "
                         f"{'; '.join(errors) or 'not a JSON object'}")
    text_args = json.dumps(args, ensure_ascii=False)
    cid = _call_id(user, answer["tool"], text_args)
    call = {"role": "assistant", "tool_calls": [{"id": cid, "type": "function",
                                                 "function": {"name": answer["tool"], "arguments": text_args}}]}
    result = {"role": "tool", "tool_call_id": cid, "content": str(answer["tool_result"]).strip() or "{}"}
    return {"messages": [*head, {"role": "user", "content": user}, call, result, final], "tools": tools}


def write_sidecars(template: Template, variables: dict[str, str], out: Path) -> None:
    """A structured-output run writes OUT.schema.json: `validate` then checks every answer against it."""
    if template.task == "structured":
        schema = parse_output_schema(variables.get("output_schema", ""))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".schema.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")
