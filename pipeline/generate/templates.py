"""Generation templates: JSON files that say what to ask the teacher and how its answer becomes an example.

Built-in templates live in `data/templates/`; users add their own as `<name>.json` in the workspace
folder `templates/` (see docs/templates.md for the format) or pass a path to a file. A user file with
the name of a built-in one replaces it, so a built-in can be tuned without touching the repository.

Placeholders are Python format fields (`{name}`; a literal brace is written `{{`). Prompts see the
template's variables plus the per-request seeds (`{topic}`, `{difficulty}`) and `{earlier}` (a bounded
sample of examples already written); example messages see the variables plus the teacher's answer.
"""

from __future__ import annotations

import copy
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import workspace
from pipeline.answers import FINAL_LINE  # the same lines the one final-answer reader reads
from pipeline.errors import InputError
from pipeline.models import DATA_DIR

BUILTIN_DIR = DATA_DIR / "templates"
FINAL_ANSWER_PREFIX = "Final answer:"


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    default: str = ""
    multiline: bool = False
    required: bool = False
    #: The default is taken as it is, never filled (a JSON schema full of braces).
    literal: bool = False


@dataclass(frozen=True)
class Setup:
    """A first teacher call whose answer fields become variables (custom: the system prompt)."""

    system_prompt: str
    user_prompt: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    system_prompt: str
    user_prompt: str
    schema: dict[str, Any]
    example: dict[str, Any]
    variables: dict[str, Variable] = field(default_factory=dict)
    seeds: dict[str, list[str]] = field(default_factory=dict)
    #: Format string for the checkable final answer; None when the template is not verifiable.
    final_answer: str | None = None
    #: Answer field holding a list; each item becomes one example (paraphrase's rewrites).
    items: str | None = None
    #: True when every request rewrites one existing example (paraphrase).
    source: bool = False
    setup: Setup | None = None
    #: "classification" / "structured" / "tool_calling": the answer schema and examples come from the
    #: user's labels / JSON schema / tools (pipeline.generate.tasks); None for plain templates.
    task: str | None = None
    #: Seeds taken in turn (request number modulo the list) rather than drawn: balanced labels.
    balanced: tuple[str, ...] = ()
    expected_output_tokens: int = 300
    max_tokens: int = 1000
    path: str = ""

    @property
    def checkable(self) -> bool:
        return self.final_answer is not None

    def defaults(self) -> dict[str, str]:
        return {name: v.default for name, v in self.variables.items()}


def user_template_dir() -> Path:
    return workspace.subdir("templates")


def _template_files() -> dict[str, Path]:
    files = {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.json"))}
    files.update({p.stem: p for p in sorted(user_template_dir().glob("*.json"))})
    return files


def list_templates() -> list[str]:
    """Names of every template a user can pick: built-in ones, then their own."""
    return list(_template_files())


def load_template(name_or_path: str) -> Template:
    """A template by name (workspace `templates/` first, then built-in) or by path to a JSON file."""
    path = Path(name_or_path)
    if not (path.suffix == ".json" and path.is_file()):
        found = _template_files().get(name_or_path)
        if found is None:
            raise InputError(f"Unknown template '{name_or_path}'. Pick one of: {', '.join(list_templates())}, "
                             "or give the path to a template .json file.")
        path = found
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"Template file {path} cannot be read as JSON ({exc}). Fix it or remove it.") from exc
    return template_from_dict(raw, path=str(path))


def template_from_dict(raw: dict[str, Any], *, path: str = "") -> Template:
    where = path or raw.get("name", "template")
    missing = [k for k in ("name", "system_prompt", "user_prompt", "schema", "example") if k not in raw]
    if missing:
        raise InputError(f"Template {where} lacks {', '.join(missing)}; see docs/templates.md for the format.")
    example = raw["example"]
    if not (isinstance(example.get("messages"), list) or example.get("base") == "source"):
        raise InputError(f"Template {where}: 'example' needs a 'messages' list or \"base\": \"source\".")
    setup = raw.get("setup")
    return Template(
        name=raw["name"], title=raw.get("title", raw["name"]), description=raw.get("description", ""),
        system_prompt=raw["system_prompt"], user_prompt=raw["user_prompt"], schema=raw["schema"],
        example=example,
        variables={k: Variable(k, v.get("label", k), str(v.get("default", "")), bool(v.get("multiline")),
                               bool(v.get("required")), bool(v.get("literal")))
                   for k, v in raw.get("variables", {}).items()},
        seeds={k: [str(x) for x in v] for k, v in raw.get("seeds", {}).items()},
        final_answer=raw.get("final_answer"), items=raw.get("items"), source=bool(raw.get("source")),
        setup=Setup(setup["system_prompt"], setup["user_prompt"], setup["schema"]) if setup else None,
        task=raw.get("task"), balanced=tuple(raw.get("balanced", ())),
        expected_output_tokens=int(raw.get("expected_output_tokens", 300)),
        max_tokens=int(raw.get("max_tokens", 1000)), path=path,
    )


class _Namespace(dict):
    def __init__(self, values: dict[str, Any], where: str) -> None:
        super().__init__(values)
        self.where = where

    def __missing__(self, key: str) -> str:
        raise InputError(f"{self.where} uses {{{key}}} but no variable or answer field has that name.")


def render(text: str, values: dict[str, Any], where: str = "The template") -> str:
    """Fill `{name}` fields; an unknown name is a clear InputError, not a KeyError."""
    try:
        return string.Formatter().vformat(text, (), _Namespace(values, where))
    except (ValueError, IndexError) as exc:  # a lone brace: tell the author how to write one
        raise InputError(f"{where} has a malformed placeholder ({exc}); write a literal brace as {{{{ or }}}}.") \
            from exc


def resolve_variables(template: Template, given: dict[str, str] | None) -> dict[str, str]:
    """The template's defaults overlaid by the user's values; defaults may refer to other variables.

    Only template-authored defaults are rendered: a user's fact sheet full of braces is taken as is.
    """
    given = {k: v for k, v in (given or {}).items() if v is not None}
    values = {**template.defaults(), **given}
    if template.task:  # label names, tools as JSON...: for prompts and for defaults that mention them
        from pipeline.generate.tasks import derived_values

        values.update({k: v for k, v in derived_values(template.task, values).items() if k not in given})
    for name, var in template.variables.items():
        if name not in given and "{" in var.default and not var.literal:
            values[name] = render(var.default, values, f"The default of variable '{name}'")
    empty = [v.label for n, v in template.variables.items() if v.required and not str(values.get(n, "")).strip()]
    if empty:
        raise InputError(f"Template '{template.name}' needs: {', '.join(empty)}.")
    return values


def seed_lists(template: Template, variables: dict[str, str]) -> dict[str, list[str]]:
    """Seed lists; a variable named `<seed>s` (e.g. `topics`) with a list replaces the built-in one."""
    lists = {}
    for key, default in template.seeds.items():
        override = [s.strip() for s in re.split(r"[\n,]", variables.get(key + "s", "") or "") if s.strip()]
        lists[key] = override or default
    return lists


def with_final_line(text: str, final_answer: str) -> str:
    """The reasoning with exactly one last line `Final answer: <answer>` (any the teacher wrote removed)."""
    body = FINAL_LINE.sub("", text).rstrip()
    return f"{body}\n\n{FINAL_ANSWER_PREFIX} {final_answer.strip()}" if body else \
        f"{FINAL_ANSWER_PREFIX} {final_answer.strip()}"


def request_schema(template: Template, per_request: int) -> dict[str, Any]:
    """The schema a request asks for: a template whose answer is a list ("rewrite it {ways} ways") gets
    between one item and what the prompt asked for. A small model once repeated one rewrite until max_tokens
    cut its JSON off; with the bound, constrained decoding closes the list."""
    if not template.items:
        return template.schema
    schema = copy.deepcopy(template.schema)
    schema["properties"][template.items].update(minItems=1, maxItems=max(1, per_request))  # an empty list too
    return schema


def build_examples(template: Template, variables: dict[str, str], answer: dict[str, Any],
                   source: dict | None = None) -> list[tuple[dict, str | None]]:
    """(chat example, final answer or None) pairs made from one parsed teacher answer."""
    if template.task:
        from pipeline.generate.tasks import build_task_example

        return [(build_task_example(template, variables, answer), None)]
    items = answer.get(template.items) if template.items else [None]
    out = []
    for item in items or []:
        values = {**variables, **answer, "item": item}
        if template.example.get("base") == "source":
            example = _from_source(template, values, source)
        else:
            messages = []
            for spec in template.example["messages"]:
                content = render(spec["content"], values, f"Template '{template.name}' example").strip()
                if content:  # an empty system prompt means "no system message"
                    messages.append({"role": spec["role"], "content": content})
            example = {"messages": messages}
        final = None
        if template.final_answer:
            final = render(template.final_answer, values, f"Template '{template.name}'").strip()
            last = example["messages"][-1]
            last["content"] = with_final_line(last["content"], final)
        out.append((example, final))
    return out


def _from_source(template: Template, values: dict[str, Any], source: dict | None) -> dict:
    if source is None:
        raise InputError(f"Template '{template.name}' rewrites existing examples; give it some (a draft or a file).")
    messages = [dict(m) for m in source["messages"]]
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    messages[last_user]["content"] = render(template.example["last_user"], values,
                                            f"Template '{template.name}' example").strip()
    extra = {k: v for k, v in source.items() if k != "messages"}  # weight, tools... kept intact
    return {"messages": messages, **extra}
